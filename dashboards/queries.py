"""Read-only SQL behind the pages and the JSON API. Writes go through triage's functions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dashboards.care_teams import visible
from dashboards.db import Conn, fetch_all, fetch_batch, fetch_one
from dashboards.units import GLUCOSE_UNIT_SQL, MG_DL, known_unit
from triage import lifecycle
from triage.valid_reading import ReadingFacts, judge

SEVERITIES = ("critical", "high", "moderate", "info")
# Flags still needing someone: the queue's default view (the lifecycle's own definition).
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
_QUEUE_ACTIVE_SQL = _QUEUE_SQL.format(states=_ACTIVE_IN)
_QUEUE_STATES_SQL = _QUEUE_SQL.format(states=_STATES)


def _states_condition(states: tuple[str, ...]) -> str:
    return _ACTIVE_IN if set(states) == set(ACTIVE_STATES) else _STATES


def _queue_read(
    states: tuple[str, ...], severity: str | None, rule_id: str | None, assigned_to: str | None,
    limit: int, viewer: int | None,
) -> tuple[str, dict[str, Any]]:
    sql = _QUEUE_ACTIVE_SQL if _states_condition(states) == _ACTIVE_IN else _QUEUE_STATES_SQL
    return sql, {"states": list(states), "severity": severity, "rule_id": rule_id,
                 "assigned_to": assigned_to, "limit": limit, "viewer": viewer}


_NEWEST_SQL = """
SELECT p.pid AS patient_id, r.reading_id, r.kind, r.measured_at, r.systolic_mmhg, r.diastolic_mmhg,
       r.pulse_bpm, r.glucose_mg_dl, r.weight_kg, r.spo2_pct
FROM unnest(%s::bigint[], %s::reading_kind[]) AS p(pid, kind)
JOIN LATERAL (
    SELECT * FROM readings r
    WHERE r.patient_id = p.pid AND r.kind = p.kind AND r.quality = 'valid'
    ORDER BY r.measured_at DESC LIMIT 1
) r ON true
"""
NEWEST_KINDS = ("blood_pressure", "glucose", "weight", "spo2")


def newest_readings(
    conn: Conn, patient_ids: list[int], kinds: dict[int, set[str]] | None = None
) -> dict[int, dict[str, dict[str, Any]]]:
    """Each patient's newest valid reading per kind (of ``kinds[patient]`` when given, else of every
    kind): shown beside the reading that raised the flag. Naming the kinds spares a walk through all
    of a patient's readings for a kind they never measure."""
    pairs = [(p, k) for p in patient_ids for k in sorted((kinds or {}).get(p, NEWEST_KINDS))
             if k in NEWEST_KINDS]
    out: dict[int, dict[str, dict[str, Any]]] = {}
    for r in fetch_all(conn, _NEWEST_SQL, ([p for p, _ in pairs], [k for _, k in pairs])):
        out.setdefault(int(r["patient_id"]), {})[str(r["kind"])] = r
    return out


# The counts above the queue (active flags per severity, from flags_active_severity alone) and the
# newest flag id the live refresh starts from, in one round trip: the row of NULL severity is the id.
_HEAD_SQL = f"""
SELECT f.severity, count(*) AS n FROM flags f WHERE {_ACTIVE_IN} AND {visible('f.patient_id')}
GROUP BY f.severity
UNION ALL
SELECT NULL, coalesce(max(flag_id), 0) FROM flags
"""


def _head(rows: list[dict[str, Any]]) -> tuple[dict[str, int], int]:
    counts = dict.fromkeys(SEVERITIES, 0)
    last = 0
    for r in rows:
        if r["severity"] is None:
            last = int(r["n"])
        else:
            counts[r["severity"]] = int(r["n"])
    return counts, last


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
    reads: list[tuple[str, Any]] = [_queue_read(states, severity, rule_id, assigned_to, limit, viewer),
                                    (_HEAD_SQL, {"viewer": viewer})]
    if unit_of is not None:
        reads.append((GLUCOSE_UNIT_SQL, {"user": unit_of}))
    if rules:
        reads.append((_RULE_IDS_SQL, None))
    results = fetch_batch(conn, reads)
    counts, last = _head(results[1])
    unit = known_unit(results[2][0] if results[2] else None) if unit_of is not None else MG_DL
    rule_list = [r["rule_id"] for r in results[-1]] if rules else []
    return QueueReads(results[0], counts, last, unit, rule_list)


