"""Weight Scale Service 0x181D: Weight Measurement 0x2A9D and Weight Scale Feature 0x2A9E.

Layout (DOMAIN-weight-plx A8.1): flags, a **uint16** weight (not an SFLOAT), then Time Stamp /
User ID / BMI *and* Height as the flags say.  One flag (bit 3) switches BMI and Height together,
and the unit bit switches weight and height but never BMI (kg/m² in both systems).  The weight LSB
is always 0.005 kg or 0.01 lb, whatever resolution 0x2A9E advertises: 0x2A9E describes the scale's
precision, it is not a scale factor (A8.2, trap A10.11).  Weight 0xFFFF means "measurement
unsuccessful" and is never 327.675 kg (trap A10.4).  Vendor bits in RFU positions (Xiaomi b5/b7,
Detecto b4) decode by the spec bits with a warning; ``flags_raw`` keeps them for a quirk profile.

Values are exact decimals (``Decimal``) rounded once to the nearest float for printing; pounds
and inches convert to kg and m with the exact definitions, never round-tripped.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from gateway import contract  # the lb and inch factors; read at call time (contract imports gatt)
from gateway.gatt._wire import Reader, require_layout
from gateway.gatt.datetime_ import DATE_TIME_SIZE, read_date_time
from gateway.gatt.outcome import MeasurementOutcome

__all__ = [
    "WEIGHT_UNSUCCESSFUL",
    "WeightFlags",
    "WeightMeasurement",
    "WeightScaleFeature",
    "WeightScaleFeatureBits",
    "WeightUnit",
    "parse_weight_measurement",
    "parse_weight_scale_feature",
]

WEIGHT_UNSUCCESSFUL = 0xFFFF

_KG_LSB = Decimal("0.005")
_LB_LSB = Decimal("0.01")
_M_LSB = Decimal("0.001")
_IN_LSB = Decimal("0.1")
_BMI_LSB = Decimal("0.1")


class WeightFlags(enum.IntFlag):
    IMPERIAL = 0x01
    TIME_STAMP_PRESENT = 0x02
    USER_ID_PRESENT = 0x04
    BMI_AND_HEIGHT_PRESENT = 0x08


_WEIGHT_FLAGS_RFU = 0xF0


class WeightUnit(enum.Enum):
    KG = "kg"
    LB = "lb"


@dataclass(frozen=True, slots=True)
class WeightMeasurement:
    """A decoded 0x2A9D value; raw integers are kept, derived values are properties."""

    flags_raw: int
    weight_raw: int
    timestamp: datetime | None
    user_id: int | None
    bmi_raw: int | None
    height_raw: int | None
    raw_hex: str
    warnings: tuple[str, ...]

    @property
    def flags(self) -> WeightFlags:
        return WeightFlags(self.flags_raw & ~_WEIGHT_FLAGS_RFU & 0xFF)

    @property
    def unit(self) -> WeightUnit:
        return WeightUnit.LB if self.flags_raw & WeightFlags.IMPERIAL else WeightUnit.KG

    @property
    def measurement_unsuccessful(self) -> bool:
        """Raw 0xFFFF: the scale says it could not weigh; the frame is not a measurement."""
        return self.weight_raw == WEIGHT_UNSUCCESSFUL

    @property
    def outcome(self) -> MeasurementOutcome:
        """Failed when the scale sent 0xFFFF; otherwise every uint16 is a weight."""
        return MeasurementOutcome.FAILED if self.measurement_unsuccessful else MeasurementOutcome.OK

    @property
    def weight_decimal(self) -> Decimal | None:
        """The weight in :attr:`unit`, exact; ``None`` when the measurement was unsuccessful."""
        if self.measurement_unsuccessful:
            return None
        return self.weight_raw * (_LB_LSB if self.unit is WeightUnit.LB else _KG_LSB)

    @property
    def weight_kg_decimal(self) -> Decimal | None:
        weight = self.weight_decimal
        if weight is None or self.unit is WeightUnit.KG:
            return weight
        return weight * contract.KG_PER_LB

    @property
    def weight(self) -> float | None:
        return _float(self.weight_decimal)

    @property
    def weight_kg(self) -> float | None:
        return _float(self.weight_kg_decimal)

    @property
    def bmi(self) -> float | None:
        return None if self.bmi_raw is None else float(self.bmi_raw * _BMI_LSB)

    @property
    def height_unit(self) -> str | None:
        if self.height_raw is None:
            return None
        return "in" if self.unit is WeightUnit.LB else "m"

    @property
    def height(self) -> float | None:
        if self.height_raw is None:
            return None
        return float(self.height_raw * (_IN_LSB if self.unit is WeightUnit.LB else _M_LSB))

    @property
    def height_m(self) -> float | None:
        if self.height_raw is None:
            return None
        if self.unit is WeightUnit.LB:
            return float(self.height_raw * _IN_LSB * contract.M_PER_IN)
        return float(self.height_raw * _M_LSB)

    @property
    def user_known(self) -> bool:
        """User ID 0xFF means "unknown user"; map users to patients only through enrolment."""
        return self.user_id is not None and self.user_id != 0xFF


def _float(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def parse_weight_measurement(data: bytes) -> WeightMeasurement:
    """Parse a 0x2A9D value; raises :class:`~gateway.errors.MalformedMeasurement` when it is short."""
    data = bytes(data)
    reader = Reader(data, "2A9D")
    flags = reader.u8("flags")
    layout = [("flags", 1), ("weight", 2)]
    if flags & WeightFlags.TIME_STAMP_PRESENT:
        layout.append(("time_stamp", DATE_TIME_SIZE))
    if flags & WeightFlags.USER_ID_PRESENT:
        layout.append(("user_id", 1))
    if flags & WeightFlags.BMI_AND_HEIGHT_PRESENT:
        layout += [("bmi", 2), ("height", 2)]
    warnings = require_layout(data, "2A9D", layout, f"flags 0x{flags:02X}")
    if flags & _WEIGHT_FLAGS_RFU:
        warnings.append(f"RFU flag bits set: 0x{flags & _WEIGHT_FLAGS_RFU:02X} (vendor bits; see flags_raw)")
    weight_raw = reader.u16("weight")
    timestamp = read_date_time(reader, "time_stamp") if flags & WeightFlags.TIME_STAMP_PRESENT else None
    user_id = reader.u8("user_id") if flags & WeightFlags.USER_ID_PRESENT else None
    bmi_raw = height_raw = None
    if flags & WeightFlags.BMI_AND_HEIGHT_PRESENT:
        bmi_raw = reader.u16("bmi")
        height_raw = reader.u16("height")
        if weight_raw == WEIGHT_UNSUCCESSFUL:
            warnings.append("measurement unsuccessful (0xFFFF) sent with BMI and height: not a reading")
    return WeightMeasurement(
        flags_raw=flags,
        weight_raw=weight_raw,
        timestamp=timestamp,
        user_id=user_id,
        bmi_raw=bmi_raw,
        height_raw=height_raw,
        raw_hex=data.hex(),
        warnings=tuple(warnings),
    )


class WeightScaleFeatureBits(enum.IntFlag):
    TIMESTAMP_SUPPORTED = 0x01
    MULTIPLE_USERS_SUPPORTED = 0x02
    BMI_SUPPORTED = 0x04


_FEATURE_NAMES = (
    (WeightScaleFeatureBits.TIMESTAMP_SUPPORTED, "timestamp_supported"),
    (WeightScaleFeatureBits.MULTIPLE_USERS_SUPPORTED, "multiple_users_supported"),
    (WeightScaleFeatureBits.BMI_SUPPORTED, "bmi_supported"),
)
_FEATURE_RFU = 0xFFFFFC00
# code -> (kg, lb) and (m, in); the scale's precision, never a factor applied to 0x2A9D.
_WEIGHT_RESOLUTIONS: dict[int, tuple[str, str]] = {
    1: ("0.5", "1"),
    2: ("0.2", "0.5"),
    3: ("0.1", "0.2"),
    4: ("0.05", "0.1"),
    5: ("0.02", "0.05"),
    6: ("0.01", "0.02"),
    7: ("0.005", "0.01"),
}
_HEIGHT_RESOLUTIONS: dict[int, tuple[str, str]] = {1: ("0.01", "1"), 2: ("0.005", "0.5"), 3: ("0.001", "0.1")}


@dataclass(frozen=True, slots=True)
class WeightScaleFeature:
    """A decoded 0x2A9E value (uint32)."""

    features_raw: int
    raw_hex: str
    warnings: tuple[str, ...]

    @property
    def features(self) -> WeightScaleFeatureBits:
        return WeightScaleFeatureBits(self.features_raw & 0x07)

    @property
    def feature_names(self) -> list[str]:
        return [name for bit, name in _FEATURE_NAMES if self.features_raw & bit]

    @property
    def weight_resolution_code(self) -> int:
        return (self.features_raw >> 3) & 0x0F

    @property
    def height_resolution_code(self) -> int:
        return (self.features_raw >> 7) & 0x07

    @property
    def weight_resolution_kg(self) -> float | None:
        pair = _WEIGHT_RESOLUTIONS.get(self.weight_resolution_code)
        return None if pair is None else float(pair[0])

    @property
    def weight_resolution_lb(self) -> float | None:
        pair = _WEIGHT_RESOLUTIONS.get(self.weight_resolution_code)
        return None if pair is None else float(pair[1])

    @property
    def height_resolution_m(self) -> float | None:
        pair = _HEIGHT_RESOLUTIONS.get(self.height_resolution_code)
        return None if pair is None else float(pair[0])

    @property
    def height_resolution_in(self) -> float | None:
        pair = _HEIGHT_RESOLUTIONS.get(self.height_resolution_code)
        return None if pair is None else float(pair[1])


def parse_weight_scale_feature(data: bytes) -> WeightScaleFeature:
    """Parse a 0x2A9E value: exactly 4 bytes; RFU bits and reserved resolution codes warn."""
    data = bytes(data)
    warnings = require_layout(data, "2A9E", [("weight_scale_feature", 4)])
    raw = Reader(data, "2A9E").u32("weight_scale_feature")
    if raw & _FEATURE_RFU:
        warnings.append(f"RFU feature bits set: 0x{raw & _FEATURE_RFU:08X}")
    feature = WeightScaleFeature(features_raw=raw, raw_hex=data.hex(), warnings=())
    if feature.weight_resolution_code >= 8:
        warnings.append(f"reserved weight resolution code {feature.weight_resolution_code}")
    if feature.height_resolution_code >= 4:
        warnings.append(f"reserved height resolution code {feature.height_resolution_code}")
    return WeightScaleFeature(features_raw=raw, raw_hex=data.hex(), warnings=tuple(warnings))
