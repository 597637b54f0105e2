"""Device <-> gateway binding: a gateway speaks only for the devices enrolled on it (issue 14).

Why: a reading used to be attributed by device id alone, so a gateway with its own valid broker
credentials could publish a crisis for another patient's cuff, pre-claim the message ids of another
gateway's readings (the real reading was then "a duplicate", acked and lost) and rewrite a device's
metadata. Now, inside the writer's transaction (``ingest/writer.py``), before any message id is
claimed (by the dedupe index on ``readings``, or ``reading_keys`` on TimescaleDB):

* a staged reading whose device is enrolled (``device_enrolments``, triage/clinical/device_enrolments.py)
  on another gateway at ``measured_at`` is refused as ``wrong_gateway``; one whose device is enrolled
  nowhere then as ``not_enrolled``. Refused readings leave the staging table, so their ids are never
  claimed, and become dead letters (``BindingRefused``) with the reason;
* after the merge, a reading found "already stored" whose key was claimed by another gateway is
  refused as ``duplicate_of_other_gateway`` (a key stored before the binding has no gateway and
  counts as the same): a duplicate is acknowledged only to the gateway whose reading was stored.

Device rows are created and described only by enrolment; ingest records first/last seen and what the
enrolled gateway reports (``devices.reported``), never kind, manufacturer, model, firmware or gateway.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, Final, TypeVar

from psycopg import sql

from ingest.errors import BindingRefused
from ingest.items import Accepted, DeadLetter, Rejection

WRONG_GATEWAY: Final = "wrong_gateway"
NOT_ENROLLED: Final = "not_enrolled"
OTHER_GATEWAY: Final = "duplicate_of_other_gateway"


# The gateway a reading's device is enrolled on at its measured_at (``{t}``: the readings' alias).
ENROLLED_AT: Final = """
    SELECT de.gateway_id FROM device_enrolments de
    WHERE de.device_id = {t}.device_id AND de.valid_from <= {t}.measured_at
      AND (de.valid_to IS NULL OR de.valid_to > {t}.measured_at)
    ORDER BY de.valid_from DESC LIMIT 1
"""


# Per distinct device of a batch (``b``: device_id, lo, hi = its readings' first and last
# measured_at), every enrolment and assignment covering part of [lo, hi]: a batch repeating a device
# (a gateway's backlog) costs one probe per device, not per reading; :func:`covering` then picks,
# per reading, the row ENROLLED_AT / the fast path's ASSIGNED_AT would have picked. An infinite
# bound comes back NULL, open (psycopg loads no infinite timestamp). The database's clock comes last.
INTERVALS: Final = sql.SQL(
    """
    WITH b AS MATERIALIZED (
        SELECT * FROM json_to_recordset(%s::json)
             AS j(device_id text, lo timestamptz, hi timestamptz,
                  manufacturer text, model text, serial text, firmware text, address text)
    )
    SELECT 0, de.device_id, de.gateway_id, NULL::bigint,
           NULLIF(de.valid_from, '-infinity'), NULLIF(de.valid_to, 'infinity')
    FROM b JOIN device_enrolments de ON de.device_id = b.device_id AND de.valid_from <= b.hi
                                        AND (de.valid_to IS NULL OR de.valid_to > b.lo)
    UNION ALL
    SELECT 1, da.device_id, NULL, da.patient_id,
           NULLIF(da.valid_from, '-infinity'), NULLIF(da.valid_to, 'infinity')
    FROM b JOIN device_assignments da ON da.device_id = b.device_id AND da.valid_from <= b.hi
                                         AND (da.valid_to IS NULL OR da.valid_to > b.lo)
    UNION ALL
    SELECT 2, NULL, NULL, NULL, clock_timestamp(), NULL
    """
)

V = TypeVar("V")
Interval = tuple[datetime | None, datetime | None, V]  # (valid_from, valid_to; None: open, value)


def intervals(rows: Iterable[Sequence[Any]]) -> tuple[dict[str, list[Interval[str]]],
                                                     dict[str, list[Interval[int]]], datetime | None]:
    """INTERVALS' rows as (enrolled gateways by device, assigned patients by device, clock)."""
    enrolled: dict[str, list[Interval[str]]] = {}
    assigned: dict[str, list[Interval[int]]] = {}
    clock = None
    for which, device, gateway, patient, start, end in rows:
        if which == 0:
            enrolled.setdefault(device, []).append((start, end, gateway))
        elif which == 1:
            assigned.setdefault(device, []).append((start, end, int(patient)))
        else:
            clock = start
    return enrolled, assigned, clock


def covering(rows: Sequence[Interval[V]] | None, at: datetime) -> V | None:
    """The value of the row covering ``at`` (valid_from <= at < valid_to) with the latest
    valid_from, as ``ORDER BY valid_from DESC LIMIT 1`` picks it; none covers: None."""
    if rows and len(rows) == 1:  # the usual case (one enrolment, one assignment): no loop
        start, end, value = rows[0]
        return None if (start is not None and start > at) or (end is not None and end <= at) else value
    best: Interval[V] | None = None
    for row in rows or ():
        start, end = row[0], row[1]
        if (start is None or start <= at) and (end is None or end > at) and (
                best is None or (start is not None and (best[0] is None or start > best[0]))):
            best = row
    return None if best is None else best[2]


