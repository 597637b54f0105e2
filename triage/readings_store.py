"""The ``readings`` table's reads, stated once for triage, dashboards and the simulators' checks.

Ingest owns the writes (``ingest/writer.py``, ``ingest/direct.py``); everything else that asks about
stored readings used to write its own ``SELECT … FROM readings``: the jobs' frames, the replay, the
crisis workflow, the patient page and its charts, the queue, the admin's unassigned list, the chaos
run's accounting. The one update outside ingest is here too: an ended device assignment takes its
later readings back from the patient (:func:`detach_from_patient`). Statements joining readings to
another table's rows belong to that table's owner: the queue's flag rows (flags), the devices'
last reading (``triage/clinical/devices_store.py``). Each function runs one statement on the
caller's connection and transaction, with the SQL text the caller used to send, so plans and the
pages' p99 do not move. Rows a page renders come back as dicts (templates read them by name); the
jobs get frames prepared for the rules; the rest get plain typed values.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import date, datetime
from typing import Any

import pandas as pd
import psycopg

from triage import frames as fr
from triage.rows import dict_rows
from triage.valid_reading import PROBLEM_STATUS, ReadingFacts, judge

Conn = psycopg.Connection[Any]

# device_status is NULL when the device set no status bit.
_STATUS_SQL = ", ".join(f"coalesce('{n}' = ANY(device_status), false) AS st_{n}" for n in fr.STATUS_NAMES)
# The shared validity definition's problem bits, per kind (triage.valid_reading.PROBLEM_STATUS).
_PROBLEM_SQL = (
    "coalesce(CASE kind "
    + " ".join(
        f"WHEN '{kind}' THEN device_status && ARRAY[{', '.join(repr(n) for n in sorted(names))}]::text[]"
        for kind, names in sorted(PROBLEM_STATUS.items())
    )
    + f" ELSE false END, false) AS {fr.PROBLEM_COLUMN}"
)
_READING_SQL = (
    "SELECT reading_id, patient_id, device_id, gateway_id, kind, measured_at, ingested_at, quality,"
    " measurement, transmission, systolic_mmhg, diastolic_mmhg, pulse_bpm, glucose_mg_dl, clock_offset_s,"
    " weight_kg, spo2_pct, spo2_min_pct, " + _STATUS_SQL + ", " + _PROBLEM_SQL + " FROM readings"
)


def _frame(cur: psycopg.Cursor[Any]) -> pd.DataFrame:
    cols = [d.name for d in cur.description or []]
    return pd.DataFrame(cur.fetchall(), columns=cols)


# -- the triage jobs ------------------------------------------------------------------------------

def new_readings(conn: Conn, since: datetime, *, shard: int, shards: int) -> pd.DataFrame:
    """``reading_id, patient_id, ingested_at`` of readings ingested after ``since`` in this shard."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT reading_id, patient_id, ingested_at FROM readings"
            " WHERE ingested_at > %s AND patient_id IS NOT NULL AND patient_id %% %s = %s",
            (since, shards, shard),
        )
        return _frame(cur)


def readings_for(conn: Conn, patient_ids: Collection[int], since: datetime) -> pd.DataFrame:
    """All readings of these patients measured since ``since``, prepared for the rules."""
    with conn.cursor() as cur:
        cur.execute(
            _READING_SQL + " WHERE patient_id = ANY(%s) AND measured_at >= %s", (list(patient_ids), since)
        )
        df = _frame(cur)
    if df.empty:
        df = pd.DataFrame(columns=list(fr.READING_COLUMNS))
    return fr.prepare_readings(df)


def first_readings(conn: Conn, patient_ids: Collection[int]) -> pd.Series:
    """``patient_id -> measured_at`` of the patient's first reading ever (their monitoring start,
    from which the stage-2 review intervals are counted); one index probe per patient."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT p.id AS patient_id,"
            " (SELECT min(r.measured_at) FROM readings r WHERE r.patient_id = p.id) AS first_at"
            " FROM unnest(%s::bigint[]) AS p(id)",
            (list(patient_ids),),
        )
        df = _frame(cur).dropna()
    return pd.Series(
        pd.to_datetime(df["first_at"], utc=True).to_numpy(), index=df["patient_id"].astype("int64")
    )


def patients_measured_between(conn: Conn, since: datetime, until: datetime) -> set[int]:
    """Patients with a reading measured in ``(since, until]`` (the replay's candidates)."""
    rows = conn.execute(
        "SELECT DISTINCT patient_id FROM readings"
        " WHERE measured_at > %s AND measured_at <= %s AND patient_id IS NOT NULL",
        (since, until),
    ).fetchall()
    return {int(r[0]) for r in rows}


def valid_bp_after(
    conn: Conn, patient_id: int, after: datetime, limit: int = 50
) -> list[tuple[datetime, float, float]]:
    """(measured_at, systolic, diastolic) of the patient's valid BP readings after ``after``, newest
    ``limit`` first (the crisis workflow's re-measurement outside the rule's window)."""
    rows = conn.execute(
        "SELECT measured_at, systolic_mmhg, diastolic_mmhg FROM readings WHERE patient_id = %s"
        " AND kind = 'blood_pressure' AND quality = 'valid' AND measured_at > %s"
        " AND systolic_mmhg IS NOT NULL AND diastolic_mmhg IS NOT NULL"
        " ORDER BY measured_at DESC LIMIT %s",
        (patient_id, after, limit),
    ).fetchall()
    return [(r[0], float(r[1]), float(r[2])) for r in rows]


def detach_from_patient(conn: Conn, device_id: str, patient_id: int, at: datetime) -> list[int]:
    """Take the device's readings measured from ``at`` on away from the patient (an assignment that
    ends); the reading ids, in no order. Attaching is ingest's (``ingest.writer.attach_unassigned``)."""
    rows = conn.execute(
        "UPDATE readings SET patient_id = NULL"
        " WHERE device_id = %s AND patient_id = %s AND measured_at >= %s RETURNING reading_id",
        (device_id, patient_id, at),
    ).fetchall()
    return [int(r[0]) for r in rows]


# -- the dashboards' pages ------------------------------------------------------------------------

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
    conn: Conn, patient_ids: list[int], kinds: Mapping[int, set[str]] | None = None
) -> dict[int, dict[str, dict[str, Any]]]:
    """Each patient's newest valid reading per kind (of ``kinds[patient]`` when given, else of every
    kind): shown beside the reading that raised the flag. Naming the kinds spares a walk through all
    of a patient's readings for a kind they never measure."""
    pairs = [(p, k) for p in patient_ids for k in sorted((kinds or {}).get(p, NEWEST_KINDS))
             if k in NEWEST_KINDS]
    out: dict[int, dict[str, dict[str, Any]]] = {}
    for r in dict_rows(conn, _NEWEST_SQL, ([p for p, _ in pairs], [k for _, k in pairs])):
        out.setdefault(int(r["patient_id"]), {})[str(r["kind"])] = r
    return out


