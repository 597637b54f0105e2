"""The writer's fast path: decide every reading of a batch from one query, then COPY the new ones
straight into ``readings`` (binary).

The staging path (``ingest/writer.py``) COPYs the batch into a TEMP table and lets four
statements bind, merge and dedupe it there: the rows cross the protocol and are parsed twice.
Here one query gives, per reading, the gateway its device is enrolled on at ``measured_at``
(issue 14's binding), the gateway that already holds its message id (if any) and the patient
whose assignment covers ``measured_at``; :func:`decide` (pure) then applies exactly the staging
path's rules, in receive order:

* device not enrolled on the sending gateway then: ``wrong_gateway`` / ``not_enrolled``;
* id already held (stored, or earlier in this batch) by another gateway:
  ``duplicate_of_other_gateway``; held by the same gateway (or a pre-binding key without one):
  a duplicate, acknowledged;
* otherwise new: COPYed into ``readings`` with its patient (TimescaleDB: its key claimed in
  ``reading_keys`` first).

Optimistic (the usual case): the query is ``binding.INTERVALS``, the enrolments and assignments
of the batch's distinct devices, and no id is looked up: the unique index readings_dedupe (or
the claim in ``reading_keys``) says whether one is held already. If one is (a redelivery, or a
claim in flight, which it waits for), :class:`Stored` rolls the whole transaction back and the
writer redoes the batch checked: :func:`_check_sql` probes each reading's binding, stored id
and patient, so the verdicts are the ones above. Another writer may still claim one of the ids
between that check and the COPY; :class:`Contended` then rolls back again and the writer redoes
the batch on the staging path, whose ``ON CONFLICT`` waits for the other transaction: retries
never duplicate.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from operator import itemgetter
from typing import Any, Final, NamedTuple

import psycopg
from psycopg import postgres, pq, sql
from psycopg.adapt import Dumper, PyFormat

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

# The reading columns COPYed (writer.reading_fields' order), then what the database adds.
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


class Stored(Exception):
    """The optimistic write met an id held already (a redelivery, or a claim by another writer):
    redo the batch with the check (this transaction is rolled back)."""


Refusal = tuple[int, str, str | None]  # (position in the batch, reason code, enrolled gateway)
# What the check says of one reading: (position, enrolled gateway, id found stored, the gateway
# that stored it, patient at measured_at (asked only for a bound reading whose id is not stored),
# the database's clock, on the first reading only).
Checked = tuple[int, str | None, bool | None, str | None, int | None, datetime | None]


@dataclass
class Decision:
    """What to do with each reading of a batch, by position."""

    new: list[tuple[int, int | None]] = field(default_factory=list)  # (position, patient_id)
    refused: list[Refusal] = field(default_factory=list)
    seen: list[int] = field(default_factory=list)  # positions whose device counts as seen
    at: datetime | None = None  # the database's clock at the check: ingested_at


# The patient whose device assignment covers the reading's measured_at (none: NULL, attached later).
ASSIGNED_AT: Final = """
    SELECT da.patient_id FROM device_assignments da
    WHERE da.device_id = {t}.device_id AND da.valid_from <= {t}.measured_at
      AND (da.valid_to IS NULL OR da.valid_to > {t}.measured_at)
    ORDER BY da.valid_from DESC LIMIT 1
"""


def _check_sql(keys_table: bool) -> sql.Composed:
    """Three index probes per reading and nothing else (no sort, no window, no CTE): its enrolled
    gateway, the stored key of its id, and (bound and not stored) its patient; :func:`decide`
    settles the rest in Python, where it costs less than the server's sorts did."""
    return sql.SQL(
        """
        SELECT t.ord, e.gateway_id, k.found, k.gateway_id, a.patient_id,
               CASE WHEN t.ord = 0 THEN clock_timestamp() END  -- once: 500 fewer timestamps to parse
        FROM json_to_recordset(%s::json)
             AS t(ord integer, message_id uuid, gateway_id text, device_id text, measured_at timestamptz,
                  manufacturer text, model text, serial text, firmware text, address text)
        LEFT JOIN LATERAL ({enrolled}) e ON true
        LEFT JOIN LATERAL (  -- an index probe per id, however large the table grows
            SELECT true AS found, x.gateway_id FROM {keys} x WHERE x.message_id = t.message_id LIMIT 1
        ) k ON true
        LEFT JOIN LATERAL ({assigned}) a ON e.gateway_id = t.gateway_id AND k.found IS NULL
        """
    ).format(enrolled=sql.SQL(binding.ENROLLED_AT.format(t="t")), assigned=sql.SQL(ASSIGNED_AT.format(t="t")),
             keys=sql.Identifier("reading_keys" if keys_table else "readings"))


