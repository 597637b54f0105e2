"""Pulse Oximeter Service 0x1822: PLX Spot-Check 0x2A5E, PLX Continuous 0x2A5F, PLX Features 0x2A60.

Layouts (DOMAIN-weight-plx A9): SpO2 and pulse rate are SFLOATs (two's-complement exponent, with
the five specials kept as specials: a finger-out frame is NaN/NaN, never 2047 %).  Device and
Sensor Status is **24 bits** in all three characteristics, and so is its support field in 0x2A60
(trap A10.8).  The flag maps differ: in 0x2A5E bit 1 is Measurement Status, in 0x2A5F bit 1 is
SpO2PR-Slow (trap A10.10), so each has its own :class:`enum.IntFlag`.  A frame shorter than its
flags announce is refused naming the missing fields, never decoded with the field dropped (trap
A10.7); RFU flag and status bits and trailing bytes decode with warnings.

Decoding is pure: acting on ``device_clock_not_set``, the "not a reading" status bits
(:data:`NOT_A_READING`) and demonstration/testing data is the plausibility layer's job.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from gateway.gatt._wire import Reader, require_layout
from gateway.gatt.datetime_ import DATE_TIME_SIZE, read_date_time
from gateway.gatt.ieee11073 import MedFloat
from gateway.gatt.outcome import MeasurementOutcome, outcome_of

__all__ = [
    "DEVICE_AND_SENSOR_STATUS_NAMES",
    "MEASUREMENT_STATUS_NAMES",
    "NOT_A_READING",
    "NOT_PATIENT_DATA",
    "PlxContinuousFlags",
    "PlxContinuousMeasurement",
    "PlxFeatures",
    "PlxSpotCheckFlags",
    "PlxSpotCheckMeasurement",
    "PlxSupportedFeatures",
    "parse_plx_continuous_measurement",
    "parse_plx_features",
    "parse_plx_spot_check_measurement",
]

# Measurement Status (uint16), bits 5..15; bits 0..4 are RFU.
MEASUREMENT_STATUS_NAMES: dict[int, str] = {
    5: "measurement_ongoing",
    6: "early_estimated_data",
    7: "validated_data",
    8: "fully_qualified_data",
    9: "data_from_measurement_storage",
    10: "data_for_demonstration",
    11: "data_for_testing",
    12: "calibration_ongoing",
    13: "measurement_unavailable",
    14: "questionable_measurement_detected",
    15: "invalid_measurement_detected",
}
_MEASUREMENT_STATUS_RFU = 0x001F
# Device and Sensor Status (24 bit), bits 0..15; bits 16..23 are RFU.
DEVICE_AND_SENSOR_STATUS_NAMES: dict[int, str] = {
    0: "extended_display_update_ongoing",
    1: "equipment_malfunction_detected",
    2: "signal_processing_irregularity_detected",
    3: "inadequate_signal_detected",
    4: "poor_signal_detected",
    5: "low_perfusion_detected",
    6: "erratic_signal_detected",
    7: "nonpulsatile_signal_detected",
    8: "questionable_pulse_detected",
    9: "signal_analysis_ongoing",
    10: "sensor_interference_detected",
    11: "sensor_unconnected_to_user",
    12: "unknown_sensor_connected",
    13: "sensor_displaced",
    14: "sensor_malfunctioning",
    15: "sensor_disconnected",
}
_DEVICE_STATUS_RFU = 0xFF0000

# Measurement Status names that make a frame something other than a patient reading (A9.3).
NOT_A_READING = frozenset(
    {
        "measurement_ongoing",
        "early_estimated_data",
        "calibration_ongoing",
        "measurement_unavailable",
        "invalid_measurement_detected",
    }
)
NOT_PATIENT_DATA = frozenset({"data_for_demonstration", "data_for_testing"})


def bit_names(raw: int | None, names: dict[int, str]) -> list[str] | None:
    """Names of the defined bits set in ``raw``, in bit order (``None`` when the field is absent)."""
    if raw is None:
        return None
    return [name for bit, name in names.items() if raw >> bit & 1]


def _status_warnings(measurement_status: int | None, device_status: int | None) -> list[str]:
    warnings = []
    if measurement_status is not None and measurement_status & _MEASUREMENT_STATUS_RFU:
        rfu = measurement_status & _MEASUREMENT_STATUS_RFU
        warnings.append(f"RFU measurement status bits set: 0x{rfu:04X}")
    if device_status is not None and device_status & _DEVICE_STATUS_RFU:
        warnings.append(f"RFU device and sensor status bits set: 0x{device_status & _DEVICE_STATUS_RFU:06X}")
    return warnings


def _u24(reader: Reader, field: str) -> int:
    return int.from_bytes(reader.take(3, field), "little")


class PlxSpotCheckFlags(enum.IntFlag):
    TIMESTAMP_PRESENT = 0x01
    MEASUREMENT_STATUS_PRESENT = 0x02
    DEVICE_AND_SENSOR_STATUS_PRESENT = 0x04
    PULSE_AMPLITUDE_INDEX_PRESENT = 0x08
    DEVICE_CLOCK_NOT_SET = 0x10


class PlxContinuousFlags(enum.IntFlag):
    SPO2PR_FAST_PRESENT = 0x01
    SPO2PR_SLOW_PRESENT = 0x02
    MEASUREMENT_STATUS_PRESENT = 0x04
    DEVICE_AND_SENSOR_STATUS_PRESENT = 0x08
    PULSE_AMPLITUDE_INDEX_PRESENT = 0x10


_PLX_FLAGS_RFU = 0xE0


@dataclass(frozen=True, slots=True)
class _PlxStatus:
    """Fields shared by spot-check and continuous measurements."""

    spo2: MedFloat
    pulse_rate: MedFloat
    measurement_status_raw: int | None
    device_and_sensor_status_raw: int | None
    pulse_amplitude_index: MedFloat | None
    flags_raw: int
    raw_hex: str
    warnings: tuple[str, ...]

    @property
    def outcome(self) -> MeasurementOutcome:
        """Failed when SpO2 or pulse rate is NaN/NRes/reserved (finger out, sensor off)."""
        return outcome_of((self.spo2, self.pulse_rate))

    @property
    def measurement_status(self) -> list[str] | None:
        return bit_names(self.measurement_status_raw, MEASUREMENT_STATUS_NAMES)

    @property
    def device_and_sensor_status(self) -> list[str] | None:
        return bit_names(self.device_and_sensor_status_raw, DEVICE_AND_SENSOR_STATUS_NAMES)


@dataclass(frozen=True, slots=True)
class PlxSpotCheckMeasurement(_PlxStatus):
    """A decoded 0x2A5E value; ``timestamp`` is the device clock (untrusted if the clock is not set)."""

    timestamp: datetime | None = None

    @property
    def flags(self) -> PlxSpotCheckFlags:
        return PlxSpotCheckFlags(self.flags_raw & ~_PLX_FLAGS_RFU & 0xFF)

    @property
    def device_clock_not_set(self) -> bool:
        return bool(self.flags_raw & PlxSpotCheckFlags.DEVICE_CLOCK_NOT_SET)


@dataclass(frozen=True, slots=True)
class PlxContinuousMeasurement(_PlxStatus):
    """A decoded 0x2A5F value: Normal is the reading; Fast and Slow are optional extras."""

    spo2_fast: MedFloat | None = None
    pulse_rate_fast: MedFloat | None = None
    spo2_slow: MedFloat | None = None
    pulse_rate_slow: MedFloat | None = None

    @property
    def flags(self) -> PlxContinuousFlags:
        return PlxContinuousFlags(self.flags_raw & ~_PLX_FLAGS_RFU & 0xFF)


def _flag_warning(flags: int) -> list[str]:
    return [f"RFU flag bits set: 0x{flags & _PLX_FLAGS_RFU:02X}"] if flags & _PLX_FLAGS_RFU else []


def parse_plx_spot_check_measurement(data: bytes) -> PlxSpotCheckMeasurement:
    """Parse a 0x2A5E value; raises :class:`~gateway.errors.MalformedMeasurement` when it is short."""
    data = bytes(data)
    reader = Reader(data, "2A5E")
    flags = reader.u8("flags")
    layout = [("flags", 1), ("spo2", 2), ("pulse_rate", 2)]
    f = PlxSpotCheckFlags
    tail = (bool(flags & f.MEASUREMENT_STATUS_PRESENT), bool(flags & f.DEVICE_AND_SENSOR_STATUS_PRESENT),
            bool(flags & f.PULSE_AMPLITUDE_INDEX_PRESENT))
    if flags & f.TIMESTAMP_PRESENT:
        layout.append(("timestamp", DATE_TIME_SIZE))
    layout += _status_layout(*tail)
    warnings = require_layout(data, "2A5E", layout, f"flags 0x{flags:02X}") + _flag_warning(flags)
    spo2 = reader.sfloat("spo2")
    pulse_rate = reader.sfloat("pulse_rate")
    timestamp = read_date_time(reader, "timestamp") if flags & f.TIMESTAMP_PRESENT else None
    status, device, pai = _read_status(reader, *tail)
    warnings += _status_warnings(status, device)
    return PlxSpotCheckMeasurement(
        spo2=spo2,
        pulse_rate=pulse_rate,
        measurement_status_raw=status,
        device_and_sensor_status_raw=device,
        pulse_amplitude_index=pai,
        flags_raw=flags,
        raw_hex=data.hex(),
        warnings=tuple(warnings),
        timestamp=timestamp,
    )




def _pair(reader: Reader, suffix: str) -> tuple[MedFloat, MedFloat]:
    return reader.sfloat(f"spo2{suffix}"), reader.sfloat(f"pulse_rate{suffix}")


def _status_layout(status: bool, device: bool, pai: bool) -> list[tuple[str, int]]:
    """The optional tail 2A5E and 2A5F share (their flag bits differ, the fields do not)."""
    return ([("measurement_status", 2)] if status else []) + (
        [("device_and_sensor_status", 3)] if device else []) + (
        [("pulse_amplitude_index", 2)] if pai else [])


def _read_status(
    reader: Reader, status: bool, device: bool, pai: bool
) -> tuple[int | None, int | None, MedFloat | None]:
    return (
        reader.u16("measurement_status") if status else None,
        _u24(reader, "device_and_sensor_status") if device else None,
        reader.sfloat("pulse_amplitude_index") if pai else None,
    )


def parse_plx_continuous_measurement(data: bytes) -> PlxContinuousMeasurement:
    """Parse a 0x2A5F value (no time stamp: time it on receipt); short frames are refused."""
    data = bytes(data)
    reader = Reader(data, "2A5F")
    flags = reader.u8("flags")
    f = PlxContinuousFlags
    layout = [("flags", 1), ("spo2", 2), ("pulse_rate", 2)]
    if flags & f.SPO2PR_FAST_PRESENT:
        layout += [("spo2_fast", 2), ("pulse_rate_fast", 2)]
    if flags & f.SPO2PR_SLOW_PRESENT:
        layout += [("spo2_slow", 2), ("pulse_rate_slow", 2)]
    tail = (bool(flags & f.MEASUREMENT_STATUS_PRESENT), bool(flags & f.DEVICE_AND_SENSOR_STATUS_PRESENT),
            bool(flags & f.PULSE_AMPLITUDE_INDEX_PRESENT))
    layout += _status_layout(*tail)
    warnings = require_layout(data, "2A5F", layout, f"flags 0x{flags:02X}") + _flag_warning(flags)
    spo2 = reader.sfloat("spo2")
    pulse_rate = reader.sfloat("pulse_rate")
    fast = _pair(reader, "_fast") if flags & f.SPO2PR_FAST_PRESENT else None
    slow = _pair(reader, "_slow") if flags & f.SPO2PR_SLOW_PRESENT else None
    status, device, pai = _read_status(reader, *tail)
    warnings += _status_warnings(status, device)
    return PlxContinuousMeasurement(
        spo2=spo2,
        pulse_rate=pulse_rate,
        measurement_status_raw=status,
        device_and_sensor_status_raw=device,
        pulse_amplitude_index=pai,
        flags_raw=flags,
        raw_hex=data.hex(),
        warnings=tuple(warnings),
        spo2_fast=None if fast is None else fast[0],
        pulse_rate_fast=None if fast is None else fast[1],
        spo2_slow=None if slow is None else slow[0],
        pulse_rate_slow=None if slow is None else slow[1],
    )


class PlxSupportedFeatures(enum.IntFlag):
    MEASUREMENT_STATUS_SUPPORT_PRESENT = 0x01
    DEVICE_AND_SENSOR_STATUS_SUPPORT_PRESENT = 0x02
    MEASUREMENT_STORAGE_FOR_SPOT_CHECK_SUPPORTED = 0x04
    TIMESTAMP_FOR_SPOT_CHECK_SUPPORTED = 0x08
    SPO2PR_FAST_SUPPORTED = 0x10
    SPO2PR_SLOW_SUPPORTED = 0x20
    PULSE_AMPLITUDE_INDEX_SUPPORTED = 0x40
    MULTIPLE_BONDS_SUPPORTED = 0x80


_PLX_FEATURES_RFU = 0xFF00


@dataclass(frozen=True, slots=True)
class PlxFeatures:
    """A decoded 0x2A60 value; the support fields are ``None`` when their feature bit is clear."""

    features_raw: int
    measurement_status_support_raw: int | None
    device_and_sensor_status_support_raw: int | None
    raw_hex: str
    warnings: tuple[str, ...]

    @property
    def features(self) -> PlxSupportedFeatures:
        return PlxSupportedFeatures(self.features_raw & 0xFF)

    @property
    def feature_names(self) -> list[str]:
        return [bit.name.lower() for bit in PlxSupportedFeatures if bit.name and self.features_raw & bit]

    @property
    def stores_spot_checks(self) -> bool:
        """Bit 2: stored spot-check readings are downloaded through RACP."""
        return bool(self.features_raw & PlxSupportedFeatures.MEASUREMENT_STORAGE_FOR_SPOT_CHECK_SUPPORTED)

    @property
    def measurement_status_support(self) -> list[str] | None:
        return bit_names(self.measurement_status_support_raw, MEASUREMENT_STATUS_NAMES)

    @property
    def device_and_sensor_status_support(self) -> list[str] | None:
        return bit_names(self.device_and_sensor_status_support_raw, DEVICE_AND_SENSOR_STATUS_NAMES)


def parse_plx_features(data: bytes) -> PlxFeatures:
    """Parse a 0x2A60 value: the support fields its bits 0 and 1 announce must be present."""
    data = bytes(data)
    reader = Reader(data, "2A60")
    layout = [("supported_features", 2)]
    features = reader.u16("supported_features") if len(data) >= 2 else 0
    if features & PlxSupportedFeatures.MEASUREMENT_STATUS_SUPPORT_PRESENT:
        layout.append(("measurement_status_support", 2))
    if features & PlxSupportedFeatures.DEVICE_AND_SENSOR_STATUS_SUPPORT_PRESENT:
        layout.append(("device_and_sensor_status_support", 3))
    warnings = require_layout(data, "2A60", layout, f"features 0x{features:04X}")
    if features & _PLX_FEATURES_RFU:
        warnings.append(f"RFU feature bits set: 0x{features & _PLX_FEATURES_RFU:04X}")
    status = None
    if features & PlxSupportedFeatures.MEASUREMENT_STATUS_SUPPORT_PRESENT:
        status = reader.u16("measurement_status_support")
    device = None
    if features & PlxSupportedFeatures.DEVICE_AND_SENSOR_STATUS_SUPPORT_PRESENT:
        device = _u24(reader, "device_and_sensor_status_support")
    warnings += _status_warnings(status, device)
    return PlxFeatures(
        features_raw=features,
        measurement_status_support_raw=status,
        device_and_sensor_status_support_raw=device,
        raw_hex=data.hex(),
        warnings=tuple(warnings),
    )
