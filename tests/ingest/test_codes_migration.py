"""0098 stores kind, quality, measurement and transmission as enum codes: names in and out as before."""

from __future__ import annotations

import json
import os
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from ingest import timescale as ts
from ingest.migrate import migrate
from ingest.pipeline import classify
from ingest.writer import Accepted, BatchWriter, keys_table
from simulators.stack import Stack
from tests.ingest.helpers import enrol, unique_reading

EXPECT = os.environ.get("RPMFLOW_EXPECT_TIMESCALE") == "1"
GW = "gw-codes"

INSERT = """
INSERT INTO readings (message_id, gateway_id, device_id, patient_id, kind, measured_at, received_at,
    quality, measurement, transmission, systolic_mmhg, glucose_mg_dl, raw)
VALUES (%s, 'gw-old', %s, 1, %s, timestamptz '2026-11-02 08:00+00', now(), %s, %s, %s, %s, %s, '\\x1e')
"""


def _database(stack: Stack) -> str:
    name = f"codes_{secrets.token_hex(3)}"
    base = stack.postgres.url.rsplit("/", 1)[0]
    with psycopg.connect(base + "/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return f"{base}/{name}"


def test_codes_survive_and_read_as_names(stack: Stack) -> None:
    url = _database(stack)
    migrate(url, up_to=97)
    rows = [("1" * 32, "BP-1", "blood_pressure", "valid", "ok", "automatic", 120.5, None),
            ("2" * 32, "GL-1", "glucose", "quarantined", "ok", "manual", None, 99.0),
            ("3" * 32, "BP-1", "blood_pressure", "failed", "out_of_range_high", "automatic", None, None)]
    with psycopg.connect(url, autocommit=True) as db:
        db.execute("INSERT INTO patients (patient_id, mrn, display_name, state) VALUES (1, 'M1', 'P1', 'NY')")
        for r in rows:
            db.execute(INSERT, r)
        if keys_table(db):
            db.execute("INSERT INTO reading_keys (message_id) SELECT message_id FROM readings")
        before: list[Any] = db.execute("SELECT * FROM readings ORDER BY reading_id").fetchall()
        cols_before = [c.name for c in db.execute("SELECT * FROM readings LIMIT 0").description or []]
    assert 98 in migrate(url)
    with psycopg.connect(url, autocommit=True) as db:
        cur = db.execute("SELECT * FROM readings ORDER BY reading_id")
        after = [dict(zip([c.name for c in cur.description or []], r, strict=True)) for r in cur.fetchall()]
        assert [dict(zip(cols_before, r, strict=True)) for r in before] == after
        types: dict[str, str] = dict(db.execute("SELECT column_name, udt_name FROM information_schema.columns"
                                " WHERE table_name = 'readings' AND column_name IN"
                                " ('kind', 'quality', 'measurement', 'transmission')").fetchall())
        assert types == {"kind": "reading_kind", "quality": "reading_quality",
                         "measurement": "reading_measurement", "transmission": "reading_transmission"}
        # A query's literal and a driver's parameter compare as names; ORDER BY sorts as text did.
        assert db.execute("SELECT count(*) FROM readings WHERE kind = %s AND quality <> 'failed'",
                          ("blood_pressure",)).fetchone() == (1,)
        assert [r[0] for r in db.execute("SELECT DISTINCT quality FROM readings ORDER BY quality")] == [
            "failed", "quarantined", "valid"]
        if keys_table(db):  # TimescaleDB: every id is still in reading_keys, where the writer looks
            keys = {r[0] for r in db.execute("SELECT replace(message_id::text, '-', '') FROM reading_keys")}
            assert keys == {r[0] for r in rows}
        else:  # the dedupe index stays: the same id again is refused
            with pytest.raises(psycopg.errors.UniqueViolation):
                db.execute(INSERT, rows[0])
        # A name outside a code family is refused by PostgreSQL itself.
        with pytest.raises(psycopg.errors.InvalidTextRepresentation):
            db.execute(INSERT, ("4" * 32, "BP-1", "pressure", "valid", "ok", "automatic", 1.0, None))
        # Text from a staging table (ingest's writer) is stored through the assignment cast.
        db.execute("CREATE TEMP TABLE s (k text, q text, m text, t text)")
        db.execute("INSERT INTO s VALUES ('weight', 'valid', 'ok', 'manual')")
        db.execute("INSERT INTO readings (message_id, gateway_id, device_id, kind, quality, measurement,"
                   " transmission, measured_at, received_at, raw)"
                   " SELECT (repeat('5', 32))::uuid, 'gw', 'SC-1', k, q, m, t, now(), now(), '\\x00' FROM s")
        assert db.execute("SELECT kind, transmission FROM readings WHERE device_id = 'SC-1'").fetchone() == (
            "weight", "manual")
        daily = db.execute("SELECT kind, readings FROM readings_daily ORDER BY kind").fetchall()
        assert daily == [("blood_pressure", 2), ("glucose", 1)]


def test_patient_kind_filter_uses_the_patient_index(stack: Stack) -> None:
    url = _database(stack)
    migrate(url)
    with psycopg.connect(url, autocommit=True) as db:
        db.execute("INSERT INTO patients (patient_id, mrn, display_name, state) VALUES (1, 'M1', 'P1', 'NY')")
        db.execute(INSERT, ("6" * 32, "GL-1", "glucose", "valid", "ok", "automatic", None, 99.0))
        db.execute("SET enable_seqscan = off")
        plan = "\n".join(r[0] for r in db.execute(
            "EXPLAIN SELECT * FROM readings WHERE patient_id = 1 AND kind = 'glucose'"
            " AND measured_at >= now() - interval '90 days' ORDER BY measured_at DESC"))
        assert "readings_patient_time" in plan, plan


def _accepted(n: int, days_ago: int) -> Accepted:
    at = (datetime.now(UTC) - timedelta(days=days_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")
    item = classify(f"rpm/v1/{GW}/readings", json.dumps(unique_reading(GW, n, measured_at=at)).encode(),
                    now=datetime.now(UTC))
    assert isinstance(item, Accepted), item
    return item


def test_an_installed_layout_upgrades_with_its_hypertable_and_dedupe(stack: Stack) -> None:
    """An install at 0097 as migrate left it (on TimescaleDB: hypertable, compressed chunks, the
    continuous aggregate, reading_keys) keeps every reading, and the writer still stores none twice."""
    url = _database(stack)
    migrate(url, up_to=97)
    items = [_accepted(n, days) for n, days in enumerate([90, 60, 45, 2, 0], start=1)]
    with psycopg.connect(url, autocommit=True) as db:
        layer = EXPECT and ts.usable(db, ts.Settings())
        if layer:
            db.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
            ts.apply(db, ts.Settings())
        device = items[0].reading.device.device_id
        enrol(db, device, GW)
        db.execute("INSERT INTO patients (patient_id, mrn, display_name, state) VALUES (1, 'M1', 'P1', 'NY')")
        db.execute("INSERT INTO device_assignments (device_id, patient_id, valid_from) VALUES (%s, 1, %s)",
                   (device, datetime.now(UTC) - timedelta(days=400)))
    writer = BatchWriter(url)
    try:
        assert writer.write(items).inserted == len(items)
    finally:
        writer.close()
    with psycopg.connect(url, autocommit=True) as db:
        if layer:
            compressed = db.execute("SELECT count(compress_chunk(c)) FROM show_chunks('readings',"
                                    " older_than => interval '30 days') c").fetchone()
            assert compressed is not None and compressed[0] >= 2
            # The aggregate's refresh policy starts at once; a refresh running while 0098 drops
            # the aggregate failed the migration ("tuple concurrently deleted"): migrate pauses the
            # jobs and waits for them first, then schedules them again.
            row = db.execute("SELECT count(*) FROM timescaledb_information.jobs"
                             " WHERE scheduled AND job_id >= 1000").fetchone()
            assert row is not None and row[0] >= 2
            jobs_before = int(row[0])
        before = db.execute("SELECT reading_id, message_id, kind, quality, raw FROM readings"
                            " ORDER BY reading_id").fetchall()
    assert 98 in migrate(url)
    with psycopg.connect(url, autocommit=True) as db:
        after = db.execute("SELECT reading_id, message_id, kind, quality, raw FROM readings"
                           " ORDER BY reading_id").fetchall()
        assert after == before and len(after) == len(items)
        assert db.execute("SELECT sum(readings), min(kind) FROM readings_daily").fetchone() == (
            len(items), "blood_pressure")
        if layer:
            assert ts.is_hypertable(db, "readings")
            assert db.execute("SELECT compression_enabled FROM timescaledb_information.hypertables"
                              " WHERE hypertable_name = 'readings'").fetchone() == (True,)
            assert db.execute("SELECT count(*) FROM timescaledb_information.continuous_aggregates"
                              " WHERE view_name = 'readings_daily'").fetchone() == (1,)
            # nothing left paused: the jobs of the rebuilt table and aggregate are scheduled
            assert db.execute("SELECT count(*) FILTER (WHERE NOT scheduled), count(*)"
                              " FROM timescaledb_information.jobs WHERE job_id >= 1000").fetchone() == (
                0, jobs_before)
    writer = BatchWriter(url)
    try:
        again = writer.write(items)  # a redelivery of everything after the upgrade
    finally:
        writer.close()
    assert (again.inserted, again.duplicates) == (0, len(items))
