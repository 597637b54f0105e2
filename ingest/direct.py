"""The writer's fast path: decide every reading of a batch in one query, then COPY the new ones
straight into ``readings``.

The staging path (``ingest/writer.py``) COPYs the batch into a TEMP table and lets four
statements bind, merge and dedupe it there: the rows cross the protocol and are parsed twice. Here
one set-based query over arrays of the batch's keys returns, per reading, the gateway its device
is enrolled on at ``measured_at`` (issue 14's binding), the gateway that already holds its
message id (if any) and the patient whose assignment covers ``measured_at``; :func:`decide`
(pure) then applies exactly the staging path's rules, in receive order:

* device not enrolled on the sending gateway then: ``wrong_gateway`` / ``not_enrolled``;
* id already held (stored, or earlier in this batch) by another gateway:
  ``duplicate_of_other_gateway``; held by the same gateway (or a pre-binding key without one):
  a duplicate, acknowledged;
* otherwise new: COPYed into ``readings`` with its patient (TimescaleDB: its key claimed in
  ``reading_keys`` first).

Another writer may claim one of these ids between the query and the COPY (a redelivery handed
to another worker). The unique index readings_dedupe (or the key insert on TimescaleDB) then
refuses it, :class:`Contended` rolls the whole transaction back and the writer redoes the batch on
the staging path, whose ``ON CONFLICT`` waits for the other transaction: retries never duplicate.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import psycopg
from psycopg import sql

from ingest import binding
from ingest.contract import ValidReading
from ingest.items import Accepted

DEDUPE_INDEX: Final = "readings_dedupe"

_dumps: Callable[[Any], str]
try:  # the C encoder on the server (the ``server`` extra), as ingest/contract.py decodes
    import orjson

    def _dumps(value: Any) -> str:  # datetimes as RFC 3339, microseconds and offset kept
        return orjson.dumps(value).decode()
except ImportError:  # pragma: no cover - exercised only without the extra
    def _dumps(value: Any) -> str:
        return json.dumps(value, default=datetime.isoformat)

# The reading columns COPYed, then what the database adds (staging_row's order minus device-only).
_FIELDS: Final = (
    "message_id", "gateway_id", "device_id", "kind", "measured_at", "clock_offset_s", "received_at",
    "sequence_number", "quality", "quality_reason", "measurement", "transmission", "systolic_mmhg",
    "diastolic_mmhg", "mean_arterial_mmhg", "pulse_bpm", "glucose_mg_dl", "sample_type",
    "sample_location", "meal", "device_status", "user_id", "original", "raw", "raw_context",
    "weight_kg", "spo2_pct", "spo2_min_pct", "sample_count",
)
COPY_COLUMNS: Final = (*_FIELDS, "patient_id", "ingested_at")


class Contended(Exception):
    """Another transaction claimed one of the batch's new ids after the check: redo the batch on
    the staging path (this transaction is rolled back)."""


Refusal = tuple[int, str, str | None]  # (position in the batch, reason code, enrolled gateway)


@dataclass
class Decision:
    """What to do with each reading of a batch, by position."""

    new: list[tuple[int, int | None]] = field(default_factory=list)  # (position, patient_id)
    refused: list[Refusal] = field(default_factory=list)
    at: datetime | None = None  # the database's clock at the check: ingested_at


# The patient whose device assignment covers the reading's measured_at (none: NULL, attached later).
ASSIGNED_AT: Final = """
    SELECT da.patient_id FROM device_assignments da
    WHERE da.device_id = {t}.device_id AND da.valid_from <= {t}.measured_at
      AND (da.valid_to IS NULL OR da.valid_to > {t}.measured_at)
    ORDER BY da.valid_from DESC LIMIT 1
