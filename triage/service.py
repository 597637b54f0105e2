"""The long-running triage service: APScheduler 3.x jobs over a small connection pool.

Jobs: the incremental pass every ``interval_s`` (``max_instances=1``, ``coalesce=True``, a
misfire grace), the silence pass every ``silence_interval_s``, the calendar pass daily (and once
at start-up). Errors are logged by class and the next run retries; nothing here decides clinical
logic. At start-up the database is awaited for a bounded time (``ingest/dberrors.py``); while
running, an outage is retried for ever but refused credentials only for ``auth_timeout_s``: then
the service stops with one line and exit code 3 (``gateway/runtime/fatal.py``).
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime
from typing import Any

import psycopg
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from psycopg_pool import ConnectionPool, PoolTimeout

from gateway.runtime.fatal import Fatal, one_line
from gateway.runtime.retry import ErrorKind, GaveUp
from ingest.dberrors import describe_target, kind_of, wait_for_database
from triage.errors import DatabaseUnavailable, Transient, TriageError
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
        self.fatal: Fatal | None = None
        self._auth_since: float | None = None
        self._lock = threading.Lock()

    def _guard(self, name: str, fn: Any) -> None:
        try:
            with self.pool.connection() as conn:
                report = fn(conn)
            with self._lock:
                self.passes += 1
                self.last_report = report
                self._auth_since = None
            if report.opened or report.attached or report.auto_cleared:
                log.info("%s: %s", name, report)
        except PoolTimeout as exc:  # the pool could not connect: ask the server why, once
            self._database_refused(name, self._probe_kind(), exc)
        except DatabaseUnavailable as exc:
            self._database_refused(name, exc.kind, exc)
        except TriageError as exc:
            level = logging.WARNING if isinstance(exc, Transient) else logging.ERROR
            log.log(level, "%s failed (%s): %s", name, type(exc).__name__, exc)
        except Exception:  # a scheduler job must never die silently; the class is logged
            log.exception("%s failed unexpectedly", name)

    def _probe_kind(self) -> ErrorKind:
        try:
            psycopg.connect(self.settings.database_url, connect_timeout=5).close()
        except psycopg.Error as exc:
            return kind_of(exc) or ErrorKind.TRANSIENT
        return ErrorKind.TRANSIENT

    def _database_refused(self, name: str, kind: ErrorKind, exc: BaseException) -> None:
        """An outage is retried by the next run; refused credentials only for ``auth_timeout_s``."""
        log.warning("%s failed (database %s): %s", name, kind.value, one_line(str(exc)))
        if kind is ErrorKind.TRANSIENT:
            return
        now = time.monotonic()
        with self._lock:
            since = self._auth_since = self._auth_since or now
        if kind is ErrorKind.PERMANENT or now - since >= self.settings.auth_timeout_s:
            self.fatal = GaveUp(f"cannot use {describe_target(self.settings.database_url)}", kind, exc,
                                attempts=1, elapsed_s=now - since)
            log.error("%s: stopping", self.fatal)
            self.scheduler.shutdown(wait=False)

    def run_incremental(self) -> None:
        self._guard("incremental", self.incremental.run)

    def run_silences(self) -> None:
        self._guard("silences", lambda conn: silence_pass(conn, self.clock()))

    def run_daily(self) -> None:
        self._guard("daily", lambda conn: daily_pass(conn, self.settings, self.clock()))

    def run_anchor(self) -> None:
        """Append the audit head to the anchor file (audit_anchor.py); a failure is logged, retried."""
        from triage.clinical.audit_anchor import anchor
        from triage.clinical.audit_key import AuditKeyError, current_key

        try:
            with self.pool.connection() as conn:
                anchor(conn, self.settings.audit_anchor_file, current_key())
        except (OSError, psycopg.Error, PoolTimeout, AuditKeyError) as exc:
            log.warning("audit anchor not written (%s): %s", type(exc).__name__, one_line(str(exc)))

    def _add_jobs(self) -> None:
        s = self.settings
        if s.audit_anchor_file:
            self.scheduler.add_job(self.run_anchor, "interval", seconds=s.audit_anchor_interval_s,
                                   id="audit-anchor", next_run_time=datetime.now(UTC), max_instances=1,
                                   coalesce=True, misfire_grace_time=s.misfire_grace_s)
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
        """Wait (bounded) for the database, open the pool and start the jobs (returns at once
        unless ``blocking``)."""
        s = self.settings
        wait_for_database(s.database_url, application_name="triage", auth_timeout_s=s.auth_timeout_s,
                          startup_timeout_s=s.startup_timeout_s)
        self.pool.open(wait=True, timeout=30)
        self._add_jobs()
        self.scheduler.start()

    def stop(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)
        self.pool.close()


def run(settings: Settings) -> None:
    """Run until interrupted (the ``rpmflow-triage run`` command); a :class:`Fatal` (database
    refused past the bound) propagates to the console script's one-line exit."""
    service = TriageService(settings, blocking=True)
    try:
        service.start()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        service.stop()
    if service.fatal is not None:
        raise service.fatal
