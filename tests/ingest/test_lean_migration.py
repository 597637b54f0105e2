"""0060 converts readings stored in the old layout: nothing lost, ids and identity kept."""

from __future__ import annotations

import secrets
from typing import Any

import psycopg

from ingest.migrate import migrate
from simulators.stack import Stack

OLD_INSERT = """
INSERT INTO readings (reading_id, message_id, gateway_id, device_id, patient_id, kind, measured_at,
    device_time, received_at, glucose_mg_dl, systolic_mmhg, device_status, meal, raw_hex, payload)
VALUES (%s, %s, 'gw-old', %s, NULL, %s, now() - interval '3 days', '2025-01-01T08:00:00', now(), %s, %s,
        %s, %s, %s, '{"schema": "rpmflow.reading.v1"}')
"""


def test_old_rows_are_converted_and_the_identity_continues(stack: Stack) -> None:
    name = f"old_{secrets.token_hex(3)}"
    base = stack.postgres.url.rsplit("/", 1)[0]
    with psycopg.connect(base + "/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = f"{base}/{name}"
    migrate(url, up_to=40)
    bp_id, glu_id = "0" * 31 + "1", "ab" * 16
    with psycopg.connect(url, autocommit=True) as db:
        db.execute(OLD_INSERT, (7, bp_id, "BP-1", "blood_pressure", None, 150.0, ["irregular_pulse"], None,
                                "1e9600"))
        db.execute(OLD_INSERT, (9, glu_id, "GL-1", "glucose", 101.0, None, [], "fasting", "0b0100+0201"))
        db.execute("INSERT INTO reading_keys (message_id, measured_at) VALUES (%s, now()), (%s, now())",
                   (bp_id, glu_id))
    assert 60 in migrate(url, up_to=89)  # the layout 0060 made (0090 compacts it: test_compact_migration)
    with psycopg.connect(url, autocommit=True) as db:
        rows: list[Any] = db.execute(
            "SELECT reading_id, replace(message_id::text, '-', ''), raw, raw_context, device_status, meal,"
            " systolic_mmhg, glucose_mg_dl FROM readings ORDER BY reading_id").fetchall()
        assert rows == [
            (7, bp_id, bytes.fromhex("1e9600"), None, ["irregular_pulse"], None, 150.0, None),
            (9, glu_id, bytes.fromhex("0b0100"), bytes.fromhex("0201"), None, "fasting", None, 101.0),
        ]
        keys = {r[0] for r in db.execute("SELECT replace(message_id::text, '-', '') FROM reading_keys")}
        assert keys == {bp_id, glu_id}
        new_id = db.execute(
            "INSERT INTO readings (message_id, gateway_id, device_id, kind, measured_at, received_at, raw)"
            " VALUES (%s, 'gw', 'BP-1', 'blood_pressure', now(), now(), '\\x00') RETURNING reading_id",
            ("cd" * 16,)).fetchone()
        assert new_id is not None and new_id[0] == 10
        assert db.execute("SELECT count(*) FROM pg_indexes WHERE indexname = 'readings_message'"
                          ).fetchone() == (0,)
