"""Triage history as it happened: one pass as of a past instant, and a replay over a range.

A gateway that uploads a week late, or a backfill, brings readings whose flags should carry the
time they would have been raised, judged on what was known then. ``as_of_pass`` evaluates the
value rules at ``as_of`` for every patient with a reading *measured* in ``(since, as_of]``
(whenever it was ingested), over only the readings measured by then; flags and suppressions are
stamped ``as_of``. ``replay`` steps through a range and also runs the calendar rules (trend,
adherence period) once per day at the configured hour. Neither touches the incremental
watermarks. The silences are not replayed: gateway and device contact is only known as of now.
Re-running either is harmless: upserts attach nothing twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from triage import loader, readings_store
from triage.jobs import PassReport, _involves, _write, daily_pass, db_errors, incremental_job_name
from triage.rules import evaluate_readings
from triage.settings import Settings


def as_of_pass(
    conn: psycopg.Connection[Any], settings: Settings, as_of: datetime, *, since: datetime | None = None
) -> PassReport:
    """Value rules at ``as_of`` for candidates involving a reading measured in ``(since, as_of]``.

    ``since`` defaults to the lookback window before ``as_of`` (everything a pass then would see).
    """
    lookback = timedelta(days=settings.lookback_days)
    start = as_of - lookback if since is None else since
    with db_errors(), conn.transaction():
        pids = readings_store.patients_measured_between(conn, start, as_of)
        if not pids:
            return PassReport(shards_done=1)
        readings = readings_store.readings_for(conn, pids, as_of - lookback)
        new_ids = {
            int(x)
            for x, at in zip(readings["reading_id"], readings["measured_at"], strict=True)
            if start < at <= as_of
        }
        ev = evaluate_readings(
            readings,
            now=as_of,
            limits=loader.overrides(conn, pids),
            snoozes=loader.snoozes(conn, pids, as_of - lookback),
            starts=readings_store.first_readings(conn, pids),
        )
        cands = (
            ev.candidates[_involves(ev.candidates["reading_ids"], new_ids)]
            if len(ev.candidates)
            else ev.candidates
        )
        sup = (
            ev.suppressed[_involves(ev.suppressed["reading_ids"], new_ids)]
            if len(ev.suppressed)
            else ev.suppressed
        )
        rep = _write(conn, cands, sup, readings, as_of)
        rep.shards_done, rep.new_readings, rep.patients = 1, len(new_ids), len(pids)
        return rep


def steps(start: datetime, end: datetime, step: timedelta) -> Iterator[datetime]:
    """``start + step, start + 2*step, …`` up to and including ``end``."""
    t = start
    while t < end:
        t = min(t + step, end)
        yield t


def _daily_due(prev: datetime, t: datetime, hour: int) -> bool:
    """A daily run at ``hour`` UTC falls in ``(prev, t]``."""
    day = t.astimezone(UTC).replace(hour=hour, minute=0, second=0, microsecond=0)
    return prev < day <= t or prev < day - timedelta(days=1) <= t


def replay(
    conn: psycopg.Connection[Any],
    settings: Settings,
    start: datetime,
    end: datetime,
    step: timedelta,
) -> PassReport:
    """Every ``step`` from ``start`` to ``end``: the value rules as of then, the daily rules at their hour."""
    total = PassReport()
    prev = start
    for t in steps(start, end, step):
        total.add(as_of_pass(conn, settings, t, since=prev))
        if _daily_due(prev, t, settings.daily_hour_utc):
            total.add(daily_pass(conn, settings, t))
        prev = t
    return total


def hand_over(conn: psycopg.Connection[Any], settings: Settings, until: datetime) -> None:
    """After a replay up to ``until`` of a backfill: the incremental pass starts from there.

    Backfilled readings carry a fresh ``ingested_at``, so without this the live service would judge
    the month a second time "as of now", on top of the replay's flags stamped as they happened.
    """
    with db_errors(), conn.transaction():
        for shard in range(settings.shards):
            conn.execute(
                "INSERT INTO job_watermarks (job, watermark, updated_at) VALUES (%s, %s, %s)"
                " ON CONFLICT (job) DO UPDATE SET"
                " watermark = greatest(job_watermarks.watermark, EXCLUDED.watermark),"
                " updated_at = EXCLUDED.updated_at",
                (incremental_job_name(shard, settings.shards), until, until),
            )


__all__ = ["as_of_pass", "hand_over", "replay", "steps"]
