"""Glucose Service 0x1808: Measurement 0x2A18 and Feature 0x2A51 (Context 0x2A34: glucose_context).

Layouts follow DOMAIN A3.  Concentration units follow GSS: flag b2 = 0 is kg/L, 1 is mol/L; the
canonical conversions are exact decimal shifts (kg/L × 10**5 = mg/dL, mol/L × 10**3 = mmol/L).
Sensor status bit 5 is "result higher", bit 6 "result lower" (nRF5 SDK order).  Short frames are
refused naming the missing fields; trailing bytes, RFU flag / status bits and reserved enum codes
decode with warnings.  A measurement with b4 set is joined to its context by sequence number
(:func:`gateway.gatt.glucose_context.merge_glucose_context`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.gatt._wire import Reader, require_layout
from gateway.gatt.datetime_ import DATE_TIME_SIZE, read_date_time
from gateway.gatt.ieee11073 import MedFloat, Special
from gateway.gatt.outcome import MeasurementOutcome, outcome_of

__all__ = [
    "CARBOHYDRATE_NAMES",
    "CONTROL_SOLUTION_LOCATION",
    "CONTROL_SOLUTION_TYPE",
    "HEALTH_NAMES",
    "MEAL_NAMES",
    "MEDICATION_NAMES",
    "SAMPLE_LOCATION_NAMES",
    "SAMPLE_TYPE_NAMES",
    "TESTER_NAMES",
    "ConcentrationUnit",
    "GlucoseFeature",
    "GlucoseFeatureBits",
    "GlucoseFlags",
    "GlucoseMeasurement",
    "SensorStatus",
    "check_code",
    "code_name",
    "parse_glucose_feature",
    "parse_glucose_measurement",
]


class GlucoseFlags(enum.IntFlag):
    TIME_OFFSET_PRESENT = 0x01
    CONCENTRATION_PRESENT = 0x02
    UNITS_MOL_PER_L = 0x04
    SENSOR_STATUS_PRESENT = 0x08
    CONTEXT_FOLLOWS = 0x10


_GLUCOSE_FLAGS_RFU = 0xE0


class ConcentrationUnit(enum.Enum):
    KG_PER_L = "kg/L"
    MOL_PER_L = "mol/L"


class SensorStatus(enum.IntFlag):
    """Sensor Status Annunciation; member names lower-cased are the Part B names."""

    DEVICE_BATTERY_LOW = 0x0001
    SENSOR_MALFUNCTION = 0x0002
    SAMPLE_SIZE_INSUFFICIENT = 0x0004
    STRIP_INSERTION_ERROR = 0x0008
    STRIP_TYPE_INCORRECT = 0x0010
    RESULT_HIGHER_THAN_DEVICE_CAN_PROCESS = 0x0020
    RESULT_LOWER_THAN_DEVICE_CAN_PROCESS = 0x0040
    SENSOR_TEMPERATURE_TOO_HIGH = 0x0080
    SENSOR_TEMPERATURE_TOO_LOW = 0x0100
    READ_INTERRUPTED = 0x0200
    GENERAL_DEVICE_FAULT = 0x0400
    TIME_FAULT = 0x0800


_SENSOR_STATUS_RFU = 0xF000

SAMPLE_TYPE_NAMES = {
    1: "capillary_whole_blood",
    2: "capillary_plasma",
    3: "venous_whole_blood",
    4: "venous_plasma",
    5: "arterial_whole_blood",
    6: "arterial_plasma",
    7: "undetermined_whole_blood",
    8: "undetermined_plasma",
    9: "interstitial_fluid",
    10: "control_solution",
}
SAMPLE_LOCATION_NAMES = {
    1: "finger",
    2: "alternate_site_test",
    3: "earlobe",
    4: "control_solution",
    15: "not_available",
}
CONTROL_SOLUTION_TYPE = 10
CONTROL_SOLUTION_LOCATION = 4

CARBOHYDRATE_NAMES = {
    1: "breakfast",
    2: "lunch",
    3: "dinner",
    4: "snack",
    5: "drink",
    6: "supper",
    7: "brunch",
}
MEAL_NAMES = {1: "preprandial", 2: "postprandial", 3: "fasting", 4: "casual", 5: "bedtime"}
TESTER_NAMES = {1: "self", 2: "health_care_professional", 3: "lab_test", 15: "not_available"}
HEALTH_NAMES = {
    1: "minor_health_issues",
    2: "major_health_issues",
    3: "during_menses",
    4: "under_stress",
    5: "no_health_issues",
    15: "not_available",
}
MEDICATION_NAMES = {
    1: "rapid_acting_insulin",
    2: "short_acting_insulin",
    3: "intermediate_acting_insulin",
    4: "long_acting_insulin",
    5: "pre_mixed_insulin",
}


def code_name(names: dict[int, str], code: int | None) -> str | None:
    """The Part B name of an enum code, ``reserved_<n>`` for RFU codes, ``None`` when absent."""
    if code is None:
        return None
    return names.get(code, f"reserved_{code}")


def check_code(names: dict[int, str], code: int, what: str, warnings: list[str]) -> None:
    if code not in names:
        warnings.append(f"reserved {what} code {code}")


@dataclass(frozen=True, slots=True)
class GlucoseMeasurement:
    """A decoded 0x2A18 value.  ``base_time`` is ``None`` when the meter's date is unknown."""

    flags: GlucoseFlags
    sequence_number: int
    base_time: datetime | None
    time_offset_minutes: int | None
    concentration: MedFloat | None
    unit: ConcentrationUnit | None
    sample_type: int | None
    sample_location: int | None
    sensor_status_raw: int | None
    sensor_status: SensorStatus | None
    raw_hex: str
    warnings: tuple[str, ...]

    @property
    def context_follows(self) -> bool:
        return bool(self.flags & GlucoseFlags.CONTEXT_FOLLOWS)

    @property
    def user_facing_time(self) -> datetime | None:
        """Base Time + Time Offset; ``None`` when the base time is unknown or the sum leaves 1..9999."""
        if self.base_time is None:
            return None
        if self.time_offset_minutes is None:
            return self.base_time
        try:
            return self.base_time + timedelta(minutes=self.time_offset_minutes)
        except OverflowError:
            return None

    @property
    def concentration_mg_dl(self) -> float | Special | None:
        """kg/L × 100 000 (exact); ``None`` unless the unit is kg/L and a concentration is present."""
        if self.concentration is None or self.unit is not ConcentrationUnit.KG_PER_L:
            return None
        return self.concentration.scaled(5)

    @property
    def concentration_mmol_l(self) -> float | Special | None:
        """mol/L × 1000 (exact); ``None`` unless the unit is mol/L and a concentration is present."""
        if self.concentration is None or self.unit is not ConcentrationUnit.MOL_PER_L:
            return None
        return self.concentration.scaled(3)

    @property
    def sample_type_name(self) -> str | None:
        return code_name(SAMPLE_TYPE_NAMES, self.sample_type)

    @property
    def sample_location_name(self) -> str | None:
        return code_name(SAMPLE_LOCATION_NAMES, self.sample_location)

    @property
    def sensor_status_names(self) -> list[str] | None:
        if self.sensor_status is None:
            return None
        return [bit.name.lower() for bit in SensorStatus if bit.name and self.sensor_status & bit]

    @property
    def is_control_solution(self) -> bool:
        """Control-solution tests (type 10 or location 4) are device checks, not patient readings."""
        return self.sample_type == CONTROL_SOLUTION_TYPE or self.sample_location == CONTROL_SOLUTION_LOCATION

    @property
    def outcome(self) -> MeasurementOutcome:
        """Failed without a usable concentration; ±INF are the meter's HI / LO."""
        return outcome_of((self.concentration,))


