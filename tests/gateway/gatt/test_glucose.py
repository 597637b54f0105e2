"""Glucose Measurement 0x2A18, Measurement Context 0x2A34, Feature 0x2A51, context merge and join."""

from __future__ import annotations

from datetime import datetime

import pytest

from gateway.errors import ContextMismatch, MalformedMeasurement
from gateway.gatt import (
    ConcentrationUnit,
    ContextJoiner,
    MeasurementOutcome,
    merge_glucose_context,
    parse_glucose_context,
    parse_glucose_feature,
    parse_glucose_measurement,
    to_json_dict,
)

SEQ = "0100"  # sequence number 1
BASE_TIME = "E807 03 0F 0E 1E 2D"  # 2024-03-15 14:30:45
OFFSET = "F6FF"  # -10 minutes (sint16)
KG_L = "78B0 11"  # 0.0012 kg/L (mant 120, exp -5) = 120 mg/dL; capillary whole blood, finger
MOL_L = "37C0 11"  # 0.0055 mol/L (mant 55, exp -4) = 5.5 mmol/L
STATUS = "0100"  # device battery low


def build(flags: int) -> bytes:
    parts = [f"{flags:02X}", SEQ, BASE_TIME]
    if flags & 0x01:
        parts.append(OFFSET)
    if flags & 0x02:
        parts.append(MOL_L if flags & 0x04 else KG_L)
    if flags & 0x08:
        parts.append(STATUS)
    return bytes.fromhex("".join(parts))


@pytest.mark.parametrize("flags", range(32), ids=lambda f: f"flags_{f:02x}")
def test_every_flag_combination(flags: int) -> None:
    data = build(flags)
    assert len(data) == 10 + 2 * bool(flags & 1) + 3 * bool(flags & 2) + 2 * bool(flags & 8)
    m = parse_glucose_measurement(data)
    assert m.warnings == ()
    out = to_json_dict(m)
    assert out["sequence_number"] == 1
    assert out["base_time"] == "2024-03-15T14:30:45"
    assert out["time_offset_minutes"] == (-10 if flags & 1 else None)
    assert out["user_facing_time"] == ("2024-03-15T14:20:45" if flags & 1 else "2024-03-15T14:30:45")
    if flags & 0x02 and flags & 0x04:
        assert (out["concentration"], out["unit"]) == (0.0055, "mol/L")
        assert (out["concentration_mmol_L"], out["concentration_mg_dL"]) == (5.5, None)
    elif flags & 0x02:
        assert (out["concentration"], out["unit"]) == (0.0012, "kg/L")
        assert (out["concentration_mg_dL"], out["concentration_mmol_L"]) == (120.0, None)
    else:
        assert out["concentration"] is None and out["unit"] is None
        assert out["concentration_mg_dL"] is None and out["concentration_mmol_L"] is None
        assert m.outcome is MeasurementOutcome.FAILED
    if flags & 0x02:
        assert (out["type"], out["sample_location"]) == ("capillary_whole_blood", "finger")
        assert m.outcome is MeasurementOutcome.OK
    else:
        assert out["type"] is None and out["sample_location"] is None
    assert out["sensor_status"] == (["device_battery_low"] if flags & 0x08 else None)
    assert out["sensor_status_raw"] == (1 if flags & 0x08 else None)
    assert out["context_follows"] is bool(flags & 0x10)


@pytest.mark.parametrize(
    ("status_hex", "names"),
    [
        ("2000", ["result_higher_than_device_can_process"]),  # bit 5 is HIGH (nRF5 SDK order)
        ("4000", ["result_lower_than_device_can_process"]),  # bit 6 is LOW
        ("0208", ["sensor_malfunction", "time_fault"]),
        (
            "FF0F",
            [
                "device_battery_low",
                "sensor_malfunction",
                "sample_size_insufficient",
                "strip_insertion_error",
                "strip_type_incorrect",
                "result_higher_than_device_can_process",
                "result_lower_than_device_can_process",
                "sensor_temperature_too_high",
                "sensor_temperature_too_low",
                "read_interrupted",
                "general_device_fault",
                "time_fault",
            ],
        ),
    ],
)
def test_sensor_status_names(status_hex: str, names: list[str]) -> None:
    out = to_json_dict(parse_glucose_measurement(bytes.fromhex("08" + SEQ + BASE_TIME + status_hex)))
    assert out["sensor_status"] == names


