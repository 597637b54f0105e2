"""What a decoded measurement *is*, from its IEEE-11073 values (DOMAIN A7.2).

NaN / NRes / reserved in a required value (or a missing glucose concentration) mean the device
reported a failed measurement; ±INF mean out of range (meter HI / LO).  The names are the wire
contract's ``measurement`` values.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

from gateway.gatt.ieee11073 import MedFloat, Special

__all__ = ["MeasurementOutcome", "outcome_of"]


class MeasurementOutcome(enum.Enum):
    OK = "ok"
    FAILED = "failed"
    OUT_OF_RANGE_HIGH = "out_of_range_high"
    OUT_OF_RANGE_LOW = "out_of_range_low"


def outcome_of(required: Iterable[MedFloat | None]) -> MeasurementOutcome:
    """Failed beats out-of-range: one absent required value makes the whole reading failed."""
    values = list(required)
    if any(v is None or v.is_absent for v in values):
        return MeasurementOutcome.FAILED
    specials = {v.special for v in values if v is not None}
    if Special.POSITIVE_INFINITY in specials:
        return MeasurementOutcome.OUT_OF_RANGE_HIGH
    if Special.NEGATIVE_INFINITY in specials:
        return MeasurementOutcome.OUT_OF_RANGE_LOW
    return MeasurementOutcome.OK
