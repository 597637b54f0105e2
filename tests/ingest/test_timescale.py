"""The TimescaleDB layer, on whichever PostgreSQL this run uses.

``make test-timescale`` sets ``RPMFLOW_EXPECT_TIMESCALE=1`` (and puts TimescaleDB's binaries
first): then these tests assert that the extension, compression, its policy and the continuous
aggregate are really in use. Without it they assert the plain-PostgreSQL layout, so neither leg
can silently run the other's schema.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from dashboards import queries
from ingest import timescale as ts
from ingest.metrics import Metrics
from ingest.migrate import migrate
from ingest.pipeline import classify
from ingest.writer import Accepted, BatchWriter
from simulators.embedded_postgres import DatabaseUrls, EmbeddedPostgres
from tests.ingest.helpers import enrol, unique_reading
from tests.waiting import wait_for

Conn = psycopg.Connection[Any]
EXPECT = os.environ.get("RPMFLOW_EXPECT_TIMESCALE") == "1"
GW = "gw-ts"


def _one(db: Conn, query: str, *params: Any) -> Any:
    row = db.execute(query.encode(), params).fetchone()
    return None if row is None else row[0]


def _store(database_url: str, db: Conn, days_ago: list[int]) -> int:
    """Readings of one patient's cuff measured ``days_ago``; returns the patient id."""
    pid = int(_one(db, "INSERT INTO patients (mrn, display_name, state) VALUES ('TS-1', 'P', 'NY')"
                       " RETURNING patient_id"))
    msgs = [unique_reading(GW, i + 1, measured_at=(datetime.now(UTC) - timedelta(days=d)).strftime(
        "%Y-%m-%dT%H:%M:%SZ")) for i, d in enumerate(days_ago)]
    dev = msgs[0]["device"]["id"]
    enrol(db, dev, GW)
    db.execute("INSERT INTO device_assignments (device_id, patient_id, valid_from) VALUES (%s, %s, %s)",
               (dev, pid, datetime.now(UTC) - timedelta(days=400)))
    items = []
    for m in msgs:
        item = classify(f"rpm/v1/{GW}/readings", json.dumps(m).encode(), now=datetime.now(UTC))
        assert isinstance(item, Accepted), item
        items.append(item)
    writer = BatchWriter(database_url)
    try:
        assert writer.write(items).inserted == len(items)
    finally:
        writer.close()
    return pid


def test_settings_defaults_and_one_line_errors() -> None:
    assert ts.settings_from_env({}) == ts.Settings("auto", 28, 7, 0)
    got = ts.settings_from_env({"RPMFLOW_TIMESCALE": "require", "RPMFLOW_TIMESCALE_RETENTION_DAYS": "3650"})
    assert (got.mode, got.retention_days) == (ts.Mode.REQUIRE, 3650)
    with pytest.raises(ts.TimescaleSettingsError, match="RPMFLOW_TIMESCALE"):
        ts.settings_from_env({"RPMFLOW_TIMESCALE": "yes"})
    with pytest.raises(ts.TimescaleSettingsError, match=r"RPMFLOW_TIMESCALE_CHUNK_DAYS.*at least 1"):
        ts.settings_from_env({"RPMFLOW_TIMESCALE_CHUNK_DAYS": "0"})
    with pytest.raises(ts.TimescaleSettingsError, match="RPMFLOW_TIMESCALE_COMPRESS_AFTER_DAYS"):
        ts.settings_from_env({"RPMFLOW_TIMESCALE_COMPRESS_AFTER_DAYS": "7d"})


def test_the_layer_of_this_leg_is_in_use(database_url: str, db: Conn) -> None:
    pid = _store(database_url, db, [90, 60, 45, 1, 0])
    if not EXPECT:
        assert _one(db, "SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'") == 0
        assert _one(db, "SELECT count(*) FROM pg_views WHERE viewname = 'readings_daily'") == 1
    else:
        assert _one(db, "SELECT count(*) FROM timescaledb_information.hypertables"
                        " WHERE hypertable_name = 'readings'") == 1
        seg = dict(db.execute("SELECT attname, coalesce(segmentby_column_index, -orderby_column_index)"
                              " FROM timescaledb_information.compression_settings"
                              " WHERE hypertable_name = 'readings'").fetchall())
        assert seg == {"patient_id": -1, "measured_at": -2}  # ordered by both, no segment-by
        job = _one(db, "SELECT job_id FROM timescaledb_information.jobs"
                       " WHERE proc_name = 'policy_compression' AND hypertable_name = 'readings'")
        assert job is not None
        db.execute("CALL run_job(%s)", (job,))  # the policy itself compresses the old chunks
        compressed = _one(db, "SELECT count(*) FROM timescaledb_information.chunks"
                              " WHERE hypertable_name = 'readings' AND is_compressed")
        assert compressed >= 2
        assert _one(db, "SELECT materialized_only FROM timescaledb_information.continuous_aggregates"
                        " WHERE view_name = 'readings_daily'") is False
        assert _one(db, "SELECT count(*) FROM timescaledb_information.jobs"
                        " WHERE proc_name = 'policy_refresh_continuous_aggregate'") == 1
    # The patient page's readers work the same on either layout, compressed chunks included.
    rows = queries.readings(db, pid, datetime.now(UTC) - timedelta(days=120))
    assert len(rows) == 5 and rows[0]["device_status"] == ["irregular_pulse"]
    days = queries.daily_stats(db, pid, datetime.now(UTC) - timedelta(days=90))
    assert sum(d["readings"] for d in days) == 4  # 90 days ago is the boundary day's start or not
    assert all(d["systolic_avg"] == rows[0]["systolic_mmhg"] for d in days)


