"""The triage passes: the only code that reads the clock and touches the database around the rules.

* :class:`IncrementalJob` – patients with readings ingested after the shard's watermark: load their
  window, run the value rules, keep candidates that involve a new reading, upsert, auto-clear
  crises cleared by their re-measurement, log suppressions, advance the watermark, all in one
  transaction per shard under ``pg_try_advisory_xact_lock(namespace, shard)`` so several
  processes split the shards instead of doubling the work (and the unique index catches the rest).
* :func:`daily_pass` – calendar rules (trend, adherence period) for every patient, in chunks.
* :func:`silence_pass` – gateway offline / device not seen / patient not measuring.

Late commits: ``ingested_at`` is the writer's transaction start, so a row can become visible
after rows with later stamps. Each pass re-reads ``overlap_s`` before the watermark and skips
reading ids it already handled; anything handled twice is harmless because upserts are idempotent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import psycopg

from gateway.runtime.fatal import one_line
from gateway.runtime.retry import ErrorKind
from ingest.dberrors import kind_of
from triage import flags_store, lifecycle, loader, readings_store
from triage.clinical import devices_store
from triage.errors import DatabaseUnavailable, LifecycleError
from triage.rules import evaluate_daily, evaluate_readings, evaluate_silences
from triage.settings import Settings

log = logging.getLogger(__name__)

LOCK_NAMESPACE = 0x7472  # "tr": advisory-lock class id of triage shards
SILENCE_LOCK = 1_000_001
DAILY_LOCK = 1_000_002
JOB_INCREMENTAL = "triage.incremental"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class PassReport:
    shards_done: int = 0
    shards_busy: int = 0
    new_readings: int = 0
    patients: int = 0
    candidates: int = 0
    opened: int = 0
    attached: int = 0
    auto_cleared: int = 0
    suppressed: int = 0
    flag_ids: list[int] = field(default_factory=list)

    def add(self, other: PassReport) -> None:
        for name in (
            "shards_done",
            "shards_busy",
            "new_readings",
            "patients",
            "candidates",
            "opened",
            "attached",
            "auto_cleared",
            "suppressed",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.flag_ids.extend(other.flag_ids)


@contextmanager
def db_errors() -> Iterator[None]:
    """psycopg's connection-level failures become our transient error, classified once
    (ingest/dberrors.py); the scheduler retries, the service bounds refused credentials."""
    try:
        yield
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable(one_line(str(exc)), kind_of(exc) or ErrorKind.TRANSIENT) from exc


def _try_lock(conn: psycopg.Connection[Any], key: int) -> bool:
    row = conn.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", (LOCK_NAMESPACE, key)).fetchone()
    return bool(row and row[0])


def _write(
    conn: psycopg.Connection[Any],
    evaluation_cands: pd.DataFrame,
    suppressed: pd.DataFrame,
    readings: pd.DataFrame | None,
    now: datetime,
) -> PassReport:
    rep = PassReport(candidates=len(evaluation_cands))
    results = flags_store.upsert_candidates(
        conn, flags_store.to_flag_candidates(evaluation_cands, readings), now
    )
    for r in results:
        rep.flag_ids.append(r.flag_id)
        if r.inserted:
            rep.opened += 1
        else:
            rep.attached += 1
        if (
            r.candidate.confirmation == "cleared"
            and r.confirmation == "cleared"
            and "auto_clear" in lifecycle.TRANSITIONS.get(r.state, {})
        ):
            try:
                flags_store.apply_event(
                    conn,
                    r.flag_id,
                    "auto_clear",
                    "triage",
                    "system",
                    note="re-measurement below the crisis line (AHA protocol)",
                )
                rep.auto_cleared += 1
            except LifecycleError as exc:
                log.info("flag %s not auto-cleared: %s", r.flag_id, exc)
    rep.suppressed = flags_store.log_suppressions(conn, suppressed, now)
    return rep


def _involves(ids: pd.Series, new_ids: set[int]) -> pd.Series:
    return ids.map(lambda xs: any(int(x) in new_ids for x in xs)).astype(bool)


def incremental_job_name(shard: int, shards: int) -> str:
    """The ``job_watermarks`` key of one shard of the incremental pass."""
    return f"{JOB_INCREMENTAL}:{shard}/{shards}"


class IncrementalJob:
    """One per process: remembers reading ids it handled inside the overlap window."""

    def __init__(self, settings: Settings, clock: Clock = utc_now) -> None:
        self.settings = settings
        self.clock = clock
        self._seen: dict[int, datetime] = {}

    def _job_name(self, shard: int) -> str:
        return incremental_job_name(shard, self.settings.shards)

    def run(self, conn: psycopg.Connection[Any]) -> PassReport:
        """One pass over every shard this process can lock now."""
        total = PassReport()
        with db_errors():
            for shard in range(self.settings.shards):
                total.add(self.run_shard(conn, shard))
        return total

    def run_shard(self, conn: psycopg.Connection[Any], shard: int) -> PassReport:
        s = self.settings
        now = self.clock()
        with conn.transaction():
            if not _try_lock(conn, shard):
                return PassReport(shards_busy=1)
            row = conn.execute(
                "SELECT watermark FROM job_watermarks WHERE job = %s", (self._job_name(shard),)
            ).fetchone()
            watermark: datetime = row[0] if row else now - timedelta(days=s.lookback_days)
            fresh = readings_store.new_readings(
                conn, watermark - timedelta(seconds=s.overlap_s), shard=shard, shards=s.shards
            )
            if not fresh.empty:
                fresh = fresh[~fresh["reading_id"].isin(self._seen.keys())]
            rep = PassReport(shards_done=1, new_readings=len(fresh))
            if fresh.empty:
                return rep
            new_ids = {int(x) for x in fresh["reading_id"]}
            pids = {int(x) for x in fresh["patient_id"].unique()}
            rep.patients = len(pids)
            written = evaluate_new_readings(conn, pids, new_ids, now, lookback_days=s.lookback_days)
            written.shards_done, written.new_readings, written.patients = 1, rep.new_readings, rep.patients
            high = max(fresh["ingested_at"].max(), watermark)
            conn.execute(
                "INSERT INTO job_watermarks (job, watermark, updated_at) VALUES (%s, %s, %s)"
                " ON CONFLICT (job) DO UPDATE SET"
                " watermark = greatest(job_watermarks.watermark, EXCLUDED.watermark),"
                " updated_at = EXCLUDED.updated_at",
                (self._job_name(shard), high, now),
            )
        # Remember only after the commit; forget what fell out of the overlap window.
        for rid, at in zip(fresh["reading_id"], fresh["ingested_at"], strict=True):
            self._seen[int(rid)] = at
        floor = high - timedelta(seconds=s.overlap_s * 2)
        self._seen = {k: v for k, v in self._seen.items() if v >= floor}
        return written


def evaluate_new_readings(
    conn: psycopg.Connection[Any], pids: set[int], new_ids: set[int], now: datetime, *, lookback_days: int
) -> PassReport:
    """The value rules over these patients' windows, raising what involves ``new_ids``: the
    incremental pass, and the assignment path for readings it attached (they keep their old
    ``ingested_at``, so the watermark would never show them). Runs in the caller's transaction."""
    readings = readings_store.readings_for(conn, pids, now - timedelta(days=lookback_days))
    ev = evaluate_readings(
        readings,
        now=now,
        limits=loader.overrides(conn, pids),
        snoozes=loader.snoozes(conn, pids, now - timedelta(days=lookback_days)),
        starts=readings_store.first_readings(conn, pids),
    )
    cands, sup = ev.candidates, ev.suppressed
    if len(cands):
        cands = cands[_involves(cands["reading_ids"], new_ids)]
    if len(sup):
        sup = sup[_involves(sup["reading_ids"], new_ids)]
    return _write(conn, cands, sup, readings, now)


