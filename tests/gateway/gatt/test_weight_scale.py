"""Weight Measurement 0x2A9D and Weight Scale Feature 0x2A9E: flags, units, 0xFFFF, truncation, fuzz."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given, seed, settings
from hypothesis import strategies as st

from gateway.errors import GatewayError, MalformedMeasurement
from gateway.gatt import (
    MeasurementOutcome,
    WeightUnit,
    parse_weight_measurement,
    parse_weight_scale_feature,
    to_json_dict,
)

# Wire fragments (little-endian), written out by hand.
KG_75 = "983a"  # 15000 × 0.005 kg = 75.0 kg
TIME_STAMP = "e807030f0e1e2d"  # 2024-03-15 14:30:45
USER = "02"
BMI_HEIGHT_SI = "0201b406"  # BMI 25.8, height 1716 × 0.001 m
BMI_HEIGHT_IMPERIAL = "0201a802"  # BMI 25.8, height 680 × 0.1 in = 68.0 in


def build(flags: int, weight: str = KG_75) -> bytes:
    parts = [f"{flags:02x}", weight]
    if flags & 0x02:
        parts.append(TIME_STAMP)
    if flags & 0x04:
        parts.append(USER)
    if flags & 0x08:
        parts.append(BMI_HEIGHT_IMPERIAL if flags & 0x01 else BMI_HEIGHT_SI)
    return bytes.fromhex("".join(parts))


@pytest.mark.parametrize("flags", range(16), ids=lambda f: f"flags_{f:02x}")
def test_every_flag_combination(flags: int) -> None:
    data = build(flags)
    assert len(data) == 3 + 7 * bool(flags & 2) + bool(flags & 4) + 4 * bool(flags & 8)
    m = parse_weight_measurement(data)
    out = to_json_dict(m)
    assert "warnings" not in out
    assert out["flags_raw"] == flags
    imperial = bool(flags & 0x01)
    assert out["unit"] == ("lb" if imperial else "kg")
    assert out["weight_raw"] == 15000
    assert out["weight"] == (150.0 if imperial else 75.0)
    assert out["weight_kg"] == (68.0388555 if imperial else 75.0)
    assert out["timestamp"] == ("2024-03-15T14:30:45" if flags & 0x02 else None)
    assert out["user_id"] == (2 if flags & 0x04 else None)
    if flags & 0x08:
        assert out["bmi"] == 25.8
        assert (out["height"], out["height_unit"], out["height_m"]) == (
            (68.0, "in", 1.7272) if imperial else (1.716, "m", 1.716)
        )
    else:
        assert (out["bmi"], out["height"], out["height_unit"], out["height_m"]) == (None, None, None, None)


def test_unit_switch_changes_weight_and_height_but_not_bmi() -> None:
    si = parse_weight_measurement(bytes.fromhex("08" + KG_75 + "0201a802"))
    imperial = parse_weight_measurement(bytes.fromhex("09" + KG_75 + "0201a802"))
    assert (si.unit, imperial.unit) == (WeightUnit.KG, WeightUnit.LB)
    assert (si.weight, imperial.weight) == (75.0, 150.0)
    assert (si.height, imperial.height) == (0.68, 68.0)
    assert si.bmi == imperial.bmi == 25.8


def test_pounds_convert_exactly_to_kilograms() -> None:
    m = parse_weight_measurement(bytes.fromhex("01" + "0100"))
    assert m.weight_kg == 0.0045359237
    assert str(m.weight_kg_decimal) == "0.0045359237"


def test_measurement_unsuccessful_is_not_a_weight() -> None:
    m = parse_weight_measurement(bytes.fromhex("00ffff"))
    assert m.measurement_unsuccessful
    assert m.outcome is MeasurementOutcome.FAILED
    assert (m.weight, m.weight_kg) == (None, None)
    fine = parse_weight_measurement(bytes.fromhex("00feff"))
    assert fine.outcome is MeasurementOutcome.OK
    assert fine.weight == 327.67


def test_unsuccessful_with_bmi_warns() -> None:
    m = parse_weight_measurement(bytes.fromhex("08ffff0201b406"))
    assert m.measurement_unsuccessful and m.bmi == 25.8
    assert any("unsuccessful" in w for w in m.warnings)


@pytest.mark.parametrize("bit", [0x10, 0x20, 0x40, 0x80])
def test_vendor_bits_warn_and_stay_in_flags_raw(bit: int) -> None:
    m = parse_weight_measurement(bytes([bit]) + bytes.fromhex(KG_75))
    assert m.flags_raw == bit
    assert m.weight == 75.0
    assert m.warnings and "RFU" in m.warnings[0]


def test_unknown_user_is_255() -> None:
    m = parse_weight_measurement(bytes.fromhex("04" + KG_75 + "ff"))
    assert m.user_id == 255 and not m.user_known
    assert parse_weight_measurement(bytes.fromhex("04" + KG_75 + "00")).user_known


def test_timestamp_is_the_device_wall_clock() -> None:
    m = parse_weight_measurement(build(0x02))
    assert m.timestamp == datetime(2024, 3, 15, 14, 30, 45)
    assert m.timestamp.tzinfo is None


FULL = build(0x0F)


@pytest.mark.parametrize("short_by", range(1, len(FULL) + 1), ids=lambda n: f"short_by_{n}")
def test_truncated_measurement_is_rejected(short_by: int) -> None:
    with pytest.raises(MalformedMeasurement) as info:
        parse_weight_measurement(FULL[:-short_by])
    assert info.value.characteristic == "2A9D"
    assert info.value.payload_hex == FULL[:-short_by].hex()


def test_short_frame_names_the_missing_fields() -> None:
    with pytest.raises(MalformedMeasurement, match="missing bmi, height"):
        parse_weight_measurement(FULL[:-4])


def test_trailing_bytes_warn() -> None:
    assert parse_weight_measurement(bytes.fromhex("00" + KG_75 + "00")).warnings


@pytest.mark.parametrize(
    ("hex_le", "names", "weight_code", "height_code"),
    [
        ("00000000", [], 0, 0),
        ("01000000", ["timestamp_supported"], 0, 0),
        ("02000000", ["multiple_users_supported"], 0, 0),
        ("04000000", ["bmi_supported"], 0, 0),
        ("b0010000", [], 6, 3),  # 6<<3 | 3<<7 = 0x1B0
        ("78000000", [], 15, 0),
        ("80030000", [], 0, 7),
    ],
)
def test_feature_bits_and_codes(hex_le: str, names: list[str], weight_code: int, height_code: int) -> None:
    f = parse_weight_scale_feature(bytes.fromhex(hex_le))
    assert f.feature_names == names
    assert (f.weight_resolution_code, f.height_resolution_code) == (weight_code, height_code)
    assert bool(f.warnings) == (weight_code >= 8 or height_code >= 4)


def test_feature_resolution_table() -> None:
    expected = {
        1: (0.5, 1.0),
        2: (0.2, 0.5),
        3: (0.1, 0.2),
        4: (0.05, 0.1),
        5: (0.02, 0.05),
        6: (0.01, 0.02),
        7: (0.005, 0.01),
    }
    for code, (kg, lb) in expected.items():
        f = parse_weight_scale_feature((code << 3).to_bytes(4, "little"))
        assert (f.weight_resolution_kg, f.weight_resolution_lb) == (kg, lb)
    heights = {1: (0.01, 1.0), 2: (0.005, 0.5), 3: (0.001, 0.1)}
    for code, (m, inch) in heights.items():
        f = parse_weight_scale_feature((code << 7).to_bytes(4, "little"))
        assert (f.height_resolution_m, f.height_resolution_in) == (m, inch)


@pytest.mark.parametrize("short_by", range(1, 5), ids=lambda n: f"short_by_{n}")
def test_truncated_feature_is_rejected(short_by: int) -> None:
    with pytest.raises(MalformedMeasurement, match="2A9E"):
        parse_weight_scale_feature(bytes(4)[:-short_by])


@seed(20261203)
@settings(max_examples=400, deadline=None)
@given(flags=st.integers(0, 255), body=st.binary(max_size=16))
def test_seeded_fuzz_decodes_or_raises_typed(flags: int, body: bytes) -> None:
    data = bytes([flags]) + body
    try:
        m = parse_weight_measurement(data)
    except GatewayError:
        return
    out = to_json_dict(m)
    assert out["flags_raw"] == flags
    assert (out["weight"] is None) == (out["weight_raw"] == 0xFFFF)