# The devices seen by a batch, one row per device (``seen_json(devices_seen(...))``): the staging
# path's statement (binding.devices_seen_sql) over what the fast path worked out in Python; it
# returns the rows it changed (ingest/seen.py keeps what they now hold).
DEVICES_SEEN: Final = sql.SQL(
    binding.DEVICES_SEEN_SET + """
    FROM (
        SELECT device_id, LEAST(first_seen, now()) AS first_seen, LEAST(last_seen, now()) AS last_seen,
               reported
        FROM jsonb_to_recordset(%s::jsonb)  -- jsonb: ``reported`` is not parsed a second time
             AS j(device_id text, first_seen timestamptz, last_seen timestamptz, reported jsonb)
    ) x
    WHERE d.device_id = x.device_id AND """ + binding.DEVICES_SEEN_WHEN + """
    RETURNING d.device_id, d.first_seen_at, d.last_seen_at"""
)


_CLAIM: Final = sql.SQL(
    "INSERT INTO reading_keys (message_id, gateway_id) SELECT * FROM unnest(%s::uuid[], %s::text[])"
    " ON CONFLICT (message_id) DO NOTHING"
)
# Binary: no value is formatted as text by us nor parsed back by the server (timestamps, reals,
# uuids, bytea); the types are the columns' own (Layout), so no cast applies.
_COPY: Final = sql.SQL("COPY readings ({}) FROM STDIN (FORMAT BINARY)").format(
    sql.SQL(", ").join(sql.Identifier(c) for c in COPY_COLUMNS))
COLUMN_TYPES: Final = sql.SQL(
    """
    SELECT CASE WHEN t.typtype = 'e' THEN 'text'::regtype::oid ELSE a.atttypid END
    FROM unnest(%s::text[]) WITH ORDINALITY AS c(name, i)
    JOIN pg_attribute a ON a.attrelid = 'readings'::regclass AND a.attname = c.name
    JOIN pg_type t ON t.oid = a.atttypid
    ORDER BY c.i
    """
)


class Layout(NamedTuple):
    """What the fast path needs to know of a database: whether ids are claimed in reading_keys
    (TimescaleDB), and the binary COPY's type per column (an enum's binary form is its label,
    so an enum column takes text)."""

    keys_table: bool
    copy_types: tuple[int, ...]


def layout(conn: psycopg.Connection[Any], *, keys_table: bool) -> Layout:
    rows = conn.execute(COLUMN_TYPES, (list(COPY_COLUMNS),)).fetchall()
    if len(rows) != len(COPY_COLUMNS):
        raise RuntimeError(f"readings lacks some of {COPY_COLUMNS}")
    return Layout(keys_table, tuple(int(oid) for (oid,) in rows))


class _HexUuidDumper(Dumper):
    """A uuid's 16 bytes from the wire's 32 hex digits (the message id as validated): no UUID
    object per reading."""

    format = pq.Format.BINARY
    oid = postgres.types["uuid"].oid

    def dump(self, obj: str) -> bytes:
        return bytes.fromhex(obj)


class JsonbTextDumper(Dumper):
    """jsonb's binary form (version 1, then the text) from JSON text already encoded."""

    format = pq.Format.BINARY
    oid = postgres.types["jsonb"].oid

    def dump(self, obj: str) -> bytes:
        return b"\x01" + obj.encode()


# The COPY's dumpers by type: the message id from its hex, jsonb from its text, and bytea through
# the C dumper of ``bytes`` (by oid, psycopg picks a Python one that also unwraps ``Binary``).
_COPY_DUMPERS: Final = (_HexUuidDumper, JsonbTextDumper,
                        postgres.adapters.get_dumper(bytes, PyFormat.BINARY))