# The distinct rules by a skip scan of flags_rule (one probe per rule), not a read of every flag.
_RULE_IDS_SQL = """
WITH RECURSIVE r AS (
    SELECT min(rule_id) AS rule_id FROM flags
    UNION ALL
    SELECT (SELECT min(rule_id) FROM flags WHERE rule_id > r.rule_id) FROM r WHERE r.rule_id IS NOT NULL
)
SELECT rule_id FROM r WHERE rule_id IS NOT NULL
"""


def rule_ids(conn: Conn) -> list[str]:
    return [r["rule_id"] for r in fetch_all(conn, _RULE_IDS_SQL)]


def max_flag_id(conn: Conn) -> int:
    row = fetch_one(conn, "SELECT coalesce(max(flag_id), 0) AS m FROM flags")
    return int(row["m"]) if row else 0


def new_flags(conn: Conn, after_id: int, limit: int = 100, *,
              viewer: int | None = None) -> list[dict[str, Any]]:
    """Flags created after ``after_id`` that ``viewer`` may see: what the event stream announces
    (no patient data)."""
    return fetch_all(
        conn,
        "SELECT flag_id, severity, rule_id, state, opened_at FROM flags f"
        f" WHERE flag_id > %(after)s AND {visible('f.patient_id')} ORDER BY flag_id LIMIT %(limit)s",
        {"after": after_id, "limit": limit, "viewer": viewer},
    )


def flag(conn: Conn, flag_id: int) -> dict[str, Any] | None:
    return fetch_one(
        conn,
        "SELECT f.*, p.display_name AS patient, p.state AS patient_state, p.timezone AS patient_tz"
        " FROM flags f"
        " LEFT JOIN patients p ON p.patient_id = f.patient_id WHERE f.flag_id = %s",
        (flag_id,),
    )


def flag_events(conn: Conn, flag_ids: list[int]) -> list[dict[str, Any]]:
    return fetch_all(
        conn,
        "SELECT flag_event_id, flag_id, at, actor, event, from_state, to_state, note FROM flag_events"
        " WHERE flag_id = ANY(%s) ORDER BY at, flag_event_id",
        (flag_ids,),
    )


def flag_readings(conn: Conn, reading_ids: list[int]) -> list[dict[str, Any]]:
    return fetch_all(
        conn,
        "SELECT reading_id, kind, measured_at, quality, systolic_mmhg, diastolic_mmhg, pulse_bpm,"
        " glucose_mg_dl FROM readings WHERE reading_id = ANY(%s) ORDER BY measured_at",
        (reading_ids,),
    )


def patient(conn: Conn, patient_id: int) -> dict[str, Any] | None:
    return fetch_one(
        conn,
        "SELECT patient_id, mrn, display_name, state, timezone, birth_year, created_at FROM patients"
        " WHERE patient_id = %s",
        (patient_id,),
    )


def readings(conn: Conn, patient_id: int, since: datetime, limit: int = 5000) -> list[dict[str, Any]]:
    return fetch_all(
        conn,
        "SELECT reading_id, device_id, kind, measured_at, quality, quality_reason, measurement,"
        " transmission, systolic_mmhg, diastolic_mmhg, mean_arterial_mmhg, pulse_bpm, glucose_mg_dl,"
        " meal, coalesce(device_status, '{}') AS device_status, weight_kg, spo2_pct, spo2_min_pct,"
        " sample_count, original"
        " FROM readings WHERE patient_id = %s AND measured_at >= %s"
        " ORDER BY measured_at DESC LIMIT %s",
        (patient_id, since, limit),
    )


