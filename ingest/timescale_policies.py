"""Community-edition TimescaleDB objects: compression and its policy, the daily aggregate, retention.

Idempotent: migrate runs it every time, and it only adds what is missing (or, for retention,
removes the policy when the setting is back to 0).
"""

from __future__ import annotations

import logging
from importlib import resources
from typing import TYPE_CHECKING, Any

import psycopg

if TYPE_CHECKING:
    from ingest.timescale import Settings

log = logging.getLogger(__name__)

# Ordered by patient, then newest first, with no segment-by: every patient query filters one patient
# and a time range, and a batch's min/max patient_id lets it skip every batch without that patient.
# Segmenting by patient makes one batch per patient and chunk, which on sparse RPM data (~84
# readings a patient per 28 days) is small enough for its fixed cost to dominate: 121 bytes a
# reading against 69 with full 1000-row batches (bench/storage_bench.py, docs/operations.md §9).
_COMPRESS = (
    "ALTER TABLE readings SET (timescaledb.compress, timescaledb.compress_segmentby = '',"
    " timescaledb.compress_orderby = 'patient_id, measured_at DESC')"
)

# The continuous aggregate is the plain view's SELECT (the last migration that defines it) with
# TimescaleDB's bucket: time_bucket's 1-day buckets are the same UTC days as date_bin's.
DAILY_VIEW_MIGRATION = "0098_readings_codes.sql"
_DATE_BIN = "date_bin(interval '1 day', measured_at, timestamptz '2000-01-01 00:00+00')"


def daily_aggregate_sql() -> str:
    text = resources.files("ingest.migrations").joinpath(DAILY_VIEW_MIGRATION).read_text()
    select = text[text.index("CREATE VIEW readings_daily AS") + len("CREATE VIEW readings_daily AS"):]
    select = select.strip().rstrip(";").replace(_DATE_BIN, "time_bucket(interval '1 day', measured_at)")
    return ("CREATE MATERIALIZED VIEW readings_daily"
            " WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS\n"
            f"{select}\nWITH NO DATA")


def _one(conn: psycopg.Connection[Any], query: str, params: tuple[Any, ...] = ()) -> Any:
    row = conn.execute(query.encode(), params).fetchone()
    return None if row is None else row[0]


def _job(conn: psycopg.Connection[Any], proc: str, hypertable: str) -> int | None:
    found = _one(conn, "SELECT job_id FROM timescaledb_information.jobs WHERE proc_name = %s"
                 " AND hypertable_name = %s", (proc, hypertable))
    return None if found is None else int(found)


def _compression(conn: psycopg.Connection[Any], settings: Settings) -> None:
    enabled = _one(conn, "SELECT compression_enabled FROM timescaledb_information.hypertables"
                   " WHERE hypertable_name = 'readings'")
    if not enabled:
        conn.execute(_COMPRESS)
        log.info("readings: compression ordered by patient_id, measured_at DESC")
    if _job(conn, "policy_compression", "readings") is None:
        conn.execute("SELECT add_compression_policy('readings', %s::int * interval '1 day')",
                     (settings.compress_after_days,))
        log.info("readings: chunks older than %d days are compressed", settings.compress_after_days)


def _daily_aggregate(conn: psycopg.Connection[Any]) -> bool:
    """Replace the plain view with the continuous aggregate; True when it was created now."""
    if _one(conn, "SELECT 1 FROM timescaledb_information.continuous_aggregates"
            " WHERE view_name = 'readings_daily'") is not None:
        return False
    conn.execute("DROP VIEW IF EXISTS readings_daily")
    conn.execute(daily_aggregate_sql().encode())
    conn.execute(
        "SELECT add_continuous_aggregate_policy('readings_daily', start_offset => NULL,"
        " end_offset => interval '1 hour', schedule_interval => interval '30 minutes')"
    )
    log.info("readings_daily is a continuous aggregate (refreshed every 30 minutes, real-time on top)")
    return True


def _retention(conn: psycopg.Connection[Any], settings: Settings) -> None:
    job = _job(conn, "policy_retention", "readings")
    if settings.retention_days == 0:
        if job is not None:
            conn.execute("SELECT remove_retention_policy('readings', if_exists => true)")
            log.warning("readings: retention policy removed (RPMFLOW_TIMESCALE_RETENTION_DAYS=0)")
        return
    if job is not None:
        conn.execute("SELECT remove_retention_policy('readings', if_exists => true)")
    conn.execute("SELECT add_retention_policy('readings', %s::int * interval '1 day')",
                 (settings.retention_days,))
    log.warning("readings: chunks older than %d days will be DROPPED (RPMFLOW_TIMESCALE_RETENTION_DAYS)",
                settings.retention_days)


def apply(conn: psycopg.Connection[Any], settings: Settings) -> None:
    with conn.transaction():
        _compression(conn, settings)
        created = _daily_aggregate(conn)
        _retention(conn, settings)
    if created:
        # Materialise what is already there (outside a transaction block, as TimescaleDB requires).
        conn.execute("CALL refresh_continuous_aggregate('readings_daily', NULL, NULL)")
