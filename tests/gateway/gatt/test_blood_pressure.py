"""Blood Pressure Measurement 0x2A35, Intermediate Cuff Pressure 0x2A36, Feature 0x2A49."""

from __future__ import annotations

from datetime import datetime

import pytest

from gateway.errors import MalformedMeasurement
from gateway.gatt import (
    BloodPressureFlags,
    MeasurementOutcome,
    PressureUnit,
    PulseRateRange,
    parse_blood_pressure_feature,
    parse_blood_pressure_measurement,
    parse_intermediate_cuff_pressure,
    to_json_dict,
)

# Wire fragments (little-endian), written out by hand.
MMHG_VALUES = "7800 5000 5D00"  # 120 / 80 / 93 mmHg (SFLOAT exp 0)
KPA_VALUES = "A0F0 6BF0 7DF0"  # 16.0 / 10.7 / 12.5 kPa (SFLOAT exp -1)
TIME_STAMP = "E807 03 0F 0E 1E 2D"  # 2024-03-15 14:30:45
PULSE = "4800"  # 72 /min
USER = "02"
STATUS = "0A00"  # cuff too loose + pulse rate range 1 (exceeds upper limit)


def build(flags: int) -> bytes:
    parts = [f"{flags:02X}", KPA_VALUES if flags & 0x01 else MMHG_VALUES]
    if flags & 0x02:
        parts.append(TIME_STAMP)
    if flags & 0x04:
        parts.append(PULSE)
    if flags & 0x08:
        parts.append(USER)
    if flags & 0x10:
        parts.append(STATUS)
    return bytes.fromhex("".join(parts))


@pytest.mark.parametrize("flags", range(32), ids=lambda f: f"flags_{f:02x}")
def test_every_flag_combination(flags: int) -> None:
    data = build(flags)
    assert len(data) == 7 + 7 * bool(flags & 2) + 2 * bool(flags & 4) + bool(flags & 8) + 2 * bool(flags & 16)
    m = parse_blood_pressure_measurement(data)
    assert m.flags == BloodPressureFlags(flags)
    assert m.warnings == ()
    assert m.raw_hex == data.hex()
    out = to_json_dict(m)
    if flags & 0x01:
        assert (out["unit"], out["systolic"], out["diastolic"], out["mean_arterial_pressure"]) == (
            "kPa",
            16.0,
            10.7,
            12.5,
        )
    else:
        assert (out["unit"], out["systolic"], out["diastolic"], out["mean_arterial_pressure"]) == (
            "mmHg",
            120.0,
            80.0,
            93.0,
        )
    assert out["timestamp"] == ("2024-03-15T14:30:45" if flags & 0x02 else None)
    assert out["pulse_rate"] == (72.0 if flags & 0x04 else None)
    assert out["user_id"] == (2 if flags & 0x08 else None)
    if flags & 0x10:
        assert out["status"] == ["cuff_too_loose"]
        assert out["pulse_rate_range"] == "exceeds_upper_limit"
        assert out["measurement_status_raw"] == 10
    else:
        assert out["status"] is None
        assert out["pulse_rate_range"] is None
        assert out["measurement_status_raw"] is None


def test_wire_format_example() -> None:
    m = parse_blood_pressure_measurement(bytes.fromhex("1eb6005f007c00ea070b17091e2d4d00010400"))
    assert m.unit is PressureUnit.MMHG
    assert (m.systolic.value, m.diastolic.value, m.mean_arterial_pressure.value) == (182.0, 95.0, 124.0)
    assert m.timestamp == datetime(2026, 11, 23, 9, 30, 45)
    assert m.pulse_rate is not None and m.pulse_rate.value == 77.0
    assert m.user_id == 1 and m.user_known
    assert m.status_names == ["irregular_pulse"]
    assert m.pulse_rate_range is PulseRateRange.WITHIN_RANGE
    assert m.outcome is MeasurementOutcome.OK


@pytest.mark.parametrize(
    ("status_hex", "names", "pulse_range"),
    [
        ("0000", [], "within_range"),
        ("0100", ["body_movement"], "within_range"),
        ("0200", ["cuff_too_loose"], "within_range"),
        ("0400", ["irregular_pulse"], "within_range"),
        ("0800", [], "exceeds_upper_limit"),
        ("1000", [], "below_lower_limit"),
        ("2000", ["improper_measurement_position"], "within_range"),
        (
            "2700",
            ["body_movement", "cuff_too_loose", "irregular_pulse", "improper_measurement_position"],
            "within_range",
        ),
    ],
)
def test_measurement_status_bits(status_hex: str, names: list[str], pulse_range: str) -> None:
    out = to_json_dict(parse_blood_pressure_measurement(bytes.fromhex("10" + MMHG_VALUES + status_hex)))
    assert out["status"] == names
    assert out["pulse_rate_range"] == pulse_range
    assert out.get("warnings", []) == []


def test_reserved_pulse_rate_range_and_rfu_status_bits_warn() -> None:
    m = parse_blood_pressure_measurement(bytes.fromhex("10" + MMHG_VALUES + "1840"))
    assert m.pulse_rate_range is PulseRateRange.RESERVED_3
    assert to_json_dict(m)["pulse_rate_range"] == "reserved_3"
    assert m.warnings == ("reserved pulse rate range value 3", "RFU measurement status bits set: 0x4000")


