"""The ``flags`` reads behind the dashboards: the queue, its counts and live feed, a flag, a patient's flags.

``triage.flags_store`` writes flags (creation, lifecycle events) and ``triage.clinical.flag_rows``
holds the clinical workflows' locked reads; the pages' reads are here, each statement as the
dashboards measured it (queue p99 < 200 ms at 10,000 open flags: don't change the text without
re-running ``bench/dashboard_bench.py``). Reads scoped to a viewer take the named parameter
``viewer`` and the :func:`triage.clinical.people_store.visible` condition; the page batches the queue
read, :data:`HEAD_SQL` and :data:`RULE_IDS_SQL` in one round trip, so those are given as text.

Every function runs one statement on the caller's connection; rows come back as dicts.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg

from triage import lifecycle
from triage.clinical.people_store import visible
from triage.rows import dict_one, dict_rows

Conn = psycopg.Connection[Any]
SEVERITIES = ("critical", "high", "moderate", "info")
ACTIVE_STATES = lifecycle.ACTIVE_STATES

_SEVERITY_RANK = (
    "CASE f.severity WHEN 'critical' THEN 0 WHEN 'high' THEN 1 WHEN 'moderate' THEN 2 ELSE 3 END"
)

# The states still needing someone, written out: a literal list lets the planner use the partial
# indexes of migration 0099 (flags_active_rank, flags_active_severity), which a parameter cannot.
_ACTIVE_IN = "f.state IN (" + ", ".join(f"'{s}'" for s in ACTIVE_STATES) + ")"
_STATES = "f.state = ANY(%(states)s)"

# The flags are chosen (filtered, ordered, limited) before anything is joined: joining patients and
# readings first made PostgreSQL look up a reading for every active flag (10,000 index probes for a
# 200-row page, ~0.5 s under load) before the top-N sort threw all but 200 away. For the active
# states the order is flags_active_rank's, so the first 200 visible entries are the page.
_QUEUE_SQL = f"""
WITH chosen AS (
    SELECT f.* FROM flags f
    WHERE {{states}}
      AND (%(severity)s::text IS NULL OR f.severity = %(severity)s::text)
      AND (%(rule_id)s::text IS NULL OR f.rule_id = %(rule_id)s::text)
      AND (%(assigned_to)s::text IS NULL OR f.assigned_to = %(assigned_to)s::text)
      AND {visible("f.patient_id")}
    ORDER BY {_SEVERITY_RANK}, f.opened_at, f.flag_id
    LIMIT %(limit)s
)
SELECT f.flag_id, f.patient_id, p.display_name AS patient, f.subject_key, f.rule_id, f.severity,
       f.state, f.reason, f.opened_at, f.assigned_to, f.last_reading_at,
       coalesce((f.evidence->'symptom_check'->>'call_911')::boolean, false) AS call_911,
       r.reading_id, r.kind, r.systolic_mmhg, r.diastolic_mmhg, r.pulse_bpm, r.glucose_mg_dl,
       r.weight_kg, r.spo2_pct, coalesce(r.measured_at, f.last_reading_at) AS reading_at,
       extract(epoch FROM now() - coalesce(r.measured_at, f.last_reading_at, f.opened_at))::bigint
           AS seconds_since_reading
FROM chosen f
LEFT JOIN patients p ON p.patient_id = f.patient_id
LEFT JOIN LATERAL (
    SELECT r.reading_id, r.kind, r.systolic_mmhg, r.diastolic_mmhg, r.pulse_bpm, r.glucose_mg_dl,
           r.weight_kg, r.spo2_pct, r.measured_at
    FROM readings r
    WHERE cardinality(f.reading_ids) > 0 AND r.reading_id = f.reading_ids[cardinality(f.reading_ids)]
    LIMIT 1
) r ON true
ORDER BY {_SEVERITY_RANK}, f.opened_at, f.flag_id
"""
QUEUE_ACTIVE_SQL = _QUEUE_SQL.format(states=_ACTIVE_IN)
_QUEUE_STATES_SQL = _QUEUE_SQL.format(states=_STATES)


def states_condition(states: tuple[str, ...]) -> str:
    return _ACTIVE_IN if set(states) == set(ACTIVE_STATES) else _STATES


def queue_read(
    states: tuple[str, ...], severity: str | None, rule_id: str | None, assigned_to: str | None,
    limit: int, viewer: int | None,
) -> tuple[str, dict[str, Any]]:
    """The queue's statement and parameters (most severe, then oldest first, each flag with its latest
    reading; only what ``viewer`` may see), for the page to send with its other reads."""
    sql = QUEUE_ACTIVE_SQL if states_condition(states) == _ACTIVE_IN else _QUEUE_STATES_SQL
    return sql, {"states": list(states), "severity": severity, "rule_id": rule_id,
                 "assigned_to": assigned_to, "limit": limit, "viewer": viewer}


# The counts above the queue (active flags per severity, from flags_active_severity alone) and the
# newest flag id the live refresh starts from, in one round trip: the row of NULL severity is the id.
HEAD_SQL = f"""
SELECT f.severity, count(*) AS n FROM flags f WHERE {_ACTIVE_IN} AND {visible('f.patient_id')}
GROUP BY f.severity
UNION ALL
SELECT NULL, coalesce(max(flag_id), 0) FROM flags
"""


def head(rows: list[dict[str, Any]]) -> tuple[dict[str, int], int]:
    """:data:`HEAD_SQL`'s rows as (active flags per severity, newest flag id)."""
    counts = dict.fromkeys(SEVERITIES, 0)
    last = 0
    for r in rows:
        if r["severity"] is None:
            last = int(r["n"])
        else:
            counts[r["severity"]] = int(r["n"])
    return counts, last


