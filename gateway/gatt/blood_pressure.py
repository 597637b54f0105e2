"""Blood Pressure Service 0x1810: Measurement 0x2A35, Intermediate Cuff Pressure 0x2A36, Feature 0x2A49.

Layout (DOMAIN A2.1): flags, three SFLOATs, then Time Stamp / Pulse Rate / User ID / Measurement
Status as the flags say.  The frame must be at least as long as the flags imply; a shorter one is
refused naming the missing fields.  Extra bytes, RFU flag or status bits and the RFU pulse-rate
range 3 decode with warnings.  0x2A36 shares the layout but its first value is the live cuff
pressure: it is a separate type so nobody stores it as a reading.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gateway.gatt._wire import Reader, require_layout
from gateway.gatt.datetime_ import DATE_TIME_SIZE, read_date_time
from gateway.gatt.ieee11073 import MedFloat, Special
from gateway.gatt.outcome import MeasurementOutcome, outcome_of

__all__ = [
    "BloodPressureFeature",
    "BloodPressureFeatureBits",
    "BloodPressureFlags",
    "BloodPressureMeasurement",
    "IntermediateCuffPressure",
    "MeasurementStatus",
    "PressureUnit",
    "PulseRateRange",
    "parse_blood_pressure_feature",
    "parse_blood_pressure_measurement",
    "parse_intermediate_cuff_pressure",
]


class BloodPressureFlags(enum.IntFlag):
    UNITS_KPA = 0x01
    TIME_STAMP_PRESENT = 0x02
    PULSE_RATE_PRESENT = 0x04
    USER_ID_PRESENT = 0x08
    MEASUREMENT_STATUS_PRESENT = 0x10


_BP_FLAGS_RFU = 0xE0


class MeasurementStatus(enum.IntFlag):
    """Measurement Status bits that are flags; bits 3–4 are :class:`PulseRateRange`."""

    BODY_MOVEMENT = 0x0001
    CUFF_TOO_LOOSE = 0x0002
    IRREGULAR_PULSE = 0x0004
    IMPROPER_MEASUREMENT_POSITION = 0x0020


_STATUS_NAMES = (
    (MeasurementStatus.BODY_MOVEMENT, "body_movement"),
    (MeasurementStatus.CUFF_TOO_LOOSE, "cuff_too_loose"),
    (MeasurementStatus.IRREGULAR_PULSE, "irregular_pulse"),
    (MeasurementStatus.IMPROPER_MEASUREMENT_POSITION, "improper_measurement_position"),
)
_STATUS_RFU = 0xFFC0


class PulseRateRange(enum.Enum):
    """Measurement Status bits 3–4; ``.value`` is the printed name."""

    WITHIN_RANGE = "within_range"
    EXCEEDS_UPPER_LIMIT = "exceeds_upper_limit"
    BELOW_LOWER_LIMIT = "below_lower_limit"
    RESERVED_3 = "reserved_3"


_PULSE_RANGES = (
    PulseRateRange.WITHIN_RANGE,
    PulseRateRange.EXCEEDS_UPPER_LIMIT,
    PulseRateRange.BELOW_LOWER_LIMIT,
    PulseRateRange.RESERVED_3,
)


class PressureUnit(enum.Enum):
    MMHG = "mmHg"
    KPA = "kPa"


def status_names(status: MeasurementStatus | None) -> list[str] | None:
    """The Part B ``status`` list (``None`` when the device sent no status field)."""
    if status is None:
        return None
    return [name for bit, name in _STATUS_NAMES if status & bit]


@dataclass(frozen=True, slots=True)
class BloodPressureMeasurement:
    """A decoded 0x2A35 value.  ``timestamp`` is ``None`` when absent *or* unknown (see ``flags``)."""

    flags: BloodPressureFlags
    unit: PressureUnit
    systolic: MedFloat
    diastolic: MedFloat
    mean_arterial_pressure: MedFloat
    timestamp: datetime | None
    pulse_rate: MedFloat | None
    user_id: int | None
    measurement_status_raw: int | None
    status: MeasurementStatus | None
    pulse_rate_range: PulseRateRange | None
    raw_hex: str
    warnings: tuple[str, ...]

    @property
    def outcome(self) -> MeasurementOutcome:
        """Failed when systolic or diastolic is NaN/NRes/reserved: such a frame is not a measurement."""
        return outcome_of((self.systolic, self.diastolic))

    @property
    def status_names(self) -> list[str] | None:
        return status_names(self.status)

    @property
    def user_known(self) -> bool:
        """User ID 0xFF means "unknown user"; map users to patients only through configuration."""
        return self.user_id is not None and self.user_id != 0xFF


@dataclass(frozen=True, slots=True)
class IntermediateCuffPressure:
    """A decoded 0x2A36 value: live cuff pressure during inflation, never a reading."""

    flags: BloodPressureFlags
    unit: PressureUnit
    current_cuff_pressure: MedFloat
    diastolic: MedFloat
    mean_arterial_pressure: MedFloat
    timestamp: datetime | None
    pulse_rate: MedFloat | None
    user_id: int | None
    measurement_status_raw: int | None
    status: MeasurementStatus | None
    pulse_rate_range: PulseRateRange | None
    raw_hex: str
    warnings: tuple[str, ...]

    @property
    def status_names(self) -> list[str] | None:
        return status_names(self.status)


def _parse(data: bytes, characteristic: str, first_field: str) -> dict[str, Any]:
    reader = Reader(data, characteristic)
    flags = BloodPressureFlags(reader.u8("flags"))
    layout = [("flags", 1), (first_field, 2), ("diastolic", 2), ("mean_arterial_pressure", 2)]
    if flags & BloodPressureFlags.TIME_STAMP_PRESENT:
        layout.append(("time_stamp", DATE_TIME_SIZE))
    if flags & BloodPressureFlags.PULSE_RATE_PRESENT:
        layout.append(("pulse_rate", 2))
    if flags & BloodPressureFlags.USER_ID_PRESENT:
        layout.append(("user_id", 1))
    if flags & BloodPressureFlags.MEASUREMENT_STATUS_PRESENT:
        layout.append(("measurement_status", 2))
    warnings = require_layout(data, characteristic, layout, f"flags 0x{int(flags):02X}")
    if flags & _BP_FLAGS_RFU:
        warnings.append(f"RFU flag bits set: 0x{flags & _BP_FLAGS_RFU:02X}")

    first = reader.sfloat(first_field)
    diastolic = reader.sfloat("diastolic")
    mean_arterial = reader.sfloat("mean_arterial_pressure")
    timestamp = None
    if flags & BloodPressureFlags.TIME_STAMP_PRESENT:
        timestamp = read_date_time(reader, "time_stamp")
    pulse_rate = reader.sfloat("pulse_rate") if flags & BloodPressureFlags.PULSE_RATE_PRESENT else None
    user_id = reader.u8("user_id") if flags & BloodPressureFlags.USER_ID_PRESENT else None
    status_raw: int | None = None
    status: MeasurementStatus | None = None
    pulse_range: PulseRateRange | None = None
    if flags & BloodPressureFlags.MEASUREMENT_STATUS_PRESENT:
        status_raw = reader.u16("measurement_status")
        status = MeasurementStatus(status_raw & 0x0027)
        pulse_range = _PULSE_RANGES[(status_raw >> 3) & 0x3]
        if pulse_range is PulseRateRange.RESERVED_3:
            warnings.append("reserved pulse rate range value 3")
        if status_raw & _STATUS_RFU:
            warnings.append(f"RFU measurement status bits set: 0x{status_raw & _STATUS_RFU:04X}")
    return {
        "flags": flags,
        "unit": PressureUnit.KPA if flags & BloodPressureFlags.UNITS_KPA else PressureUnit.MMHG,
        first_field: first,
        "diastolic": diastolic,
        "mean_arterial_pressure": mean_arterial,
        "timestamp": timestamp,
        "pulse_rate": pulse_rate,
        "user_id": user_id,
        "measurement_status_raw": status_raw,
        "status": status,
        "pulse_rate_range": pulse_range,
        "raw_hex": data.hex(),
        "warnings": warnings,
    }


def parse_blood_pressure_measurement(data: bytes) -> BloodPressureMeasurement:
    """Parse a 0x2A35 value; raises :class:`~gateway.errors.MalformedMeasurement` when it is short."""
    fields = _parse(bytes(data), "2A35", "systolic")
    fields["warnings"] = tuple(fields["warnings"])
    return BloodPressureMeasurement(**fields)


def parse_intermediate_cuff_pressure(data: bytes) -> IntermediateCuffPressure:
    """Parse a 0x2A36 value (same layout; diastolic and MAP should be NaN, warned otherwise)."""
    fields = _parse(bytes(data), "2A36", "current_cuff_pressure")
    warnings: list[str] = fields["warnings"]
    for name in ("diastolic", "mean_arterial_pressure"):
        value: MedFloat = fields[name]
        if value.special is not Special.NAN:
            warnings.append(f"intermediate cuff pressure: unused field {name} is {value}, expected NaN")
    fields["warnings"] = tuple(warnings)
    return IntermediateCuffPressure(**fields)


class BloodPressureFeatureBits(enum.IntFlag):
    """0x2A49 bits.  Bits 6–8 are BPS 1.1 additions as read from bluetooth-sig-python (DOMAIN A2.2)."""

    BODY_MOVEMENT_DETECTION = 0x0001
    CUFF_FIT_DETECTION = 0x0002
    IRREGULAR_PULSE_DETECTION = 0x0004
    PULSE_RATE_RANGE_DETECTION = 0x0008
    MEASUREMENT_POSITION_DETECTION = 0x0010
    MULTIPLE_BOND_SUPPORT = 0x0020
    E2E_CRC = 0x0040
    USER_DATA_SERVICE = 0x0080
    USER_FACING_TIME = 0x0100


_BP_FEATURE_RFU = 0xFE00


@dataclass(frozen=True, slots=True)
class BloodPressureFeature:
    features: BloodPressureFeatureBits
    raw: int
    raw_hex: str
    warnings: tuple[str, ...]

    @property
    def feature_names(self) -> list[str]:
        return [bit.name.lower() for bit in BloodPressureFeatureBits if bit.name and self.features & bit]


def parse_blood_pressure_feature(data: bytes) -> BloodPressureFeature:
    """Parse a 0x2A49 value (uint16 bitmap)."""
    data = bytes(data)
    warnings = require_layout(data, "2A49", [("blood_pressure_feature", 2)])
    raw = Reader(data, "2A49").u16("blood_pressure_feature")
    if raw & _BP_FEATURE_RFU:
        warnings.append(f"RFU feature bits set: 0x{raw & _BP_FEATURE_RFU:04X}")
    return BloodPressureFeature(
        features=BloodPressureFeatureBits(raw & ~_BP_FEATURE_RFU & 0xFFFF),
        raw=raw,
        raw_hex=data.hex(),
        warnings=tuple(warnings),
    )
