"""A graded reading as the values of a row: the staging table's columns, and ``readings``' own
(pure). The writer's two paths (``ingest/writer.py`` staging, ``ingest/direct.py`` fast) and the
benchmarks build rows with these, so both paths store the same values."""

from __future__ import annotations

import json
from typing import Any, Final

from ingest.items import Accepted

# (column, staging type); the order is the COPY order.
STAGING_COLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("ord", "integer"), ("message_id", "uuid"), ("gateway_id", "text"), ("device_id", "text"),
    ("kind", "text"), ("measured_at", "timestamptz"), ("clock_offset_s", "double precision"),
    ("received_at", "timestamptz"), ("sequence_number", "integer"),
    ("quality", "text"), ("quality_reason", "text"), ("measurement", "text"), ("transmission", "text"),
    ("systolic_mmhg", "double precision"), ("diastolic_mmhg", "double precision"),
    ("mean_arterial_mmhg", "double precision"), ("pulse_bpm", "double precision"),
    ("glucose_mg_dl", "double precision"), ("sample_type", "text"), ("sample_location", "text"),
    ("meal", "text"), ("device_status", "text[]"), ("user_id", "integer"), ("original", "jsonb"),
    ("raw", "bytea"), ("raw_context", "bytea"),
    # weight and spo2 (0080); BMI and height stay in the message only: no rule or export uses them
    ("weight_kg", "double precision"), ("spo2_pct", "double precision"),
    ("spo2_min_pct", "double precision"), ("sample_count", "integer"),
    # the device's description last: a reading's row is the staging row's middle (reading_fields)
    ("manufacturer", "text"), ("model", "text"), ("serial", "text"), ("firmware", "text"),
    ("address", "text"),
)
_DEVICE_ONLY: Final = frozenset({"ord", "manufacturer", "model", "serial", "firmware", "address"})
READING_COLUMNS: Final = tuple(c for c, _ in STAGING_COLUMNS if c not in _DEVICE_ONLY)


def _json(value: dict[str, Any] | None) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"))


def raw_bytes(raw_hex: str) -> tuple[bytes, bytes | None]:
    """The wire's ``raw`` (hex, ``+`` before a merged glucose context) as (measurement, context)."""
    if "+" not in raw_hex:
        return bytes.fromhex(raw_hex), None
    head, _, tail = raw_hex.partition("+")
    return bytes.fromhex(head), bytes.fromhex(tail.replace("+", ""))


def reading_fields(a: Accepted, *tail: Any) -> tuple[Any, ...]:
    """One reading's values in ``READING_COLUMNS`` order, then ``tail``."""
    r = a.reading
    raw, context = raw_bytes(r.raw)
    return (
        r.message_id, r.gateway_id, r.device.device_id, r.kind, r.measured_at,
        r.clock_offset_s, r.received_at, r.sequence_number, a.grade.quality, a.grade.reason,
        r.measurement, r.transmission, r.systolic_mmhg, r.diastolic_mmhg, r.mean_arterial_mmhg,
        r.pulse_bpm, r.glucose_mg_dl, r.sample_type, r.sample_location, r.meal, list(r.status) or None,
        r.user_id, _json(r.original), raw, context,
        r.weight_kg, r.spo2_pct, r.spo2_min_pct, r.sample_count, *tail,
    )


def staging_row(ord_: int, a: Accepted) -> tuple[Any, ...]:
    d = a.reading.device
    return (ord_, *reading_fields(a, d.manufacturer, d.model, d.serial, d.firmware, d.address))
