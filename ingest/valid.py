"""What the wire contract lets through: typed, canonical-unit messages (pure data, no rules).

Apart from the validators (``ingest/contract_fast.py``, ``ingest/contract_reference.py``) because
both build them and everything downstream (plausibility, writer, acks) reads them.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Final


@dataclass(frozen=True)
class DeviceInfo:
    device_id: str
    manufacturer: str | None
    model: str | None
    serial: str | None
    firmware: str | None
    address: str | None


@dataclass(frozen=True)
class ValidReading:
    """A reading that satisfies the contract; numbers are canonical units, times are aware UTC."""

    topic: str
    message_id: str
    gateway_id: str
    device: DeviceInfo
    kind: str
    measured_at: datetime
    device_time: str | None
    clock_offset_s: float | None
    received_at: datetime
    sequence_number: int | None
    systolic_mmhg: float | None
    diastolic_mmhg: float | None
    mean_arterial_mmhg: float | None
    pulse_bpm: float | None
    glucose_mg_dl: float | None
    sample_type: str | None
    sample_location: str | None
    meal: str | None
    original: dict[str, Any] | None
    status: tuple[str, ...]
    measurement: str
    transmission: str
    user_id: int | None
    context: dict[str, Any] | None
    raw: str
    payload: dict[str, Any]
    payload_text: str
    # weight and spo2 (contract v1, extended compatibly); null for the other kinds
    weight_kg: float | None = None
    bmi: float | None = None
    height_m: float | None = None
    spo2_pct: float | None = None
    spo2_min_pct: float | None = None
    sample_count: int | None = None


@dataclass(frozen=True)
class ValidStatus:
    """A gateway status (retained) message."""

    topic: str
    gateway_id: str
    online: bool
    at: datetime
    payload: dict[str, Any]
    payload_text: str


_READING_FIELDS: Final = tuple(f.name for f in fields(ValidReading))
_new = object.__new__


def build_reading(*values: Any) -> ValidReading:
    """``ValidReading(*values)`` (all fields, in order) at a fraction of the cost.

    A frozen dataclass's ``__init__`` sets each of its 33 fields through ``object.__setattr__``:
    about a sixth of the fast path's time per message. The instance is the same (equal, frozen
    against later assignment); only its construction skips the guard."""
    reading: ValidReading = _new(ValidReading)
    reading.__dict__.update(zip(_READING_FIELDS, values, strict=True))
    return reading
