"""The optional TimescaleDB layer over the plain schema, applied by migrate after the SQL files.

Plain PostgreSQL is the reference: every query works there. When the extension is installed and
preloaded, ``readings`` becomes a hypertable (its dedupe moves from a unique index to
``reading_keys``, see :func:`_dedupe_beside`); on the community edition it is also compressed
(ordered by patient, then newest first, as the patient queries read it) with a policy, and
``readings_daily`` (a plain view on plain PostgreSQL) becomes a continuous aggregate with a
refresh policy. The Apache edition gets the hypertable only. Retention is off unless a setting
turns it on: patient records are kept for years (docs/operations.md).

Settings (read by :func:`settings_from_env`; every service that migrates reads the same ones):

- ``RPMFLOW_TIMESCALE`` (``auto``): ``auto`` uses it when preloaded, else logs one line and stays
  on plain PostgreSQL; ``require`` stops instead; ``off`` never uses it.
- ``RPMFLOW_TIMESCALE_CHUNK_DAYS`` (28): chunk interval of a new hypertable (measured on sparse RPM
  data, docs/operations.md).
- ``RPMFLOW_TIMESCALE_COMPRESS_AFTER_DAYS`` (7): the compression policy's age.
- ``RPMFLOW_TIMESCALE_RETENTION_DAYS`` (0): 0 keeps readings forever; N drops chunks older than N days.
"""

from __future__ import annotations

import enum
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from gateway.runtime import settings as rs
from gateway.runtime.fatal import Fatal
from gateway.runtime.settings import SettingError, setting

log = logging.getLogger(__name__)

PRELOAD_HINT = (
    "add shared_preload_libraries = 'timescaledb' to postgresql.conf (keep any libraries already"
    " listed) and restart PostgreSQL"
)


class Mode(enum.StrEnum):
    AUTO = "auto"
    REQUIRE = "require"
    OFF = "off"


class TimescaleError(RuntimeError):
    """TimescaleDB was required (``RPMFLOW_TIMESCALE=require``) and cannot be used; says why."""


TimescaleSettingsError = SettingError  # a malformed RPMFLOW_TIMESCALE* variable: one line, exit 2


@dataclass(frozen=True)
class Settings:
    """Read by every migrate (``rpmflow-ingest migrate``/``run``, the demo, the tests)."""

    mode: str = setting("auto", env="RPMFLOW_TIMESCALE", choices=tuple(m.value for m in Mode), flag=False,
                        help="auto: use TimescaleDB when preloaded, else one log line and plain PostgreSQL;"
                             " require: stop instead; off: never")
    chunk_days: int = setting(28, env="RPMFLOW_TIMESCALE_CHUNK_DAYS", check=rs.at_least(1), flag=False,
                              help="chunk interval (days) of a new hypertable")
    compress_after_days: int = setting(7, env="RPMFLOW_TIMESCALE_COMPRESS_AFTER_DAYS", check=rs.at_least(1),
                                       flag=False, help="compression policy: compress chunks older than this")
    retention_days: int = setting(0, env="RPMFLOW_TIMESCALE_RETENTION_DAYS", check=rs.at_least(0), flag=False,
                                  help="0: keep readings forever; N: drop chunks older than N days")


def settings_from_env(env: Mapping[str, str] | None = None) -> Settings:
    return rs.load(Settings, os.environ if env is None else env)


def _one(conn: psycopg.Connection[Any], query: str, params: tuple[Any, ...] | None = None) -> Any:
    row = conn.execute(query.encode(), params).fetchone()
    return None if row is None else row[0]


def installed(conn: psycopg.Connection[Any]) -> bool:
    return _one(conn, "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'") is not None


def preloaded(conn: psycopg.Connection[Any]) -> bool:
    """Whether the server preloads TimescaleDB, readable by any role (shared_preload_libraries
    needs pg_read_all_settings): a preloaded library defines typed ``timescaledb.*`` settings,
    where a line in postgresql.conf without the library only makes an untyped placeholder."""
    return _one(conn, "SELECT 1 FROM pg_settings WHERE name LIKE 'timescaledb.%'"
                      " AND vartype IN ('bool', 'integer', 'enum', 'real') LIMIT 1") is not None