def test_retention_is_off_by_default_and_a_setting_turns_it_on(database_url: str, db: Conn) -> None:
    def retention_jobs() -> int:
        if not EXPECT:
            return 0
        return int(_one(db, "SELECT count(*) FROM timescaledb_information.jobs"
                            " WHERE proc_name = 'policy_retention'"))

    assert retention_jobs() == 0
    migrate(database_url, ts.Settings(retention_days=3650))
    assert retention_jobs() == (1 if EXPECT else 0)
    if EXPECT:
        assert _one(db, "SELECT config->>'drop_after' FROM timescaledb_information.jobs"
                        " WHERE proc_name = 'policy_retention'") == "3650 days"
    migrate(database_url, ts.Settings(retention_days=0))
    assert retention_jobs() == 0


@pytest.fixture
def unpreloaded() -> Iterator[EmbeddedPostgres]:
    """A cluster like an external server: the binaries may ship TimescaleDB, nothing preloads it."""
    pg = EmbeddedPostgres.create(preload_timescaledb=False)
    pg.start()
    try:
        yield pg
    finally:
        pg.destroy()


def test_installed_but_not_preloaded_falls_back_or_stops_with_one_line(
    unpreloaded: EmbeddedPostgres, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="ingest.timescale"):
        with pytest.raises(ts.TimescaleError) as stopped:
            migrate(unpreloaded.url, ts.Settings(mode=ts.Mode.REQUIRE))
        if EXPECT:
            assert "shared_preload_libraries = 'timescaledb'" in str(stopped.value)
        else:
            assert "not installed" in str(stopped.value)
        migrate(unpreloaded.url, ts.Settings())  # auto: plain PostgreSQL, a working schema
    with psycopg.connect(unpreloaded.url) as conn:
        assert _one(conn, "SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'") == 0
        assert _one(conn, "SELECT count(*) FROM schema_migrations") > 0
        assert _one(conn, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'") == 0
    if EXPECT:
        assert any("not preloaded" in r.message and "shared_preload_libraries" in r.message
                   for r in caplog.records)


def test_apache_edition_gets_the_hypertable_only(caplog: pytest.LogCaptureFixture) -> None:
    pg = EmbeddedPostgres.create(timescale_license="apache")
    pg.start()
    try:
        with caplog.at_level(logging.INFO, logger="ingest.timescale"):
            migrate(pg.url)
        with psycopg.connect(pg.url) as conn:
            views = _one(conn, "SELECT count(*) FROM pg_views WHERE viewname = 'readings_daily'")
            assert views == 1  # the plain view: no continuous aggregate on this edition
            if EXPECT:
                assert _one(conn, "SELECT compression_enabled FROM timescaledb_information.hypertables"
                                  " WHERE hypertable_name = 'readings'") is False
                assert any("apache edition: hypertable only" in r.message for r in caplog.records)
            else:
                assert _one(conn, "SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'") == 0
    finally:
        pg.destroy()


def test_failing_scheduler_jobs_show_in_metrics_and_healthz_detail() -> None:
    pg = EmbeddedPostgres.create()
    pg.start()
    try:
        migrate(pg.url)
        metrics = Metrics()
        metrics.watch_timescale_jobs(pg.url)
        with psycopg.connect(pg.url, autocommit=True) as conn:
            if EXPECT:
                conn.execute("CREATE PROCEDURE rpm_test_fails(job_id int, config jsonb) LANGUAGE plpgsql"
                             " AS $$ BEGIN RAISE EXCEPTION 'boom from the test'; END $$")
                conn.execute("SELECT add_job('rpm_test_fails', interval '1 second')")
                jobs = wait_for(lambda: [j for j in ts.failing_jobs(conn)
                                         if j.proc_name == "rpm_test_fails" and j.total_failures >= 1],
                                60, "the scheduler to record the failure")
                assert "boom from the test" in jobs[0].line() and jobs[0].total_failures >= 1
                failing = len(ts.failing_jobs(conn))  # TimescaleDB's own jobs may fail too (2.28.3)
            else:
                assert ts.failing_jobs(conn) == []
        sample = metrics.registry.get_sample_value
        assert sample("rpmflow_timescale_jobs_check_ok") == 1
        if EXPECT:  # TimescaleDB's own jobs may start failing between the two reads: at least ours
            assert (sample("rpmflow_timescale_jobs_failing") or 0) >= failing >= 1
            assert sample("rpmflow_timescale_job_failures",
                          {"job_id": str(jobs[0].job_id), "proc_name": "rpm_test_fails"})
        else:
            assert sample("rpmflow_timescale_jobs_failing") == 0
    finally:
        pg.destroy()


def test_the_dashboard_may_change_only_a_readings_patient(database_urls: DatabaseUrls, db: Conn) -> None:
    pid = _store(database_urls.superuser, db, [1])
    with psycopg.connect(database_urls.dashboard, autocommit=True) as conn:
        conn.execute("UPDATE readings SET patient_id = NULL WHERE patient_id = %s", (pid,))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("UPDATE readings SET systolic_mmhg = 1")
    assert _one(db, "SELECT count(*) FROM readings WHERE patient_id IS NULL AND systolic_mmhg > 1") == 1