# The distinct rules by a skip scan of flags_rule (one probe per rule), not a read of every flag.
RULE_IDS_SQL = """
WITH RECURSIVE r AS (
    SELECT min(rule_id) AS rule_id FROM flags
    UNION ALL
    SELECT (SELECT min(rule_id) FROM flags WHERE rule_id > r.rule_id) FROM r WHERE r.rule_id IS NOT NULL
)
SELECT rule_id FROM r WHERE rule_id IS NOT NULL
"""


def rule_ids(conn: Conn) -> list[str]:
    return [r["rule_id"] for r in dict_rows(conn, RULE_IDS_SQL)]


def max_flag_id(conn: Conn) -> int:
    row = dict_one(conn, "SELECT coalesce(max(flag_id), 0) AS m FROM flags")
    return int(row["m"]) if row else 0


def new_flags(conn: Conn, after_id: int, limit: int = 100, *,
              viewer: int | None = None) -> list[dict[str, Any]]:
    """Flags created after ``after_id`` that ``viewer`` may see: what the event stream announces
    (no patient data)."""
    return dict_rows(
        conn,
        "SELECT flag_id, severity, rule_id, state, opened_at FROM flags f"
        f" WHERE flag_id > %(after)s AND {visible('f.patient_id')} ORDER BY flag_id LIMIT %(limit)s",
        {"after": after_id, "limit": limit, "viewer": viewer},
    )


def flag(conn: Conn, flag_id: int) -> dict[str, Any] | None:
    return dict_one(
        conn,
        "SELECT f.*, p.display_name AS patient, p.state AS patient_state, p.timezone AS patient_tz"
        " FROM flags f"
        " LEFT JOIN patients p ON p.patient_id = f.patient_id WHERE f.flag_id = %s",
        (flag_id,),
    )


def flag_events(conn: Conn, flag_ids: list[int]) -> list[dict[str, Any]]:
    return dict_rows(
        conn,
        "SELECT flag_event_id, flag_id, at, actor, event, from_state, to_state, note FROM flag_events"
        " WHERE flag_id = ANY(%s) ORDER BY at, flag_event_id",
        (flag_ids,),
    )


def flagged_reading_ids(conn: Conn, patient_id: int) -> set[int]:
    rows = dict_rows(
        conn,
        "SELECT DISTINCT unnest(reading_ids) AS rid FROM flags WHERE patient_id = %s",
        (patient_id,),
    )
    return {int(r["rid"]) for r in rows}


def patient_flags(conn: Conn, patient_id: int, limit: int = 100) -> list[dict[str, Any]]:
    return dict_rows(
        conn,
        "SELECT flag_id, rule_id, severity, state, reason, opened_at, closed_at, disposition, assigned_to,"
        " reading_ids FROM flags WHERE patient_id = %s ORDER BY opened_at DESC LIMIT %s",
        (patient_id, limit),
    )


def patient_of(conn: Conn, flag_id: int) -> int | None:
    """The patient a flag belongs to (None for a missing flag or one of no patient)."""
    row = dict_one(conn, "SELECT patient_id FROM flags WHERE flag_id = %s", (flag_id,))
    return None if row is None or row["patient_id"] is None else int(row["patient_id"])


def flag_count(conn: Conn) -> int:
    """Every flag ever raised (the demo's and the chaos run's summaries)."""
    row = dict_one(conn, "SELECT count(*) FROM flags")
    return int(row["count"]) if row else 0


def older_active(conn: Conn, before: datetime) -> list[dict[str, Any]]:
    """Active flags opened before ``before``, oldest first (the demo's staff work them)."""
    return dict_rows(conn, "SELECT flag_id, rule_id, state, opened_at FROM flags WHERE state = ANY(%s)"
                           " AND opened_at < %s ORDER BY opened_at",
                     (list(lifecycle.ACTIVE_STATES), before))