def parse_glucose_measurement(data: bytes) -> GlucoseMeasurement:
    """Parse a 0x2A18 value; raises :class:`~gateway.errors.MalformedMeasurement` when it is short."""
    data = bytes(data)
    reader = Reader(data, "2A18")
    flags = GlucoseFlags(reader.u8("flags"))
    layout = [("flags", 1), ("sequence_number", 2), ("base_time", DATE_TIME_SIZE)]
    if flags & GlucoseFlags.TIME_OFFSET_PRESENT:
        layout.append(("time_offset", 2))
    if flags & GlucoseFlags.CONCENTRATION_PRESENT:
        layout += [("glucose_concentration", 2), ("type_sample_location", 1)]
    if flags & GlucoseFlags.SENSOR_STATUS_PRESENT:
        layout.append(("sensor_status_annunciation", 2))
    warnings = require_layout(data, "2A18", layout, f"flags 0x{int(flags):02X}")
    if flags & _GLUCOSE_FLAGS_RFU:
        warnings.append(f"RFU flag bits set: 0x{flags & _GLUCOSE_FLAGS_RFU:02X}")

    sequence_number = reader.u16("sequence_number")
    base_time = read_date_time(reader, "base_time")
    time_offset = reader.s16("time_offset") if flags & GlucoseFlags.TIME_OFFSET_PRESENT else None
    concentration: MedFloat | None = None
    unit: ConcentrationUnit | None = None
    sample_type: int | None = None
    sample_location: int | None = None
    if flags & GlucoseFlags.CONCENTRATION_PRESENT:
        concentration = reader.sfloat("glucose_concentration")
        unit = (
            ConcentrationUnit.MOL_PER_L
            if flags & GlucoseFlags.UNITS_MOL_PER_L
            else ConcentrationUnit.KG_PER_L
        )
        type_location = reader.u8("type_sample_location")
        sample_type, sample_location = type_location & 0x0F, type_location >> 4
        check_code(SAMPLE_TYPE_NAMES, sample_type, "sample type", warnings)
        check_code(SAMPLE_LOCATION_NAMES, sample_location, "sample location", warnings)
    status_raw: int | None = None
    status: SensorStatus | None = None
    if flags & GlucoseFlags.SENSOR_STATUS_PRESENT:
        status_raw = reader.u16("sensor_status_annunciation")
        status = SensorStatus(status_raw & ~_SENSOR_STATUS_RFU & 0xFFFF)
        if status_raw & _SENSOR_STATUS_RFU:
            warnings.append(f"RFU sensor status bits set: 0x{status_raw & _SENSOR_STATUS_RFU:04X}")
    if base_time is not None and time_offset is not None:
        try:
            base_time + timedelta(minutes=time_offset)
        except OverflowError:
            warnings.append("base_time + time_offset leaves the calendar; user_facing_time unknown")
    return GlucoseMeasurement(
        flags=flags,
        sequence_number=sequence_number,
        base_time=base_time,
        time_offset_minutes=time_offset,
        concentration=concentration,
        unit=unit,
        sample_type=sample_type,
        sample_location=sample_location,
        sensor_status_raw=status_raw,
        sensor_status=status,
        raw_hex=data.hex(),
        warnings=tuple(warnings),
    )