def decide(accepted: Sequence[Accepted], rows: Sequence[Checked]) -> Decision:
    """The staging path's rules over the check's probes (pure; rows in any order): the first bound
    reading of an id not stored is new; a repeat is held by that first reading's gateway, a stored
    id by the gateway that stored it (none: a pre-binding key, which holds for everyone)."""
    out = Decision()
    first: dict[str, str] = {}  # id -> gateway of its first bound reading in this batch
    for o, enrolled, found, stored_by, patient, at in sorted(rows, key=itemgetter(0)):
        out.at = out.at or at
        r = accepted[o].reading
        if enrolled != r.gateway_id:
            out.refused.append((o, binding.unbound_code(enrolled), enrolled))
            continue
        if found:
            holder = stored_by
        elif r.message_id in first:
            holder = first[r.message_id]
        else:
            first[r.message_id] = r.gateway_id
            out.new.append((o, patient))
            out.seen.append(o)
            continue
        if holder is not None and holder != r.gateway_id:
            out.refused.append((o, binding.OTHER_GATEWAY, None))
        else:
            out.seen.append(o)
    return out


def decide_bound(readings: Sequence[ValidReading], enrolled: Mapping[str, list[binding.Interval[str]]],
                 assigned: Mapping[str, list[binding.Interval[int]]], at: datetime | None) -> Decision:
    """:func:`decide` for the optimistic path, where no id is looked up (none counts as stored),
    from binding.INTERVALS: the same verdicts, without a probe row per reading (pure)."""
    out = Decision(at=at)
    first: dict[str, str] = {}  # id -> gateway of its first bound reading in this batch
    for o, r in enumerate(readings):
        device, gateway, when = r.device.device_id, r.gateway_id, r.measured_at
        bound = binding.covering(enrolled.get(device), when)
        if bound != gateway:
            out.refused.append((o, binding.unbound_code(bound), bound))
            continue
        holder = first.get(r.message_id)
        if holder is None:
            first[r.message_id] = gateway
            out.new.append((o, binding.covering(assigned.get(device), when)))
        elif holder != gateway:
            out.refused.append((o, binding.OTHER_GATEWAY, None))
            continue
        out.seen.append(o)
    return out


class Written(NamedTuple):
    inserted: int
    refused: list[Refusal]
    stored: int  # readings whose id the check found stored (optimistic: 0, it does not look)
    seen: list[dict[str, Any]] | None = None  # the devices seen (devices_seen; None: none)


def write(cur: psycopg.Cursor[Any], accepted: Sequence[Accepted],
          fields_of: Callable[..., tuple[Any, ...]], *, layout: Layout, optimistic: bool = False) -> Written:
    """Bind and dedupe (checked, or ``optimistic``), claim, COPY; what the devices update needs.

    Checked: raises :class:`Contended` when another transaction took one of the new ids after the
    check. Optimistic: raises :class:`Stored` when any id of the batch was stored already (or is
    taken meanwhile); the caller rolls back and redoes the batch checked.
    ``fields_of(accepted, patient_id, ingested_at)`` gives one reading's COPY row
    (``COPY_COLUMNS``). The client's work is placed where the server is busy anyway: the devices'
    JSON is built while the binding query runs (pipeline mode, with the transaction's BEGIN), each
    row while the server parses the rows sent before it. The caller runs :data:`DEVICES_SEEN`
    with ``seen_json`` of ``Written.seen`` (or of those of them ingest/seen.py says may change)."""
    readings = [a.reading for a in accepted]
    keys_table = layout.keys_table
    seen_all: list[dict[str, Any]] | None = None
    if optimistic:
        with cur.connection.pipeline():
            cur.execute(binding.INTERVALS, (_devices_json(readings),))
            seen_all = devices_seen(readings)  # every reading is seen unless the binding refuses one
            found = cur.fetchall()
        plan = decide_bound(readings, *binding.intervals(found))
        stored = 0
    else:
        cur.execute(_check_sql(keys_table), (_batch_json(readings),))
        rows: list[Checked] = cur.fetchall()
        plan = decide(accepted, rows)
        stored = sum(1 for row in rows if row[2])
    lost = Stored if optimistic else Contended
    if plan.new and keys_table:
        cur.execute(_CLAIM, ([readings[o].message_id for o, _ in plan.new],
                             [readings[o].gateway_id for o, _ in plan.new]))
        if cur.rowcount != len(plan.new):
            raise lost(f"{len(plan.new) - cur.rowcount} message ids held already")
    if plan.new:
        try:
            for dumper in _COPY_DUMPERS:  # this cursor's COPY only
                cur.adapters.register_dumper(None, dumper)
            at = plan.at
            with cur.copy(_COPY) as copy:
                copy.set_types(layout.copy_types)
                for o, patient in plan.new:
                    copy.write_row(fields_of(accepted[o], patient, at))
        except psycopg.errors.UniqueViolation as exc:
            if exc.diag.constraint_name != DEDUPE_INDEX:
                raise
            raise lost(f"a message id is stored already ({exc.diag.constraint_name})") from exc
    seen = None
    if plan.seen:
        seen = seen_all if seen_all is not None and len(plan.seen) == len(readings) else \
            devices_seen([readings[o] for o in plan.seen])
    return Written(len(plan.new), plan.refused, stored, seen)


