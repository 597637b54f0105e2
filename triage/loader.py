"""SQL → frames for the jobs: new readings since a watermark, patient windows, overrides, silences.

Status flags are turned into booleans in SQL so the frames the rules see are flat and typed.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

import pandas as pd
import psycopg

from triage import frames as fr
from triage.limits import DRY_WEIGHT_KEY, Limits
from triage.valid_reading import PROBLEM_STATUS

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


def new_readings(
    conn: psycopg.Connection[Any],
    since: datetime,
    *,
    shard: int,
    shards: int,
) -> pd.DataFrame:
    """``reading_id, patient_id, ingested_at`` of readings ingested after ``since`` in this shard."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT reading_id, patient_id, ingested_at FROM readings"
            " WHERE ingested_at > %s AND patient_id IS NOT NULL AND patient_id %% %s = %s",
            (since, shards, shard),
        )
        return _frame(cur)


def readings_for(
    conn: psycopg.Connection[Any], patient_ids: Collection[int], since: datetime
) -> pd.DataFrame:
    """All readings of these patients measured since ``since``, prepared for the rules."""
    with conn.cursor() as cur:
        cur.execute(
            _READING_SQL + " WHERE patient_id = ANY(%s) AND measured_at >= %s", (list(patient_ids), since)
        )
        df = _frame(cur)
    if df.empty:
        df = pd.DataFrame(columns=list(fr.READING_COLUMNS))
    return fr.prepare_readings(df)


def patients(conn: psycopg.Connection[Any], patient_ids: Collection[int] | None = None) -> pd.DataFrame:
    """``patient_id, timezone, enrolled_at`` (first device assignment, else the record's creation)."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT p.patient_id, p.timezone, coalesce(min(a.valid_from), p.created_at) AS enrolled_at"
            " FROM patients p LEFT JOIN device_assignments a ON a.patient_id = p.patient_id"
            " WHERE %(ids)s::bigint[] IS NULL OR p.patient_id = ANY(%(ids)s)"
            " GROUP BY p.patient_id",
            {"ids": None if patient_ids is None else list(patient_ids)},
        )
        return _frame(cur)


def first_readings(conn: psycopg.Connection[Any], patient_ids: Collection[int]) -> pd.Series:
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


def overrides(conn: psycopg.Connection[Any], patient_ids: Collection[int]) -> Limits:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT patient_id, threshold_key, value, unit, value_canonical, set_by"
            " FROM triage_threshold_overrides WHERE revoked_at IS NULL AND patient_id = ANY(%(ids)s)"
            " UNION ALL SELECT patient_id, %(dry)s, value, unit, dry_weight_kg, set_by"
            " FROM patient_dry_weights WHERE revoked_at IS NULL AND patient_id = ANY(%(ids)s)",
            {"ids": list(patient_ids), "dry": DRY_WEIGHT_KEY},
        )
        df = _frame(cur)
    return Limits(df) if not df.empty else Limits()


def snoozes(
    conn: psycopg.Connection[Any], patient_ids: Collection[int] | None, since: datetime
) -> pd.DataFrame:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT patient_id, rule_id, until, reason, set_by FROM triage_snoozes"
            " WHERE until >= %(since)s AND (%(ids)s::bigint[] IS NULL OR patient_id = ANY(%(ids)s))",
            {"since": since, "ids": None if patient_ids is None else list(patient_ids)},
        )
        return _frame(cur)


def assigned_devices(conn: psycopg.Connection[Any], now: datetime) -> pd.DataFrame:
    """Currently assigned devices with their last reading, last BLE contact and gateway."""
    with conn.cursor() as cur:
        cur.execute(
            """
            SELECT a.patient_id, a.device_id,
                   coalesce(last.gateway_id, d.last_gateway_id) AS gateway_id,
                   a.valid_from AS assigned_from,
                   last.measured_at AS last_reading_at,
                   greatest((gs.status->'devices'->a.device_id->>'last_contact')::timestamptz,
                            d.last_seen_at) AS last_contact_at
            FROM device_assignments a
            JOIN devices d ON d.device_id = a.device_id
            LEFT JOIN LATERAL (
                SELECT r.measured_at, r.gateway_id FROM readings r
                WHERE r.patient_id = a.patient_id AND r.device_id = a.device_id
                  AND r.measured_at >= a.valid_from
                ORDER BY r.measured_at DESC LIMIT 1) last ON true
            LEFT JOIN gateway_status gs ON gs.gateway_id = coalesce(last.gateway_id, d.last_gateway_id)
            WHERE a.valid_from <= %(now)s AND (a.valid_to IS NULL OR a.valid_to > %(now)s)
            """,
            {"now": now},
        )
        df = _frame(cur)
    if df.empty:
        df = pd.DataFrame(
            columns=[
                "patient_id",
                "device_id",
                "gateway_id",
                "assigned_from",
                "last_reading_at",
                "last_contact_at",
            ]
        )
    return df


def gateways(conn: psycopg.Connection[Any]) -> pd.DataFrame:
    with conn.cursor() as cur:
        cur.execute("SELECT gateway_id, online, updated_at FROM gateway_status")
        df = _frame(cur)
    if df.empty:
        df = pd.DataFrame(columns=["gateway_id", "online", "updated_at"])
    return df