class GlucoseFeatureBits(enum.IntFlag):
    """0x2A51 bits; member names lower-cased are the printed feature names."""

    LOW_BATTERY_DETECTION = 0x0001
    SENSOR_MALFUNCTION_DETECTION = 0x0002
    SAMPLE_SIZE = 0x0004
    STRIP_INSERTION_ERROR = 0x0008
    STRIP_TYPE_ERROR = 0x0010
    RESULT_HIGH_LOW = 0x0020
    TEMPERATURE_HIGH_LOW = 0x0040
    READ_INTERRUPT = 0x0080
    GENERAL_DEVICE_FAULT = 0x0100
    TIME_FAULT = 0x0200
    MULTIPLE_BOND = 0x0400


_GLUCOSE_FEATURE_RFU = 0xF800


@dataclass(frozen=True, slots=True)
class GlucoseFeature:
    features: GlucoseFeatureBits
    raw: int
    raw_hex: str
    warnings: tuple[str, ...]

    @property
    def feature_names(self) -> list[str]:
        return [bit.name.lower() for bit in GlucoseFeatureBits if bit.name and self.features & bit]


def parse_glucose_feature(data: bytes) -> GlucoseFeature:
    """Parse a 0x2A51 value (uint16 bitmap)."""
    data = bytes(data)
    warnings = require_layout(data, "2A51", [("glucose_feature", 2)])
    raw = Reader(data, "2A51").u16("glucose_feature")
    if raw & _GLUCOSE_FEATURE_RFU:
        warnings.append(f"RFU feature bits set: 0x{raw & _GLUCOSE_FEATURE_RFU:04X}")
    return GlucoseFeature(
        features=GlucoseFeatureBits(raw & ~_GLUCOSE_FEATURE_RFU & 0xFFFF),
        raw=raw,
        raw_hex=data.hex(),
        warnings=tuple(warnings),
    )
