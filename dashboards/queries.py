"""Read-only SQL behind the pages and the JSON API. Writes go through triage's functions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dashboards.db import Conn, fetch_all, fetch_batch
from dashboards.units import GLUCOSE_UNIT_SQL, MG_DL, known_unit
from triage import flag_views_store
from triage.clinical import people_store
from triage.valid_reading import ReadingFacts, judge

SEVERITIES = flag_views_store.SEVERITIES
# Flags still needing someone: the queue's default view (the lifecycle's own definition).
ACTIVE_STATES = flag_views_store.ACTIVE_STATES


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


def flag_readings(conn: Conn, reading_ids: list[int]) -> list[dict[str, Any]]:
    return fetch_all(
        conn,
        "SELECT reading_id, kind, measured_at, quality, systolic_mmhg, diastolic_mmhg, pulse_bpm,"
        " glucose_mg_dl FROM readings WHERE reading_id = ANY(%s) ORDER BY measured_at",
        (reading_ids,),
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
