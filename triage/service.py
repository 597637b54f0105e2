"""The long-running triage service: APScheduler 3.x jobs over a small connection pool.

Jobs: the incremental pass every ``interval_s`` (``max_instances=1``, ``coalesce=True``, a
misfire grace), the silence pass every ``silence_interval_s``, the calendar pass daily (and once
at start-up). Errors are logged by class and the next run retries; nothing here decides clinical
logic.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from psycopg_pool import ConnectionPool

from triage.errors import Transient, TriageError
from triage.jobs import Clock, IncrementalJob, PassReport, daily_pass, silence_pass, utc_now
from triage.settings import Settings

log = logging.getLogger(__name__)


class TriageService:
    """Owns the pool, the scheduler and the per-process incremental state."""

    def __init__(self, settings: Settings, *, blocking: bool = False, clock: Clock = utc_now) -> None:
        self.settings = settings
        self.clock = clock
        self.pool: ConnectionPool[Any] = ConnectionPool(
            settings.database_url,
            min_size=1,
            max_size=settings.pool_size,
            open=False,
            kwargs={"autocommit": True},
            name="triage",
        )
        self.incremental = IncrementalJob(settings, clock)
        self.scheduler: BaseScheduler = (BlockingScheduler if blocking else BackgroundScheduler)(timezone=UTC)
        self.passes = 0
        self.last_report = PassReport()
        self._lock = threading.Lock()

    def _guard(self, name: str, fn: Any) -> None:
        try:
            with self.pool.connection() as conn:
                report = fn(conn)
            with self._lock:
                self.passes += 1
                self.last_report = report
            if report.opened or report.attached or report.auto_cleared:
                log.info("%s: %s", name, report)
        except TriageError as exc:
            level = logging.WARNING if isinstance(exc, Transient) else logging.ERROR
            log.log(level, "%s failed (%s): %s", name, type(exc).__name__, exc)
        except Exception:  # a scheduler job must never die silently; the class is logged
            log.exception("%s failed unexpectedly", name)

    def run_incremental(self) -> None:
        self._guard("incremental", self.incremental.run)

    def run_silences(self) -> None:
        self._guard("silences", lambda conn: silence_pass(conn, self.clock()))

    def run_daily(self) -> None:
        self._guard("daily", lambda conn: daily_pass(conn, self.settings, self.clock()))

    def _add_jobs(self) -> None:
        s = self.settings
        common: dict[str, Any] = {
            "max_instances": 1,
            "coalesce": True,
            "misfire_grace_time": s.misfire_grace_s,
        }
        now = datetime.now(UTC)
        self.scheduler.add_job(
            self.run_incremental,
            "interval",
            seconds=s.interval_s,
            id="incremental",
            next_run_time=now,
            **common,
        )
        self.scheduler.add_job(
            self.run_silences,
            "interval",
            seconds=s.silence_interval_s,
            id="silences",
            next_run_time=now,
            **common,
        )
        self.scheduler.add_job(
            self.run_daily, "cron", hour=s.daily_hour_utc, minute=0, id="daily", next_run_time=now, **common
        )

    def start(self) -> None:
        """Open the pool and start the jobs (returns at once unless ``blocking``)."""
        self.pool.open(wait=True, timeout=30)
        self._add_jobs()
        self.scheduler.start()

    def stop(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)
        self.pool.close()


def run(settings: Settings) -> None:
    """Run until interrupted (the ``rpmflow-triage run`` command)."""
    service = TriageService(settings, blocking=True)
    try:
        service.start()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        service.stop()