def refuse_unbound_sql(staging: sql.Identifier) -> sql.Composed:
    """Remove the staged readings not from the gateway enrolled at ``measured_at``; returns
    ``(ord, enrolled gateway or NULL)`` of each."""
    return sql.SQL(
        """
        DELETE FROM {staging} s USING (
            SELECT t.ord, e.gateway_id AS enrolled FROM {staging} t
            LEFT JOIN LATERAL ({enrolled}) e ON true
            WHERE e.gateway_id IS DISTINCT FROM t.gateway_id
        ) bad
        WHERE s.ord = bad.ord
        RETURNING s.ord, bad.enrolled
        """
    ).format(staging=staging, enrolled=sql.SQL(ENROLLED_AT.format(t="t")))


def refuse_foreign_duplicates_sql(staging: sql.Identifier, *, keys_table: bool = True) -> sql.Composed:
    """After the merge: remove the staged readings whose id another gateway's reading holds;
    returns their ``ord``. The stored reading names its gateway (plain PostgreSQL, dedupe by the
    unique index readings_dedupe); on TimescaleDB the key in ``reading_keys`` does."""
    if not keys_table:
        return sql.SQL(
            """
            DELETE FROM {staging} s USING readings r
            WHERE r.message_id = s.message_id AND r.gateway_id <> s.gateway_id
            RETURNING s.ord
            """
        ).format(staging=staging)
    return sql.SQL(
        """
        DELETE FROM {staging} s USING reading_keys k
        WHERE k.message_id = s.message_id AND k.gateway_id IS NOT NULL AND k.gateway_id <> s.gateway_id
        RETURNING s.ord
        """
    ).format(staging=staging)


# What a batch records of each device seen (``x``: first_seen, last_seen, reported per device).
DEVICES_SEEN_SET: Final = """
    UPDATE devices d SET
        first_seen_at = LEAST(d.first_seen_at, x.first_seen),
        last_seen_at = GREATEST(d.last_seen_at, x.last_seen),
        reported = CASE WHEN d.last_seen_at IS NULL OR x.last_seen >= d.last_seen_at
                        THEN x.reported ELSE d.reported END
"""

# ... and only when that changes something a reader needs: last_seen_at is kept to the minute (the
# silence rules count days), so a device seen again within 60 s of its stored last_seen_at is not
# rewritten (a row version, its WAL and a lock per device per batch saved); an earlier first
# sighting or a new report is always recorded (docs/ingest.md).
LAST_SEEN_GRAIN: Final = timedelta(seconds=60)
_GRAIN_SQL: Final = f"interval '{LAST_SEEN_GRAIN.total_seconds():.0f} s'"
DEVICES_SEEN_WHEN: Final = """(
    d.last_seen_at IS NULL OR d.last_seen_at < x.last_seen - """ + _GRAIN_SQL + """
    OR d.first_seen_at IS NULL OR d.first_seen_at > x.first_seen
    OR (x.last_seen >= d.last_seen_at AND d.reported IS DISTINCT FROM x.reported))"""


def devices_seen_sql(staging: sql.Identifier) -> sql.Composed:
    """First/last seen and the reported description of each device with an accepted reading."""
    return sql.SQL(
        """
        """ + DEVICES_SEEN_SET + """
        FROM (
            SELECT DISTINCT ON (device_id) device_id,
                   LEAST(min(received_at) OVER w, now()) AS first_seen,
                   LEAST(max(received_at) OVER w, now()) AS last_seen,
                   jsonb_strip_nulls(jsonb_build_object(
                       'manufacturer', manufacturer, 'model', model, 'serial', serial,
                       'firmware', firmware, 'address', address, 'gateway_id', gateway_id,
                       'kind', kind)) AS reported
            FROM {staging}
            WINDOW w AS (PARTITION BY device_id)
            ORDER BY device_id, received_at DESC, ord DESC
        ) x
        WHERE d.device_id = x.device_id AND """ + DEVICES_SEEN_WHEN + """
        """
    ).format(staging=staging)


def refusal(item: Accepted, code: str, enrolled: str | None = None) -> tuple[DeadLetter, Rejection]:
    """The dead letter (reason for the admin) and the ack entry (code only: the sending gateway
    is not told which gateway the device is enrolled on) of one refused reading."""
    r = item.reading
    when = r.measured_at.isoformat()
    if code == WRONG_GATEWAY:
        why = (f"device {r.device.device_id} is enrolled on gateway {enrolled} at {when},"
               f" not on {r.gateway_id}")
    elif code == NOT_ENROLLED:
        why = f"device {r.device.device_id} is enrolled on no gateway at {when}"
    else:
        why = f"message {r.message_id} is already stored from another gateway"
    exc = BindingRefused(code, why)
    letter = DeadLetter(r.topic, r.gateway_id, type(exc).__name__, exc.reason, r.payload_text.encode("utf-8"))
    return letter, Rejection(r.gateway_id, r.message_id, code)


def unbound_code(enrolled: str | None) -> str:
    return NOT_ENROLLED if enrolled is None else WRONG_GATEWAY