def usable(conn: psycopg.Connection[Any], settings: Settings) -> bool:
    """Whether to apply the layer. Never runs CREATE EXTENSION unpreloaded (that is FATAL)."""
    if settings.mode == Mode.OFF:
        log.info("RPMFLOW_TIMESCALE=off: readings stay a plain indexed table")
        return False
    if not installed(conn):
        if settings.mode == Mode.REQUIRE:
            raise TimescaleError("RPMFLOW_TIMESCALE=require but the timescaledb extension is not installed"
                                 " on this server")
        log.info("timescaledb not installed: readings stay a plain indexed table")
        return False
    if not preloaded(conn):
        if settings.mode == Mode.REQUIRE:
            raise TimescaleError(f"timescaledb is installed but not preloaded: {PRELOAD_HINT}")
        log.warning("timescaledb is installed but not preloaded, continuing on plain PostgreSQL: %s"
                    " (RPMFLOW_TIMESCALE=off silences this, =require stops instead)", PRELOAD_HINT)
        return False
    return True


CREATE_HINT = (
    "a superuser runs CREATE EXTENSION timescaledb in this database once (TimescaleDB is not a"
    " trusted extension; docs/operations.md)"
)


def _extension(conn: psycopg.Connection[Any], settings: Settings) -> bool:
    """The extension exists in this database, created now if this role may; else one line."""
    if _one(conn, "SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'") is not None:
        return True
    try:
        with conn.transaction():
            conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        return True
    except psycopg.errors.InsufficientPrivilege:
        if settings.mode == Mode.REQUIRE:
            raise TimescaleError(
                f"timescaledb is preloaded but not created in this database: {CREATE_HINT}") from None
        log.warning("timescaledb is preloaded but not created in this database, continuing on plain"
                    " PostgreSQL: %s", CREATE_HINT)
        return False


def edition(conn: psycopg.Connection[Any]) -> str:
    """``timescale`` (community: compression, continuous aggregates, policies) or ``apache``."""
    return str(_one(conn, "SELECT current_setting('timescaledb.license', true)") or "apache")


def is_hypertable(conn: psycopg.Connection[Any], table: str) -> bool:
    return _one(conn, "SELECT 1 FROM timescaledb_information.hypertables WHERE hypertable_name = %s",
                (table,)) is not None


def _dedupe_beside(conn: psycopg.Connection[Any]) -> None:
    """Move the dedupe from the unique index readings_dedupe (0090) to reading_keys.

    A hypertable's unique index must include measured_at, and (message_id, measured_at) would let a
    record re-downloaded with another clock offset in twice; so the ids live in their own table.
    """
    conn.execute("CREATE TABLE IF NOT EXISTS reading_keys (message_id uuid PRIMARY KEY, gateway_id text)")
    conn.execute("INSERT INTO reading_keys (message_id, gateway_id)"
                 " SELECT message_id, gateway_id FROM readings ON CONFLICT DO NOTHING")
    conn.execute("DROP INDEX IF EXISTS readings_dedupe")


def apply(conn: psycopg.Connection[Any], settings: Settings) -> None:
    """Hypertable; on the community edition compression, its policy, the daily aggregate, retention."""
    if not usable(conn, settings):
        return
    if not _extension(conn, settings):
        return
    with conn.transaction():
        if not is_hypertable(conn, "readings"):
            _dedupe_beside(conn)
            conn.execute(
                "SELECT create_hypertable('readings', 'measured_at', migrate_data => true,"
                " create_default_indexes => false, chunk_time_interval => %s::int * interval '1 day')",
                (settings.chunk_days,),
            )
            log.info("readings is now a hypertable (%d-day chunks)", settings.chunk_days)
    ed = edition(conn)
    if ed != "timescale":
        log.warning("timescaledb %s edition: hypertable only (no compression, continuous aggregates,"
                    " policies or retention)", ed)
        return
    from ingest import timescale_policies  # the community-edition half

    timescale_policies.apply(conn, settings)