"""


def _check_sql(keys_table: bool) -> sql.Composed:
    """Bind, dedupe and record the devices seen, in one statement: returns per reading (batch
    order) its enrolled gateway, whether it is new, the gateway holding its id, its patient (new
    ones) and the database's clock."""
    return sql.SQL(
        """
        WITH checked AS (
            SELECT t.*, e.gateway_id AS enrolled, k.found, k.gateway_id AS stored_by
            FROM json_to_recordset(%s::json)
                 AS t(ord integer, message_id uuid, gateway_id text, device_id text, measured_at timestamptz,
                      received_at timestamptz, manufacturer text, model text, serial text, firmware text,
                      address text, kind text)
            LEFT JOIN LATERAL ({enrolled}) e ON true
            LEFT JOIN LATERAL (  -- an index probe per id, however large the table grows
                SELECT true AS found, x.gateway_id FROM {keys} x WHERE x.message_id = t.message_id LIMIT 1
            ) k ON true
        ), bound AS (  -- the first bound reading of a new id is stored; a pre-binding key holds for all
            SELECT c.*, CASE WHEN c.found THEN c.stored_by
                             ELSE first_value(c.gateway_id) OVER (PARTITION BY c.message_id ORDER BY c.ord)
                        END AS holder,
                   c.found IS NULL AND row_number() OVER (PARTITION BY c.message_id ORDER BY c.ord) = 1 AS new
            FROM checked c WHERE c.enrolled = c.gateway_id
        ), seen AS (
            """ + binding.DEVICES_SEEN_SET + """
            FROM (
                SELECT device_id, LEAST(first_seen, now()) AS first_seen,
                       LEAST(last_seen, now()) AS last_seen,
                       jsonb_strip_nulls(jsonb_build_object(
                           'manufacturer', manufacturer, 'model', model, 'serial', serial,
                           'firmware', firmware, 'address', address, 'gateway_id', gateway_id,
                           'kind', kind)) AS reported
                FROM (
                    SELECT DISTINCT ON (device_id) device_id, min(received_at) OVER w AS first_seen,
                           max(received_at) OVER w AS last_seen, manufacturer, model, serial, firmware,
                           address, gateway_id, kind
                    FROM bound WHERE holder IS NULL OR holder = gateway_id
                    WINDOW w AS (PARTITION BY device_id)
                    ORDER BY device_id, received_at DESC, ord DESC
                ) latest
            ) x
            WHERE d.device_id = x.device_id
        )
        SELECT c.ord, c.enrolled, coalesce(b.new, false), b.holder, a.patient_id, clock_timestamp()
        FROM checked c LEFT JOIN bound b ON b.ord = c.ord
        LEFT JOIN LATERAL ({assigned}) a ON b.new
        ORDER BY c.ord
        """
    ).format(enrolled=sql.SQL(binding.ENROLLED_AT.format(t="t")), assigned=sql.SQL(ASSIGNED_AT.format(t="c")),
             keys=sql.Identifier("reading_keys" if keys_table else "readings"))


_CLAIM: Final = sql.SQL(
    "INSERT INTO reading_keys (message_id, gateway_id) SELECT * FROM unnest(%s::uuid[], %s::text[])"
    " ON CONFLICT (message_id) DO NOTHING"
)
_COPY: Final = sql.SQL("COPY readings ({}) FROM STDIN").format(
    sql.SQL(", ").join(sql.Identifier(c) for c in COPY_COLUMNS))


def decide(accepted: Sequence[Accepted], rows: Sequence[tuple[Any, ...]]) -> Decision:
    """The check's verdicts as the writer needs them (pure; rows in batch order)."""
    out = Decision()
    for o, enrolled, new, holder, patient, at in rows:
        out.at = at
        gateway = accepted[o].reading.gateway_id
        if enrolled != gateway:
            out.refused.append((o, binding.unbound_code(enrolled), enrolled))
        elif new:
            out.new.append((o, patient))
        elif holder is not None and holder != gateway:
            out.refused.append((o, binding.OTHER_GATEWAY, None))
    return out


def write(cur: psycopg.Cursor[Any], accepted: Sequence[Accepted], rows_of: Any,
          *, keys_table: bool) -> tuple[int, list[Refusal]]:
    """Check (and record the devices seen), claim, COPY; returns (inserted, refusals). Raises
    :class:`Contended` when another transaction took one of the new ids meanwhile.

    ``rows_of(accepted, patient_id, ingested_at)`` gives the COPY row of one reading."""
    readings = [a.reading for a in accepted]
    cur.execute(_check_sql(keys_table), (_batch_json(readings),))
    plan = decide(accepted, cur.fetchall())
    if plan.new and keys_table:
        cur.execute(_CLAIM, ([readings[o].message_id for o, _ in plan.new],
                             [readings[o].gateway_id for o, _ in plan.new]))
        if cur.rowcount != len(plan.new):
            raise Contended(f"{len(plan.new) - cur.rowcount} message ids claimed meanwhile")
    if plan.new:
        try:
            with cur.copy(_COPY) as copy:
                for o, patient in plan.new:
                    copy.write_row(rows_of(accepted[o], patient, plan.at))
        except psycopg.errors.UniqueViolation as exc:
            if exc.diag.constraint_name != DEDUPE_INDEX:
                raise
            raise Contended(f"a message id was stored meanwhile ({exc.diag.constraint_name})") from exc
    return len(plan.new), plan.refused


def _batch_json(readings: Sequence[ValidReading]) -> str:
    """The batch's keys and device descriptions as one JSON array for the check: one parameter
    the server parses in C (psycopg adapts a Python list of 500 strings element by element)."""
    rows = []
    for i, r in enumerate(readings):
        d = r.device
        rows.append({"ord": i, "message_id": r.message_id, "gateway_id": r.gateway_id,
                     "device_id": d.device_id, "measured_at": r.measured_at,
                     "received_at": r.received_at,
                     "manufacturer": d.manufacturer, "model": d.model, "serial": d.serial,
                     "firmware": d.firmware, "address": d.address, "kind": r.kind})
    return _dumps(rows)