def by_ids(conn: Conn, reading_ids: list[int]) -> list[dict[str, Any]]:
    """The readings a flag holds, oldest first (the review form and the flag's page)."""
    return dict_rows(
        conn,
        "SELECT reading_id, kind, measured_at, quality, systolic_mmhg, diastolic_mmhg, pulse_bpm,"
        " glucose_mg_dl FROM readings WHERE reading_id = ANY(%s) ORDER BY measured_at",
        (reading_ids,),
    )


def of_patient(conn: Conn, patient_id: int, since: datetime, limit: int = 5000) -> list[dict[str, Any]]:
    """The patient's readings measured since ``since``, newest first (the patient page's table)."""
    return dict_rows(
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
    return dict_rows(
        conn,
        "SELECT day, kind, readings, valid, systolic_min, systolic_avg, systolic_max, diastolic_avg,"
        " pulse_avg, pulse_min, pulse_max, glucose_min, glucose_avg, glucose_max, weight_min, weight_avg,"
        " weight_max, spo2_min, spo2_avg, spo2_max FROM readings_daily"
        " WHERE patient_id = %s AND day >= %s ORDER BY day DESC, kind",
        (patient_id, since),
    )


def valid_days(conn: Conn, patient_id: int, timezone: str, since: datetime) -> list[date]:
    """Patient-local dates with a reading that counts (triage.valid_reading, as billing and adherence)."""
    rows = dict_rows(
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


def unassigned(conn: Conn, limit: int = 200) -> list[dict[str, Any]]:
    """Stored readings no patient holds, newest first (the admin's list)."""
    return dict_rows(
        conn,
        "SELECT reading_id, gateway_id, device_id, kind, measured_at, received_at, quality FROM readings"
        " WHERE patient_id IS NULL ORDER BY measured_at DESC LIMIT %s",
        (limit,),
    )


def period_stats(
    conn: Conn, patient_id: int, since: datetime, *, very_low: float, low: float, high: float,
    very_high: float,
) -> dict[str, dict[str, Any]]:
    """Per kind over every valid reading since ``since``: count, days, means, and the glucose bands
    the caller's limits (mg/dL) draw."""
    rows = dict_rows(
        conn,
        "SELECT kind, count(*) AS n, count(DISTINCT date_trunc('day', measured_at)) AS days,"
        " avg(systolic_mmhg) AS systolic, avg(diastolic_mmhg) AS diastolic, avg(glucose_mg_dl) AS glucose,"
        " avg(weight_kg) AS weight, avg(spo2_pct) AS spo2,"
        " count(*) FILTER (WHERE glucose_mg_dl < %(vl)s) AS very_low,"
        " count(*) FILTER (WHERE glucose_mg_dl >= %(vl)s AND glucose_mg_dl < %(l)s) AS low,"
        " count(*) FILTER (WHERE glucose_mg_dl >= %(l)s AND glucose_mg_dl <= %(h)s) AS in_range,"
        " count(*) FILTER (WHERE glucose_mg_dl > %(h)s AND glucose_mg_dl <= %(vh)s) AS high,"
        " count(*) FILTER (WHERE glucose_mg_dl > %(vh)s) AS very_high"
        " FROM readings WHERE patient_id = %(p)s AND measured_at >= %(since)s AND quality = 'valid'"
        " GROUP BY kind",
        {"p": patient_id, "since": since, "vl": very_low, "l": low, "h": high, "vh": very_high},
    )
    return {r["kind"]: r for r in rows}


# -- the chaos run's accounting -------------------------------------------------------------------

def stored_message_ids(conn: Conn) -> set[str]:
    """Every stored reading's message id as the gateway wrote it (32 hex digits, no dashes)."""
    return {r[0] for r in conn.execute("SELECT replace(message_id::text, '-', '') FROM readings")}


def stored_accounting_kinds(conn: Conn) -> list[tuple[str, str]]:
    """(message id without dashes, accounting kind) of every stored reading: the wire kind, except
    that a window summary of continuous oximetry (it has a sample count) is ``spo2/minute``."""
    return [
        (str(r[0]), str(r[1]))
        for r in conn.execute(
            "SELECT replace(message_id::text, '-', ''),"
            " CASE WHEN kind = 'spo2' AND sample_count IS NOT NULL THEN 'spo2/minute' ELSE kind::text END"
            " FROM readings"
        )
    ]
