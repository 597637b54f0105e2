"""SQL → frames for the jobs: overrides, snoozes, gateways.

The readings the jobs judge (new since a watermark, patient windows, first readings) come from
``triage.readings_store``, which turns status flags into booleans in SQL so the frames are flat and
typed; the assigned devices and the patients' monitoring start from ``triage.clinical.devices_store``.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

import pandas as pd
import psycopg

from triage.limits import DRY_WEIGHT_KEY, Limits


def _frame(cur: psycopg.Cursor[Any]) -> pd.DataFrame:
    cols = [d.name for d in cur.description or []]
    return pd.DataFrame(cur.fetchall(), columns=cols)


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


def gateways(conn: psycopg.Connection[Any]) -> pd.DataFrame:
    with conn.cursor() as cur:
        cur.execute("SELECT gateway_id, online, updated_at FROM gateway_status")
        df = _frame(cur)
    if df.empty:
        df = pd.DataFrame(columns=["gateway_id", "online", "updated_at"])
    return df