def silence_pass(conn: psycopg.Connection[Any], now: datetime) -> PassReport:
    """The three silences; one process at a time (advisory lock)."""
    with db_errors(), conn.transaction():
        if not _try_lock(conn, SILENCE_LOCK):
            return PassReport(shards_busy=1)
        ev = evaluate_silences(
            devices_store.assigned_devices(conn, now),
            loader.gateways(conn),
            now=now,
            snoozes=loader.snoozes(conn, None, now),
        )
        rep = _write(conn, ev.candidates, ev.suppressed, None, now)
        rep.shards_done = 1
        return rep


def daily_pass(
    conn: psycopg.Connection[Any], settings: Settings, now: datetime, chunk: int = 2000
) -> PassReport:
    """Trend and adherence-period rules for all patients, ``chunk`` patients per query."""
    total = PassReport()
    with db_errors(), conn.transaction():
        if not _try_lock(conn, DAILY_LOCK):
            return PassReport(shards_busy=1)
        pts = devices_store.patients_enrolled_at(conn)
        since = now - timedelta(days=settings.lookback_days)
        ids = sorted(int(x) for x in pts["patient_id"])
        for i in range(0, len(ids), chunk):
            part = set(ids[i : i + chunk])
            readings = readings_store.readings_for(conn, part, since)
            ev = evaluate_daily(
                readings,
                now=now,
                patients=pts[pts["patient_id"].isin(part)],
                snoozes=loader.snoozes(conn, part, since),
            )
            total.add(_write(conn, ev.candidates, ev.suppressed, readings, now))
            total.patients += len(part)
        total.shards_done = 1
    return total


__all__ = ["IncrementalJob", "PassReport", "daily_pass", "evaluate_new_readings", "silence_pass", "utc_now"]
