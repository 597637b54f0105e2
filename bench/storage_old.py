"""The readings layout before 0060, for storage_bench's comparison: its writer's COPY + merge.

Kept apart so the benchmark measures the old layout the way ingest wrote it (the whole message as
jsonb, text message ids in reading_keys and readings, raw bytes as hex text) without keeping the
old code path in ingest itself.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Final

import psycopg
from psycopg import sql

from ingest.writer import STAGING, Accepted

_COLUMNS: Final = (
    ("ord", "integer"), ("message_id", "text"), ("gateway_id", "text"), ("device_id", "text"),
    ("kind", "text"), ("measured_at", "timestamptz"), ("device_time", "text"),
    ("clock_offset_s", "double precision"), ("received_at", "timestamptz"), ("sequence_number", "integer"),
    ("quality", "text"), ("quality_reason", "text"), ("measurement", "text"), ("transmission", "text"),
    ("systolic_mmhg", "double precision"), ("diastolic_mmhg", "double precision"),
    ("mean_arterial_mmhg", "double precision"), ("pulse_bpm", "double precision"),
    ("glucose_mg_dl", "double precision"), ("sample_type", "text"), ("sample_location", "text"),
    ("meal", "text"), ("device_status", "text[]"), ("user_id", "integer"), ("original", "jsonb"),
    ("raw_hex", "text"), ("payload", "jsonb"), ("manufacturer", "text"), ("model", "text"),
    ("serial", "text"), ("firmware", "text"), ("address", "text"),
)
_DEVICE_ONLY: Final = frozenset({"ord", "manufacturer", "model", "serial", "firmware", "address"})
_READING: Final = tuple(c for c, _ in _COLUMNS if c not in _DEVICE_ONLY)
_STAGING: Final = STAGING  # the same name, so the devices upsert is the writer's own


def _row(i: int, a: Accepted) -> tuple[Any, ...]:
    r = a.reading
    original = None if r.original is None else json.dumps(r.original)
    return (i, r.message_id, r.gateway_id, r.device.device_id, r.kind, r.measured_at, r.device_time,
            r.clock_offset_s, r.received_at, r.sequence_number, a.grade.quality, a.grade.reason,
            r.measurement, r.transmission, r.systolic_mmhg, r.diastolic_mmhg, r.mean_arterial_mmhg,
            r.pulse_bpm, r.glucose_mg_dl, r.sample_type, r.sample_location, r.meal, list(r.status),
            r.user_id, original, r.raw, r.payload_text, r.device.manufacturer, r.device.model,
            r.device.serial, r.device.firmware, r.device.address)


class OldWriter:
    """One connection; ``write`` commits a batch the way the pre-0060 writer did."""

    def __init__(self, conninfo: str) -> None:
        self.conn = psycopg.connect(conninfo)
        cols = sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(t)) for c, t in _COLUMNS)
        self.conn.execute(sql.SQL("CREATE TEMP TABLE {} ({})").format(_STAGING, cols))
        self.conn.commit()
        self._copy = sql.SQL("COPY {} ({}) FROM STDIN").format(
            _STAGING, sql.SQL(", ").join(sql.Identifier(c) for c, _ in _COLUMNS))
        rc = sql.SQL(", ").join(sql.Identifier(c) for c in _READING)
        src = sql.SQL(", ").join(sql.Identifier("s", c) for c in _READING)
        self._merge = sql.SQL(
            """
            WITH new_keys AS (
                INSERT INTO reading_keys (message_id, measured_at)
                SELECT DISTINCT ON (message_id) message_id, measured_at FROM {st} ORDER BY message_id, ord
                ON CONFLICT (message_id) DO NOTHING RETURNING message_id)
            INSERT INTO readings ({rc}, patient_id, ingested_at)
            SELECT DISTINCT ON (s.message_id) {src}, a.patient_id, clock_timestamp()
            FROM {st} s JOIN new_keys k ON k.message_id = s.message_id
            LEFT JOIN LATERAL (
                SELECT da.patient_id FROM device_assignments da
                WHERE da.device_id = s.device_id AND da.valid_from <= s.measured_at
                  AND (da.valid_to IS NULL OR da.valid_to > s.measured_at)
                ORDER BY da.valid_from DESC LIMIT 1) a ON true
            ORDER BY s.message_id, s.ord
            """
        ).format(st=_STAGING, rc=rc, src=src)

    # first/last seen as ingest keeps them (the old layout has no devices.reported column)
    _seen: Final = sql.SQL(
        "UPDATE devices d SET first_seen_at = LEAST(d.first_seen_at, x.f),"
        " last_seen_at = GREATEST(d.last_seen_at, x.l)"
        " FROM (SELECT device_id, min(received_at) AS f, max(received_at) AS l FROM {} GROUP BY 1) x"
        " WHERE d.device_id = x.device_id").format(_STAGING)

    def write(self, items: Sequence[Accepted]) -> int:
        with self.conn.transaction(), self.conn.cursor() as cur:
            with cur.copy(self._copy) as copy:
                for i, a in enumerate(items):
                    copy.write_row(_row(i, a))
            cur.execute(self._merge)
            n = max(cur.rowcount, 0)
            cur.execute(self._seen)
            cur.execute(sql.SQL("TRUNCATE {}").format(_STAGING))
        return n

    def close(self) -> None:
        self.conn.close()