def test_rfu_sensor_status_bits_warn() -> None:
    m = parse_glucose_measurement(bytes.fromhex("08" + SEQ + BASE_TIME + "0010"))
    assert m.sensor_status_names == []
    assert m.warnings == ("RFU sensor status bits set: 0x1000",)


@pytest.mark.parametrize(
    ("type_location", "sample_type", "location"),
    [
        ("11", "capillary_whole_blood", "finger"),
        ("22", "capillary_plasma", "alternate_site_test"),
        ("33", "venous_whole_blood", "earlobe"),
        ("F4", "venous_plasma", "not_available"),
        ("F5", "arterial_whole_blood", "not_available"),
        ("F6", "arterial_plasma", "not_available"),
        ("F7", "undetermined_whole_blood", "not_available"),
        ("F8", "undetermined_plasma", "not_available"),
        ("F9", "interstitial_fluid", "not_available"),
        ("4A", "control_solution", "control_solution"),
    ],
)
def test_type_and_location_nibbles(type_location: str, sample_type: str, location: str) -> None:
    m = parse_glucose_measurement(bytes.fromhex("02" + SEQ + BASE_TIME + "78B0" + type_location))
    out = to_json_dict(m)
    assert (out["type"], out["sample_location"]) == (sample_type, location)
    assert m.is_control_solution is (sample_type == "control_solution")


def test_reserved_type_and_location_warn() -> None:
    m = parse_glucose_measurement(bytes.fromhex("02" + SEQ + BASE_TIME + "78B0" + "5B"))
    out = to_json_dict(m)
    assert (out["type"], out["sample_location"]) == ("reserved_11", "reserved_5")
    assert m.warnings == ("reserved sample type code 11", "reserved sample location code 5")


def test_control_solution_by_location_only() -> None:
    assert parse_glucose_measurement(
        bytes.fromhex("02" + SEQ + BASE_TIME + "78B0" + "41")
    ).is_control_solution


@pytest.mark.parametrize(
    ("conc", "printed", "outcome"),
    [
        ("FE07", "+INF", MeasurementOutcome.OUT_OF_RANGE_HIGH),
        ("0208", "-INF", MeasurementOutcome.OUT_OF_RANGE_LOW),
        ("FF07", "NaN", MeasurementOutcome.FAILED),
        ("0008", "NRes", MeasurementOutcome.FAILED),
        ("0108", "reserved", MeasurementOutcome.FAILED),
    ],
)
def test_concentration_specials(conc: str, printed: str, outcome: MeasurementOutcome) -> None:
    m = parse_glucose_measurement(bytes.fromhex("02" + SEQ + BASE_TIME + conc + "11"))
    out = to_json_dict(m)
    assert out["concentration"] == printed
    assert out["concentration_mg_dL"] == printed
    assert m.outcome is outcome


def test_sequence_number_is_unsigned() -> None:
    m = parse_glucose_measurement(bytes.fromhex("00" + "FFFF" + BASE_TIME))
    assert m.sequence_number == 65535


def test_unknown_base_time() -> None:
    out = to_json_dict(parse_glucose_measurement(bytes.fromhex("01" + SEQ + "00000000000000" + OFFSET)))
    assert out["base_time"] is None and out["user_facing_time"] is None
    assert out["time_offset_minutes"] == -10


def test_positive_time_offset_crosses_midnight() -> None:
    m = parse_glucose_measurement(bytes.fromhex("01" + SEQ + "E807030F173B00" + "3C00"))
    assert m.user_facing_time == datetime(2024, 3, 16, 0, 59, 0)


def test_user_facing_time_leaving_the_calendar_warns() -> None:
    m = parse_glucose_measurement(bytes.fromhex("01" + SEQ + "0F270C1F173B3B" + "FF7F"))
    assert m.base_time == datetime(9999, 12, 31, 23, 59, 59)
    assert m.user_facing_time is None
    assert len(m.warnings) == 1


def test_rfu_flags_and_trailing_bytes_warn() -> None:
    m = parse_glucose_measurement(bytes.fromhex("E0" + SEQ + BASE_TIME + "0000"))
    assert m.warnings == ("2 trailing byte(s) ignored: 0000", "RFU flag bits set: 0xE0")


FULL = build(0x1B)


@pytest.mark.parametrize("short_by", range(1, len(FULL) + 1), ids=lambda n: f"short_by_{n}")
def test_truncated_measurement_is_rejected(short_by: int) -> None:
    with pytest.raises(MalformedMeasurement) as info:
        parse_glucose_measurement(FULL[:-short_by])
    assert info.value.characteristic == "2A18"