JOBS_IDLE_TIMEOUT_S = 120.0


class JobsBusy(Fatal):
    """A TimescaleDB job kept running past the bound while migrate waited to change the schema."""

    exit_code = 1


def pause_jobs(conn: psycopg.Connection[Any], timeout_s: float = JOBS_IDLE_TIMEOUT_S) -> list[int]:
    """Unschedule TimescaleDB's background jobs and wait until none runs; returns the ids paused.

    A migration that rebuilds ``readings`` drops the continuous aggregate; a refresh running at
    that moment fails the migration ("tuple concurrently deleted"). :func:`resume_jobs` puts
    back exactly the jobs paused here, so an operator's own pause survives."""
    if _one(conn, "SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'") is None:
        return []
    paused = [row[0] for row in conn.execute(
        "SELECT job_id FROM timescaledb_information.jobs WHERE scheduled AND job_id >= 1000").fetchall()]
    for job in paused:
        conn.execute("SELECT alter_job(%s, scheduled => false)", (job,))
    deadline = time.monotonic() + timeout_s
    while _one(conn, "SELECT count(*) FROM timescaledb_information.job_stats WHERE job_status = 'Running'"):
        if time.monotonic() > deadline:
            resume_jobs(conn, paused)
            raise JobsBusy(f"a TimescaleDB job is still running after {timeout_s:.0f} s; migrate did not"
                           " change the schema: run it again when timescaledb_information.job_stats"
                           " shows no job running")
        time.sleep(0.5)  # polling the server's own job table: nothing to wait on instead
    if paused:
        log.info("paused %d TimescaleDB jobs while migrating", len(paused))
    return paused


def resume_jobs(conn: psycopg.Connection[Any], job_ids: list[int]) -> None:
    """Schedule again the jobs :func:`pause_jobs` paused (those a migration dropped are gone)."""
    for job in job_ids:
        conn.execute("SELECT alter_job(j.job_id, scheduled => true) FROM timescaledb_information.jobs j"
                     " WHERE j.job_id = %s", (job,))


@dataclass(frozen=True)
class JobHealth:
    """One TimescaleDB background job whose last run did not succeed."""

    job_id: int
    proc_name: str
    hypertable: str | None
    last_run_status: str
    total_failures: int
    last_run_started_at: datetime | None
    last_error: str | None

    def line(self) -> str:
        what = f"job {self.job_id} {self.proc_name}" + (f" on {self.hypertable}" if self.hypertable else "")
        err = f": {self.last_error}" if self.last_error else ""
        return f"{what} {self.last_run_status} ({self.total_failures} failures){err}"


_FAILING_JOBS = """
SELECT j.job_id, j.proc_name, j.hypertable_name, s.last_run_status, s.total_failures,
       s.last_run_started_at,
       (SELECT e.err_message FROM timescaledb_information.job_errors e
        WHERE e.job_id = j.job_id ORDER BY e.start_time DESC NULLS LAST LIMIT 1)
FROM timescaledb_information.jobs j
JOIN timescaledb_information.job_stats s ON s.job_id = j.job_id
WHERE s.last_run_status = 'Failed'  -- a job still on its first run has no status yet: not failing
ORDER BY j.job_id
"""


def failing_jobs(conn: psycopg.Connection[Any]) -> list[JobHealth]:
    """Jobs whose last run failed (empty without TimescaleDB). Read-only; errors propagate."""
    if _one(conn, "SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'") is None:
        return []
    return [JobHealth(int(r[0]), str(r[1]), r[2], str(r[3]), int(r[4] or 0), r[5], r[6])
            for r in conn.execute(_FAILING_JOBS.encode()).fetchall()]
