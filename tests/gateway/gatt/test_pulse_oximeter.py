"""PLX Spot-Check 0x2A5E, Continuous 0x2A5F and Features 0x2A60: flag maps, specials, truncation, fuzz."""

from __future__ import annotations

import pytest
from hypothesis import given, seed, settings
from hypothesis import strategies as st

from gateway.errors import GatewayError, MalformedMeasurement
from gateway.gatt import (
    MeasurementOutcome,
    parse_plx_continuous_measurement,
    parse_plx_features,
    parse_plx_spot_check_measurement,
    to_json_dict,
)

# Wire fragments, little-endian, by hand.
SPO2_PR = "d4f3" + "4800"  # 980e-1 = 98.0 %, 72 /min
FAST = "6100" + "4b00"  # 97 %, 75 /min
SLOW = "6200" + "4700"  # 98 %, 71 /min
TIME_STAMP = "e807030f0e1e2d"  # 2024-03-15 14:30:45
STATUS = "8000"  # bit 7 validated_data
DSS = "200000"  # bit 5 low_perfusion_detected (24-bit)
PAI = "57f0"  # 87e-1 = 8.7 %


def spot(flags: int) -> bytes:
    parts = [f"{flags:02x}", SPO2_PR]
    for bit, part in ((0x01, TIME_STAMP), (0x02, STATUS), (0x04, DSS), (0x08, PAI)):
        if flags & bit:
            parts.append(part)
    return bytes.fromhex("".join(parts))


def continuous(flags: int) -> bytes:
    parts = [f"{flags:02x}", SPO2_PR]
    for bit, part in ((0x01, FAST), (0x02, SLOW), (0x04, STATUS), (0x08, DSS), (0x10, PAI)):
        if flags & bit:
            parts.append(part)
    return bytes.fromhex("".join(parts))


@pytest.mark.parametrize("flags", range(32), ids=lambda f: f"flags_{f:02x}")
def test_every_spot_check_flag_combination(flags: int) -> None:
    data = spot(flags)
    assert len(data) == 5 + 7 * bool(flags & 1) + 2 * bool(flags & 2) + 3 * bool(flags & 4) + 2 * bool(
        flags & 8
    )
    out = to_json_dict(parse_plx_spot_check_measurement(data))
    assert "warnings" not in out
    assert (out["spo2"], out["pulse_rate"], out["flags_raw"]) == (98.0, 72.0, flags)
    assert out["timestamp"] == ("2024-03-15T14:30:45" if flags & 0x01 else None)
    assert out["measurement_status"] == (["validated_data"] if flags & 0x02 else None)
    assert out["measurement_status_raw"] == (128 if flags & 0x02 else None)
    assert out["device_and_sensor_status"] == (["low_perfusion_detected"] if flags & 0x04 else None)
    assert out["device_and_sensor_status_raw"] == (32 if flags & 0x04 else None)
    assert out["pulse_amplitude_index"] == (8.7 if flags & 0x08 else None)
    assert out["device_clock_not_set"] is bool(flags & 0x10)


@pytest.mark.parametrize("flags", range(32), ids=lambda f: f"flags_{f:02x}")
def test_every_continuous_flag_combination(flags: int) -> None:
    data = continuous(flags)
    assert len(data) == 5 + 4 * bool(flags & 1) + 4 * bool(flags & 2) + 2 * bool(flags & 4) + 3 * bool(
        flags & 8
    ) + 2 * bool(flags & 16)
    out = to_json_dict(parse_plx_continuous_measurement(data))
    assert "warnings" not in out
    assert (out["spo2"], out["pulse_rate"], out["flags_raw"]) == (98.0, 72.0, flags)
    assert (out["spo2_fast"], out["pulse_rate_fast"]) == ((97.0, 75.0) if flags & 0x01 else (None, None))
    assert (out["spo2_slow"], out["pulse_rate_slow"]) == ((98.0, 71.0) if flags & 0x02 else (None, None))
    assert out["measurement_status"] == (["validated_data"] if flags & 0x04 else None)
    assert out["device_and_sensor_status_raw"] == (32 if flags & 0x08 else None)
    assert out["pulse_amplitude_index"] == (8.7 if flags & 0x10 else None)