def test_flag_b1_without_concentration_bytes_is_rejected_not_guessed() -> None:
    with pytest.raises(MalformedMeasurement, match="missing glucose_concentration, type_sample_location"):
        parse_glucose_measurement(bytes.fromhex("02" + SEQ + BASE_TIME))


# --- Measurement Context 0x2A34 -------------------------------------------------------------

CTX_EXTENDED = "00"
CTX_CARB = "01 05E0"  # breakfast, 0.05 kg (mant 5, exp -2)
CTX_MEAL = "01"  # preprandial
CTX_TESTER_HEALTH = "51"  # tester self (low nibble), health none (high nibble)
CTX_EXERCISE = "100E 32"  # 3600 s, 50 %
CTX_MEDICATION = "01 02A0"  # rapid-acting insulin, 2e-6 (mant 2, exp -6)
CTX_HBA1C = "41F0"  # 6.5 %


def build_context(flags: int) -> bytes:
    parts = [f"{flags:02X}", SEQ]
    for bit, fragment in (
        (0x80, CTX_EXTENDED),
        (0x01, CTX_CARB),
        (0x02, CTX_MEAL),
        (0x04, CTX_TESTER_HEALTH),
        (0x08, CTX_EXERCISE),
        (0x10, CTX_MEDICATION),
        (0x40, CTX_HBA1C),
    ):
        if flags & bit:
            parts.append(fragment)
    return bytes.fromhex("".join(parts))


@pytest.mark.parametrize(
    "flags", [f for f in range(256) if not (f & 0x20 and not f & 0x10)], ids=lambda f: f"flags_{f:02x}"
)
def test_context_every_flag_combination(flags: int) -> None:
    c = parse_glucose_context(build_context(flags))
    assert c.warnings == ()
    out = to_json_dict(c)
    assert out["sequence_number"] == 1
    assert out["carbohydrate_id"] == ("breakfast" if flags & 0x01 else None)
    assert out["carbohydrate_amount_kg"] == (0.05 if flags & 0x01 else None)
    assert out["meal"] == ("preprandial" if flags & 0x02 else None)
    assert out["tester"] == ("self" if flags & 0x04 else None)
    assert out["health"] == ("no_health_issues" if flags & 0x04 else None)
    assert out["exercise_duration_s"] == (3600 if flags & 0x08 else None)
    assert out["exercise_intensity_pct"] == (50 if flags & 0x08 else None)
    assert out["medication_id"] == ("rapid_acting_insulin" if flags & 0x10 else None)
    assert out["medication_amount"] == (2e-6 if flags & 0x10 else None)
    expected_unit = ("L" if flags & 0x20 else "kg") if flags & 0x10 else None
    assert out["medication_unit"] == expected_unit
    assert out["hba1c_pct"] == (6.5 if flags & 0x40 else None)


@pytest.mark.parametrize(
    ("fragment_flags", "fragment", "field", "expected"),
    [
        (0x01, "07 0100", "carbohydrate_id", "brunch"),
        (0x01, "08 0100", "carbohydrate_id", "reserved_8"),
        (0x02, "05", "meal", "bedtime"),
        (0x02, "06", "meal", "reserved_6"),
        (0x04, "F2", "tester", "health_care_professional"),
        (0x04, "F2", "health", "not_available"),
        (0x04, "43", "tester", "lab_test"),
        (0x04, "43", "health", "under_stress"),
        (0x04, "3F", "tester", "not_available"),
        (0x04, "3F", "health", "during_menses"),
        (0x04, "00", "tester", "reserved_0"),
        (0x10, "05 0100", "medication_id", "pre_mixed_insulin"),
        (0x10, "06 0100", "medication_id", "reserved_6"),
    ],
)
def test_context_codes(fragment_flags: int, fragment: str, field: str, expected: str) -> None:
    out = to_json_dict(parse_glucose_context(bytes.fromhex(f"{fragment_flags:02X}" + SEQ + fragment)))
    assert out[field] == expected
    assert bool(out.get("warnings", [])) is expected.startswith("reserved_")


def test_context_rfu_extended_flags_warn() -> None:
    c = parse_glucose_context(bytes.fromhex("80" + SEQ + "01"))
    assert c.extended_flags == 1
    assert c.warnings == ("RFU extended flags set: 0x01",)