def test_rfu_flag_bits_warn() -> None:
    m = parse_blood_pressure_measurement(bytes.fromhex("E0" + MMHG_VALUES))
    assert m.systolic.value == 120.0
    assert m.warnings == ("RFU flag bits set: 0xE0",)


def test_trailing_bytes_warn() -> None:
    # Beurer-style: user ID sent although flag bit 3 is clear.
    m = parse_blood_pressure_measurement(bytes.fromhex("00" + MMHG_VALUES + "01"))
    assert m.user_id is None
    assert m.warnings == ("1 trailing byte(s) ignored: 01",)


def test_all_nan_error_measurement_is_not_2047() -> None:
    # derdilla/blood-pressure-monitor-fl #80: the cuff showed "Err" and sent NaN in every field.
    m = parse_blood_pressure_measurement(bytes.fromhex("00FF07FF07FF07"))
    out = to_json_dict(m)
    assert (out["systolic"], out["diastolic"], out["mean_arterial_pressure"]) == ("NaN", "NaN", "NaN")
    assert m.outcome is MeasurementOutcome.FAILED


@pytest.mark.parametrize(
    ("values", "outcome"),
    [
        ("FE07 5000 5D00", MeasurementOutcome.OUT_OF_RANGE_HIGH),
        ("0208 5000 5D00", MeasurementOutcome.OUT_OF_RANGE_LOW),
        ("7800 0008 5D00", MeasurementOutcome.FAILED),
        ("7800 0108 5D00", MeasurementOutcome.FAILED),
        ("7800 5000 FF07", MeasurementOutcome.OK),  # MAP is not required
    ],
)
def test_outcome(values: str, outcome: MeasurementOutcome) -> None:
    assert parse_blood_pressure_measurement(bytes.fromhex("00" + values)).outcome is outcome


def test_unknown_time_stamp_is_null() -> None:
    out = to_json_dict(parse_blood_pressure_measurement(bytes.fromhex("02" + MMHG_VALUES + "00000000000000")))
    assert out["timestamp"] is None


def test_bad_time_stamp_is_rejected() -> None:
    with pytest.raises(MalformedMeasurement, match=r"time_stamp\.month 13"):
        parse_blood_pressure_measurement(bytes.fromhex("02" + MMHG_VALUES + "E8070D0F0E1E2D"))


def test_unknown_user() -> None:
    m = parse_blood_pressure_measurement(bytes.fromhex("08" + MMHG_VALUES + "FF"))
    assert m.user_id == 0xFF and not m.user_known


FULL = build(0x1F)


@pytest.mark.parametrize("short_by", range(1, len(FULL) + 1), ids=lambda n: f"short_by_{n}")
def test_truncated_measurement_is_rejected(short_by: int) -> None:
    with pytest.raises(MalformedMeasurement) as info:
        parse_blood_pressure_measurement(FULL[:-short_by])
    assert info.value.characteristic == "2A35"
    assert "too short" in info.value.reason
    assert info.value.payload_hex == FULL[:-short_by].hex()


def test_short_frame_names_the_missing_fields() -> None:
    with pytest.raises(MalformedMeasurement, match="missing user_id, measurement_status"):
        parse_blood_pressure_measurement(FULL[:-3])


def test_intermediate_cuff_pressure() -> None:
    icp = parse_intermediate_cuff_pressure(bytes.fromhex("008C00FF07FF07"))
    out = to_json_dict(icp)
    assert out["current_cuff_pressure"] == 140.0
    assert "systolic" not in out
    assert (out["diastolic"], out["mean_arterial_pressure"]) == ("NaN", "NaN")
    assert icp.warnings == ()


def test_intermediate_cuff_pressure_with_zero_unused_fields_warns() -> None:
    icp = parse_intermediate_cuff_pressure(bytes.fromhex("008C0000000000"))
    assert len(icp.warnings) == 2


@pytest.mark.parametrize("short_by", range(1, 8), ids=lambda n: f"short_by_{n}")
def test_truncated_icp_is_rejected(short_by: int) -> None:
    with pytest.raises(MalformedMeasurement, match="2A36"):
        parse_intermediate_cuff_pressure(bytes.fromhex("008C00FF07FF07")[:-short_by])


@pytest.mark.parametrize(
    ("hex_le", "features"),
    [
        ("0000", []),
        (
            "3F00",
            [
                "body_movement_detection",
                "cuff_fit_detection",
                "irregular_pulse_detection",
                "pulse_rate_range_detection",
                "measurement_position_detection",
                "multiple_bond_support",
            ],
        ),
        ("C001", ["e2e_crc", "user_data_service", "user_facing_time"]),
        ("0400", ["irregular_pulse_detection"]),
    ],
)
def test_blood_pressure_feature(hex_le: str, features: list[str]) -> None:
    result = parse_blood_pressure_feature(bytes.fromhex(hex_le))
    assert to_json_dict(result) == {"features": features}


def test_blood_pressure_feature_rfu_warns() -> None:
    result = parse_blood_pressure_feature(bytes.fromhex("0102"))
    assert result.feature_names == ["body_movement_detection"]
    assert result.warnings == ("RFU feature bits set: 0x0200",)


@pytest.mark.parametrize("short_by", [1, 2], ids=lambda n: f"short_by_{n}")
def test_blood_pressure_feature_short(short_by: int) -> None:
    with pytest.raises(MalformedMeasurement):
        parse_blood_pressure_feature(bytes.fromhex("3F00")[:-short_by])