@pytest.mark.parametrize(
    ("word", "printed", "outcome"),
    [
        ("ff07", "NaN", MeasurementOutcome.FAILED),
        ("0008", "NRes", MeasurementOutcome.FAILED),
        ("0108", "reserved", MeasurementOutcome.FAILED),
        ("fe07", "+INF", MeasurementOutcome.OUT_OF_RANGE_HIGH),
        ("0208", "-INF", MeasurementOutcome.OUT_OF_RANGE_LOW),
    ],
)
def test_sfloat_specials_are_never_numbers(word: str, printed: str, outcome: MeasurementOutcome) -> None:
    for parse in (parse_plx_spot_check_measurement, parse_plx_continuous_measurement):
        m = parse(bytes.fromhex("00" + word + "4800"))
        assert to_json_dict(m)["spo2"] == printed
        assert m.outcome is outcome
        m = parse(bytes.fromhex("00" + "6200" + word))
        assert to_json_dict(m)["pulse_rate"] == printed


def test_fractional_spo2_is_not_truncated() -> None:
    assert parse_plx_spot_check_measurement(bytes.fromhex("00cff34800")).spo2.value == 97.5


def test_the_two_flag_maps_differ() -> None:
    """Bit 1 is measurement status in 2A5E and SpO2PR-Slow in 2A5F (trap A10.10)."""
    s = parse_plx_spot_check_measurement(bytes.fromhex("02" + SPO2_PR + STATUS))
    c = parse_plx_continuous_measurement(bytes.fromhex("02" + SPO2_PR + SLOW))
    assert s.measurement_status == ["validated_data"]
    assert c.spo2_slow is not None and c.spo2_slow.value == 98.0
    assert c.measurement_status is None


def test_status_rfu_bits_warn() -> None:
    m = parse_plx_spot_check_measurement(bytes.fromhex("06" + SPO2_PR + "1f00" + "0000ff"))
    assert m.measurement_status == []
    assert m.device_and_sensor_status == []
    assert len(m.warnings) == 2


SPOT_FULL = spot(0x1F)
CONT_FULL = continuous(0x1F)


@pytest.mark.parametrize("short_by", range(1, len(SPOT_FULL) + 1), ids=lambda n: f"short_by_{n}")
def test_truncated_spot_check_is_rejected(short_by: int) -> None:
    with pytest.raises(MalformedMeasurement) as info:
        parse_plx_spot_check_measurement(SPOT_FULL[:-short_by])
    assert info.value.characteristic == "2A5E"


@pytest.mark.parametrize("short_by", range(1, len(CONT_FULL) + 1), ids=lambda n: f"short_by_{n}")
def test_truncated_continuous_is_rejected(short_by: int) -> None:
    assert len(CONT_FULL) == 20
    with pytest.raises(MalformedMeasurement) as info:
        parse_plx_continuous_measurement(CONT_FULL[:-short_by])
    assert info.value.characteristic == "2A5F"


def test_features_support_fields() -> None:
    f = parse_plx_features(bytes.fromhex("0700" + "0002" + "010400"))
    assert f.feature_names == [
        "measurement_status_support_present",
        "device_and_sensor_status_support_present",
        "measurement_storage_for_spot_check_supported",
    ]
    assert f.stores_spot_checks
    assert f.measurement_status_support == ["data_from_measurement_storage"]
    assert f.device_and_sensor_status_support == [
        "extended_display_update_ongoing",
        "sensor_interference_detected",
    ]


FEATURES_FULL = bytes.fromhex("0300" + "e0ff" + "ffff00")


@pytest.mark.parametrize("short_by", range(1, len(FEATURES_FULL) + 1), ids=lambda n: f"short_by_{n}")
def test_truncated_features_are_rejected(short_by: int) -> None:
    with pytest.raises(MalformedMeasurement, match="2A60"):
        parse_plx_features(FEATURES_FULL[:-short_by])


@seed(20261203)
@settings(max_examples=400, deadline=None)
@given(flags=st.integers(0, 255), body=st.binary(max_size=22))
def test_seeded_fuzz_decodes_or_raises_typed(flags: int, body: bytes) -> None:
    data = bytes([flags]) + body
    for parse in (parse_plx_spot_check_measurement, parse_plx_continuous_measurement, parse_plx_features):
        try:
            result = parse(data)
        except GatewayError:
            continue
        out = to_json_dict(result)
        assert "error" not in out
        if "flags_raw" in out:
            assert out["flags_raw"] == flags