def test_context_medication_unit_without_medication_warns() -> None:
    c = parse_glucose_context(bytes.fromhex("20" + SEQ))
    assert c.medication_unit is None
    assert c.warnings == ("medication unit flag set without medication",)


def test_context_exercise_overrun() -> None:
    c = parse_glucose_context(bytes.fromhex("08" + SEQ + "FFFF64"))
    assert c.exercise_duration_s == 65535 and c.exercise_duration_overrun


CTX_FULL = build_context(0xFF)


@pytest.mark.parametrize("short_by", range(1, len(CTX_FULL) + 1), ids=lambda n: f"short_by_{n}")
def test_truncated_context_is_rejected(short_by: int) -> None:
    with pytest.raises(MalformedMeasurement, match="2A34"):
        parse_glucose_context(CTX_FULL[:-short_by])


# --- merge and join -------------------------------------------------------------------------


def test_merge_by_sequence_number() -> None:
    m = parse_glucose_measurement(build(0x13))
    c = parse_glucose_context(build_context(0x02))
    record = merge_glucose_context(m, c)
    assert record.context is c
    assert record.raw_hex == f"{m.raw_hex}+{c.raw_hex}"
    out = to_json_dict(record)
    assert out["context"]["meal"] == "preprandial"
    assert out["concentration_mg_dL"] == 120.0


def test_merge_refuses_another_sequence_number() -> None:
    m = parse_glucose_measurement(build(0x13))
    c = parse_glucose_context(bytes.fromhex("02" + "0200" + "01"))
    with pytest.raises(ContextMismatch) as info:
        merge_glucose_context(m, c)
    assert (info.value.measurement_sequence, info.value.context_sequence) == (1, 2)


def test_joiner_waits_for_context_then_releases() -> None:
    joiner = ContextJoiner(timeout_s=5.0)
    m = parse_glucose_measurement(build(0x13))
    assert joiner.add_measurement(m, now=0.0) == []
    records = joiner.add_context(parse_glucose_context(build_context(0x02)), now=1.0)
    assert [r.context is not None for r in records] == [True]
    assert joiner.pending == 0


def test_joiner_releases_without_context_on_timeout_and_returns_orphans() -> None:
    joiner = ContextJoiner(timeout_s=5.0)
    joiner.add_measurement(parse_glucose_measurement(build(0x13)), now=0.0)
    joiner.add_context(parse_glucose_context(bytes.fromhex("02" + "0900" + "01")), now=0.0)
    assert joiner.expire(now=4.0).records_without_context == []
    expired = joiner.expire(now=5.0)
    assert [r.measurement.sequence_number for r in expired.records_without_context] == [1]
    assert [c.sequence_number for c in expired.orphan_contexts] == [9]
    assert joiner.pending == 0


def test_joiner_passes_measurements_without_context_flag() -> None:
    joiner = ContextJoiner(timeout_s=5.0)
    records = joiner.add_measurement(parse_glucose_measurement(build(0x03)), now=0.0)
    assert len(records) == 1 and records[0].context is None


def test_measurement_unit_enum() -> None:
    assert parse_glucose_measurement(build(0x06)).unit is ConcentrationUnit.MOL_PER_L


# --- Feature 0x2A51 -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hex_le", "features"),
    [
        ("0000", []),
        (
            "FF07",
            [
                "low_battery_detection",
                "sensor_malfunction_detection",
                "sample_size",
                "strip_insertion_error",
                "strip_type_error",
                "result_high_low",
                "temperature_high_low",
                "read_interrupt",
                "general_device_fault",
                "time_fault",
                "multiple_bond",
            ],
        ),
        ("2004", ["result_high_low", "multiple_bond"]),
    ],
)
def test_glucose_feature(hex_le: str, features: list[str]) -> None:
    assert to_json_dict(parse_glucose_feature(bytes.fromhex(hex_le))) == {
        "features": features,
    }


def test_glucose_feature_rfu_warns() -> None:
    assert parse_glucose_feature(bytes.fromhex("0008")).warnings == ("RFU feature bits set: 0x0800",)


@pytest.mark.parametrize("short_by", [1, 2], ids=lambda n: f"short_by_{n}")
def test_glucose_feature_short(short_by: int) -> None:
    with pytest.raises(MalformedMeasurement):
        parse_glucose_feature(bytes.fromhex("FF07")[:-short_by])
