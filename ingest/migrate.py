"""Versioned schema migrations for the one store every server component shares.

Each ``migrations/NNNN_name.sql`` runs once, in its own transaction, in number order. After the
SQL files, the optional TimescaleDB layer is applied when the extension is installed, and skipped
with a log line otherwise, so the same queries run on both.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

import psycopg

log = logging.getLogger(__name__)

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_LOCK_KEY = 0x72706D66  # "rpmf": one migrator at a time across processes


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def available() -> list[Migration]:
    found = []
    for entry in resources.files("ingest.migrations").iterdir():
        m = _NAME.match(entry.name)
        if m:
            found.append(Migration(int(m.group(1)), m.group(2), entry.read_text(encoding="utf-8")))
    found.sort(key=lambda x: x.version)
    versions = [x.version for x in found]
    if len(versions) != len(set(versions)):
        raise RuntimeError(f"duplicate migration numbers in ingest/migrations: {versions}")
    return found


def migrate(conninfo: str) -> list[int]:
    """Apply pending migrations; returns the versions applied now."""
    applied_now: list[int] = []
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
            for mig in available():
                if mig.version in done:
                    continue
                with conn.transaction():
                    conn.execute(mig.sql.encode())
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                        (mig.version, mig.name),
                    )
                log.info("applied migration %04d_%s", mig.version, mig.name)
                applied_now.append(mig.version)
            _apply_timescale(conn)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied_now


def timescale_available(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'").fetchone()
    return row is not None


def _apply_timescale(conn: psycopg.Connection[Any]) -> None:
    """Hypertable (and, where the licence allows, compression and retention) when available."""
    if not timescale_available(conn):
        log.info("timescaledb not available: readings stay a plain indexed table")
        return
    try:
        with conn.transaction():
            conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
            conn.execute(
                "SELECT create_hypertable('readings', 'measured_at', migrate_data => true,"
                " if_not_exists => true, chunk_time_interval => interval '7 days')"
            )
    except psycopg.Error as exc:
        log.warning("timescaledb present but hypertable not created: %s", exc)
        return
    row = conn.execute("SHOW timescaledb.license").fetchone()
    if row is None or row[0] != "timescale":
        log.info("timescaledb %s edition: no compression/retention/continuous aggregates", row and row[0])
        return
    try:
        with conn.transaction():
            conn.execute(
                "ALTER TABLE readings SET (timescaledb.compress,"
                " timescaledb.compress_segmentby = 'patient_id')"
            )
            conn.execute(
                "SELECT add_compression_policy('readings', interval '30 days', if_not_exists => true)"
            )
    except psycopg.Error as exc:
        log.warning("timescaledb compression policy not set: %s", exc)
