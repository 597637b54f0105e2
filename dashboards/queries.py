"""Read-only SQL behind the pages and the JSON API. Writes go through triage's functions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dashboards.db import Conn, fetch_all, fetch_batch
from dashboards.units import GLUCOSE_UNIT_SQL, MG_DL, known_unit
from triage import flag_views_store, readings_store
from triage.clinical import people_store

SEVERITIES = flag_views_store.SEVERITIES
# Flags still needing someone: the queue's default view (the lifecycle's own definition).
ACTIVE_STATES = flag_views_store.ACTIVE_STATES


@dataclass(frozen=True)
class QueueReads:
    """What a view of the queue reads, in one round trip (``queue_reads``)."""

    rows: list[dict[str, Any]]
    counts: dict[str, int]
    last_flag_id: int
    glucose_unit: str  # the reader's unit (mg/dL when not asked for)
    rule_ids: list[str]  # empty when not asked for


def queue_reads(
    conn: Conn,
    *,
    states: tuple[str, ...] = ACTIVE_STATES,
    severity: str | None = None,
    rule_id: str | None = None,
    assigned_to: str | None = None,
    limit: int = 200,
    viewer: int | None = None,
    unit_of: int | None = None,
    rules: bool = False,
) -> QueueReads:
    """The queue (most severe, then oldest first, with each flag's latest reading; only the patients
    ``viewer`` may see), its counts and newest flag id, the glucose unit of user ``unit_of`` and the rule
    list when asked: one round trip for the page's independent reads."""
    reads: list[tuple[str, Any]] = [
        flag_views_store.queue_read(states, severity, rule_id, assigned_to, limit, viewer),
        (flag_views_store.HEAD_SQL, {"viewer": viewer}),
    ]
    if unit_of is not None:
        reads.append((GLUCOSE_UNIT_SQL, {"user": unit_of}))
    if rules:
        reads.append((flag_views_store.RULE_IDS_SQL, None))
    results = fetch_batch(conn, reads)
    counts, last = flag_views_store.head(results[1])
    unit = known_unit(results[2][0] if results[2] else None) if unit_of is not None else MG_DL
    rule_list = [r["rule_id"] for r in results[-1]] if rules else []
    return QueueReads(results[0], counts, last, unit, rule_list)


# The flags family's reads are triage.flag_views_store's; the pages name them here.
_QUEUE_ACTIVE_SQL = flag_views_store.QUEUE_ACTIVE_SQL  # the statements whose plans the tests check
_HEAD_SQL = flag_views_store.HEAD_SQL
_states_condition = flag_views_store.states_condition
rule_ids = flag_views_store.rule_ids
max_flag_id = flag_views_store.max_flag_id
new_flags = flag_views_store.new_flags
flag = flag_views_store.flag
flag_events = flag_views_store.flag_events
flagged_reading_ids = flag_views_store.flagged_reading_ids
patient_flags = flag_views_store.patient_flags
# The people family's: triage.clinical.people_store's.
patient = people_store.patient_row
patients = people_store.patient_list
users = people_store.user_list

# The readings family's: triage.readings_store's.
newest_readings = readings_store.newest_readings
flag_readings = readings_store.by_ids
readings = readings_store.of_patient
daily_stats = readings_store.daily_stats
billing_days = readings_store.valid_days
unassigned_readings = readings_store.unassigned


def dead_letters(conn: Conn, limit: int = 200) -> list[dict[str, Any]]:
    return fetch_all(
        conn,
        "SELECT dead_letter_id, received_at, topic, gateway_id, error_class, reason,"
        " coalesce(payload_size, octet_length(payload))"
        " AS payload_bytes, encode(substring(payload FROM 1 FOR 160), 'escape') AS payload_head, resolved_at"
        " FROM dead_letters ORDER BY received_at DESC LIMIT %s",
        (limit,),
    )