def _devices_json(readings: Sequence[ValidReading]) -> str:
    """The batch's devices for binding.INTERVALS, each with its readings' first and last
    measured_at; a description holding a NUL goes too (see :func:`_batch_json`)."""
    span: dict[str, dict[str, Any]] = {}
    for r in readings:
        d, at = r.device, r.measured_at
        one = span.get(d.device_id)
        if one is None:
            span[d.device_id] = one = {"device_id": d.device_id, "lo": at, "hi": at}
        elif at < one["lo"]:
            one["lo"] = at
        elif at > one["hi"]:
            one["hi"] = at
        if "\x00" in f"{d.manufacturer}{d.model}{d.serial}{d.firmware}{d.address}":
            one.update(manufacturer=d.manufacturer, model=d.model, serial=d.serial, firmware=d.firmware,
                       address=d.address)
    return _dumps(list(span.values()))


def _batch_json(readings: Sequence[ValidReading]) -> str:
    """The batch's keys as one JSON array for the check: one parameter the server parses in C
    (psycopg adapts a Python list of 500 strings element by element). A description holding a NUL
    character (no PostgreSQL text can) goes too, so the server refuses the batch as the staging
    path's COPY does, though only each device's latest description is stored."""
    rows = []
    for i, r in enumerate(readings):
        d = r.device
        row = {"ord": i, "message_id": r.message_id, "gateway_id": r.gateway_id,
               "device_id": d.device_id, "measured_at": r.measured_at}
        if "\x00" in f"{d.manufacturer}{d.model}{d.serial}{d.firmware}{d.address}":
            row.update(manufacturer=d.manufacturer, model=d.model, serial=d.serial, firmware=d.firmware,
                       address=d.address)
        rows.append(row)
    return _dumps(rows)


def devices_seen(seen: Sequence[ValidReading]) -> list[dict[str, Any]]:
    """Per device among ``seen`` (batch order): first and last received_at, and the description
    its latest reading reported (latest by received_at, then by position), without null fields."""
    first: dict[str, datetime] = {}
    latest: dict[str, ValidReading] = {}
    for r in seen:
        key = r.device.device_id
        if key not in latest:
            first[key], latest[key] = r.received_at, r
            continue
        first[key] = min(first[key], r.received_at)
        if r.received_at >= latest[key].received_at:
            latest[key] = r
    out = []
    for key, r in latest.items():
        d = r.device
        said = {"manufacturer": d.manufacturer, "model": d.model, "serial": d.serial, "firmware": d.firmware,
                "address": d.address, "gateway_id": r.gateway_id, "kind": r.kind}
        out.append({"device_id": key, "first_seen": first[key], "last_seen": r.received_at,
                    "reported": {k: v for k, v in said.items() if v is not None}})
    out.sort(key=itemgetter("device_id"))  # one lock order for every writer: no deadlock between two
    return out


def seen_json(devices: Sequence[dict[str, Any]]) -> str:
    """DEVICES_SEEN's parameter."""
    return _dumps(devices)
