"""0090 compacts readings: values, ids and the identity kept; the dedupe moves into readings."""

from __future__ import annotations

import secrets
from typing import Any

import psycopg
import pytest

from ingest.migrate import migrate
from ingest.writer import keys_table
from simulators.stack import Stack

INSERT = """
INSERT INTO readings (reading_id, message_id, gateway_id, device_id, patient_id, kind, measured_at,
    received_at, systolic_mmhg, diastolic_mmhg, pulse_bpm, glucose_mg_dl, weight_kg, spo2_pct,
    spo2_min_pct, clock_offset_s, user_id, raw)
VALUES (%s, %s, 'gw-old', %s, 1, %s, timestamptz '2026-11-02 08:00+00', now(), %s, %s, %s, %s, %s,
        %s, %s, 12.5, 3, '\\x1e')
"""


def test_values_ids_and_identity_survive_and_the_index_dedupes(stack: Stack) -> None:
    name = f"compact_{secrets.token_hex(3)}"
    base = stack.postgres.url.rsplit("/", 1)[0]
    with psycopg.connect(base + "/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = f"{base}/{name}"
    migrate(url, up_to=89)
    bp, glu, kg, ox = ("1" * 32, "2" * 32, "3" * 32, "4" * 32)
    with psycopg.connect(url, autocommit=True) as db:
        db.execute("INSERT INTO patients (patient_id, mrn, display_name, state) VALUES (1, 'M1', 'P1', 'NY')")
        rows = [(5, bp, "BP-1", "blood_pressure", 120.5, 80.1, 98.6, None, None, None, None),
                (6, glu, "GL-1", "glucose", None, None, None, 99.0884, None, None, None),
                (8, kg, "SC-1", "weight", None, None, None, None, 81.828, None, None),
                (9, ox, "OX-1", "spo2", None, None, 61.0, None, None, 95.5, 88.0)]
        for r in rows:
            db.execute(INSERT, r)
        db.execute("INSERT INTO reading_keys SELECT message_id FROM readings")
        db.execute("SELECT setval('readings_reading_id_seq', 11)")  # id 10, 11 were issued, then deleted
    assert 90 in migrate(url)
    with psycopg.connect(url, autocommit=True) as db:
        got: list[Any] = db.execute(
            "SELECT reading_id, replace(message_id::text, '-', ''), systolic_mmhg, diastolic_mmhg, pulse_bpm,"
            " glucose_mg_dl, weight_kg, spo2_pct, spo2_min_pct, clock_offset_s, user_id, raw"
            " FROM readings ORDER BY reading_id").fetchall()
        # real keeps what the devices resolve (an SFLOAT has at most 4 significant digits) and
        # reads back as those digits; a converted value keeps 7.
        assert got == [(5, bp, 120.5, 80.1, 98.6, None, None, None, None, 12.5, 3, b"\x1e"),
                       (6, glu, None, None, None, 99.0884, None, None, None, 12.5, 3, b"\x1e"),
                       (8, kg, None, None, None, None, 81.828, None, None, 12.5, 3, b"\x1e"),
                       (9, ox, None, None, 61.0, None, None, 95.5, 88.0, 12.5, 3, b"\x1e")]
        types: dict[str, str] = dict(db.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'readings'"
        ).fetchall())
        assert types["systolic_mmhg"] == types["weight_kg"] == "real" and types["user_id"] == "smallint"
        new = "5" * 32
        insert = ("INSERT INTO readings (message_id, gateway_id, device_id, kind, measured_at, received_at,"
                  " raw) VALUES (%s, 'gw', 'BP-1', 'blood_pressure', %s, now(), '\\x00')")
        assert db.execute(insert + " RETURNING reading_id", (new, "2026-11-03T08:00Z")).fetchone() == (12,)
        if keys_table(db):  # TimescaleDB: the ids moved beside the hypertable, where the writer looks
            keys = {r[0] for r in db.execute("SELECT replace(message_id::text, '-', '') FROM reading_keys")}
            assert keys == {bp, glu, kg, ox}
        else:
            # The same id at another measured_at (a record re-downloaded with another clock offset) is
            # the same reading: the unique index refuses it.
            with pytest.raises(psycopg.errors.UniqueViolation):
                db.execute(insert, (new, "2026-11-03T08:00:02Z"))
        daily: list[Any] = db.execute(
            "SELECT kind, systolic_avg, pulse_min, pulse_max, weight_avg, weight_min, spo2_avg, spo2_min,"
            " spo2_max FROM readings_daily ORDER BY kind").fetchall()
        assert daily == [("blood_pressure", 120.5, 98.6, 98.6, None, None, None, None, None),
                         ("glucose", None, None, None, None, None, None, None, None),
                         ("spo2", None, 61.0, 61.0, None, None, 95.5, 88.0, 95.5),
                         ("weight", None, None, None, 81.828, 81.828, None, None, None)]
