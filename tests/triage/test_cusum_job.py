"""The trend flag through the real incremental triage job and PostgreSQL: one open flag, not daily."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from tests.triage.dbseed import patient, reading
from triage.jobs import IncrementalJob
from triage.settings import Settings
from triage.thresholds import TREND_REFLAG_INTERVAL

WOBBLE = (-6, 2, 5, -3, 0, 4, -5)


def _clock() -> datetime:
    """A fixed past instant 4 days before a re-flag interval boundary (the rise starts mid-interval)."""
    step = TREND_REFLAG_INTERVAL.total_seconds()
    return datetime.fromtimestamp(time.time() // step * step, UTC) - timedelta(days=4)


def test_steady_bp_rise_raises_one_trend_flag(db: psycopg.Connection[Any], database_url: str) -> None:
    now = _clock()
    pid = patient(db, assigned_from=now - timedelta(days=40))
    job = IncrementalJob(Settings.from_env({"RPMFLOW_DATABASE_URL": database_url}), clock=lambda: now)
    for d in range(34, 5, -1):  # four steady weeks around 128/80
        reading(db, pid, now - timedelta(days=d, hours=2), sbp=128 + WOBBLE[d % 7], dbp=80)
    assert job.run(db).opened == 0
    rising = [
        reading(db, pid, now - timedelta(days=d, hours=2), sbp=128 + 3 * (6 - d) + WOBBLE[d % 7], dbp=80)
        for d in range(5, -1, -1)
    ]
    job.run(db)
    flags = db.execute(
        "SELECT rule_id, severity, state, episode_key, reading_ids, reason FROM flags"
        " WHERE patient_id = %s AND rule_id = 'trend_cusum'",
        (pid,),
    ).fetchall()
    assert [(f[0], f[1], f[2]) for f in flags] == [("trend_cusum", "moderate", "open")]
    _, _, _, episode, ids, reason = flags[0]
    assert episode.startswith("systolic_mmhg:") and rising[-1] in ids
    assert "Systolic BP rising" in reason and "usual 128 mmHg" in reason
    # Another reading still up (the stage-2 rule has its own flag): attached, no second trend flag.
    more = reading(db, pid, now - timedelta(minutes=30), sbp=150, dbp=80)
    job.run(db)
    rows = db.execute(
        "SELECT reading_ids FROM flags WHERE patient_id = %s AND rule_id = 'trend_cusum'", (pid,)
    ).fetchall()
    assert len(rows) == 1 and more in rows[0][0]