def daily_stats(conn: Conn, patient_id: int, since: datetime) -> list[dict[str, Any]]:
    """Per-day counts and valid-reading statistics (UTC days), newest first, from readings_daily:
    a continuous aggregate on TimescaleDB's community edition, a plain view elsewhere."""
    return fetch_all(
        conn,
        "SELECT day, kind, readings, valid, systolic_min, systolic_avg, systolic_max, diastolic_avg,"
        " pulse_avg, pulse_min, pulse_max, glucose_min, glucose_avg, glucose_max, weight_min, weight_avg,"
        " weight_max, spo2_min, spo2_avg, spo2_max FROM readings_daily"
        " WHERE patient_id = %s AND day >= %s ORDER BY day DESC, kind",
        (patient_id, since),
    )


def flagged_reading_ids(conn: Conn, patient_id: int) -> set[int]:
    rows = fetch_all(
        conn,
        "SELECT DISTINCT unnest(reading_ids) AS rid FROM flags WHERE patient_id = %s",
        (patient_id,),
    )
    return {int(r["rid"]) for r in rows}


def patient_flags(conn: Conn, patient_id: int, limit: int = 100) -> list[dict[str, Any]]:
    return fetch_all(
        conn,
        "SELECT flag_id, rule_id, severity, state, reason, opened_at, closed_at, disposition, assigned_to,"
        " reading_ids FROM flags WHERE patient_id = %s ORDER BY opened_at DESC LIMIT %s",
        (patient_id, limit),
    )


def billing_days(conn: Conn, patient_id: int, timezone: str, since: datetime) -> list[Any]:
    """Patient-local dates with a reading that counts (triage.valid_reading, as billing and adherence)."""
    rows = fetch_all(
        conn,
        "SELECT reading_id, kind, measured_at, (measured_at AT TIME ZONE %s)::date AS d, quality,"
        " transmission, device_status FROM readings"
        " WHERE patient_id = %s AND measured_at >= %s AND measurement = 'ok'",
        (timezone, patient_id, since),
    )
    facts = [
        (r["d"], ReadingFacts(int(r["reading_id"]), r["kind"], r["measured_at"], r["quality"],
                              r["transmission"], tuple(r["device_status"] or ())))
        for r in rows
    ]
    return sorted({d for d, f in facts if judge(f).valid})


def unassigned_readings(conn: Conn, limit: int = 200) -> list[dict[str, Any]]:
    return fetch_all(
        conn,
        "SELECT reading_id, gateway_id, device_id, kind, measured_at, received_at, quality FROM readings"
        " WHERE patient_id IS NULL ORDER BY measured_at DESC LIMIT %s",
        (limit,),
    )


def dead_letters(conn: Conn, limit: int = 200) -> list[dict[str, Any]]:
    return fetch_all(
        conn,
        "SELECT dead_letter_id, received_at, topic, gateway_id, error_class, reason,"
        " coalesce(payload_size, octet_length(payload))"
        " AS payload_bytes, encode(substring(payload FROM 1 FOR 160), 'escape') AS payload_head, resolved_at"
        " FROM dead_letters ORDER BY received_at DESC LIMIT %s",
        (limit,),
    )


def users(conn: Conn) -> list[dict[str, Any]]:
    return fetch_all(
        conn,
        "SELECT u.user_id, u.username, u.display_name, u.role, u.npi, u.is_physician_or_qhp, u.active,"
        " u.created_at, EXISTS (SELECT 1 FROM user_mfa m WHERE m.user_id = u.user_id"
        " AND m.confirmed_at IS NOT NULL) AS mfa_enrolled,"
        " coalesce(json_agg(json_build_object('state', l.state, 'license_number',"
        " l.license_number, 'valid_from', l.valid_from, 'valid_to', l.valid_to)"
        " ORDER BY l.state) FILTER (WHERE l.license_id IS NOT NULL), '[]') AS licenses"
        " FROM users u LEFT JOIN clinician_licenses l USING (user_id) GROUP BY u.user_id ORDER BY u.username",
    )


def patients(conn: Conn, limit: int = 500) -> list[dict[str, Any]]:
    return fetch_all(
        conn,
        "SELECT p.patient_id, p.mrn, p.display_name, p.state, p.timezone, p.created_at,"
        " (SELECT count(*) FROM device_assignments a WHERE a.patient_id = p.patient_id"
        "  AND a.valid_to IS NULL) AS devices"
        " FROM patients p ORDER BY p.patient_id DESC LIMIT %s",
        (limit,),
    )


