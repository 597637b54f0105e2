"""Device <-> gateway binding in the writer (ingest/binding.py) against a real PostgreSQL.

A gateway speaks only for the devices enrolled on it: anything else is a dead letter with its
reason, never a patient reading, and its message id is never claimed, so the real gateway's reading
still lands; acks confirm only what was stored from the same gateway.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from ingest.commit import Outcome, commit
from ingest.pipeline import classify
from ingest.writer import BatchWriter, Item, attach_unassigned, keys_table
from tests.ingest.helpers import EXAMPLE, HEX_ID, count, dumps, enrol, unique_reading

NOW = datetime(2025, 11, 23, 15, 0, tzinfo=UTC)
A, B = "gw-a", "gw-b"
DEV = EXAMPLE["device"]["id"]

Conn = psycopg.Connection[tuple[Any, ...]]


def item(msg: dict[str, Any]) -> Item:
    out = classify(f"rpm/v1/{msg['gateway_id']}/readings", dumps(msg), now=NOW)
    assert out is not None
    return out


def as_gateway(msg: dict[str, Any], gateway_id: str) -> dict[str, Any]:
    """The same reading (same contents, same message id) sent by another gateway."""
    return {**msg, "gateway_id": gateway_id}


@pytest.fixture
def writer(database_url: str, db: Conn) -> Any:
    enrol(db, DEV, A)
    w = BatchWriter(database_url)
    yield w
    w.close()


def write(writer: BatchWriter, msgs: list[dict[str, Any]]) -> Outcome:
    return commit(writer, [item(m) for m in msgs], auth_timeout_s=5)


def letters(db: Conn) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT error_class, reason, gateway_id FROM dead_letters ORDER BY dead_letter_id").fetchall()


def test_a_reading_from_another_gateway_is_a_dead_letter_not_a_reading(writer: BatchWriter, db: Conn) -> None:
    crisis = unique_reading(A, 1)
    out = write(writer, [as_gateway(crisis, B)])
    assert count(db, "SELECT count(*) FROM readings") == 0
    if keys_table(db):  # TimescaleDB: ids are claimed in reading_keys (else by the readings row)
        assert count(db, "SELECT count(*) FROM reading_keys") == 0, "the id is not claimed"
    [(cls, reason, gw)] = letters(db)
    assert (cls, gw) == ("BindingRefused", B)
    assert reason.startswith("wrong_gateway: ") and f"enrolled on gateway {A}" in reason
    assert out.acks == {} and out.rejected == {B: [(crisis["message_id"], "wrong_gateway")]}
    assert out.dead_letters == {"BindingRefused": 1} and (out.inserted, out.duplicates) == (0, 0)


def test_a_device_enrolled_nowhere_is_refused(writer: BatchWriter, db: Conn) -> None:
    stranger = unique_reading(A, 2)
    stranger["device"] = {**EXAMPLE["device"], "id": "NEVER-ENROLLED"}
    stranger = unique_reading(A, 2, device=stranger["device"])
    out = write(writer, [stranger])
    assert count(db, "SELECT count(*) FROM readings") == 0
    assert letters(db)[0][1].startswith("not_enrolled: device NEVER-ENROLLED")
    assert out.rejected == {A: [(stranger["message_id"], "not_enrolled")]}
    assert count(db, "SELECT count(*) FROM devices WHERE device_id = 'NEVER-ENROLLED'") == 0


@pytest.mark.parametrize("same_batch", [True, False])
def test_id_squatting_cannot_suppress_the_real_reading(
    writer: BatchWriter, db: Conn, same_batch: bool
) -> None:
    real = unique_reading(A, 3)
    squat = as_gateway(real, B)
    outs = [write(writer, [squat, real])] if same_batch else [write(writer, [squat]), write(writer, [real])]
    stored = db.execute(f"SELECT {HEX_ID}, gateway_id FROM readings").fetchall()
    assert stored == [(real["message_id"], A)]
    if keys_table(db):  # TimescaleDB: the key names the gateway (else the stored reading does)
        assert db.execute("SELECT gateway_id FROM reading_keys").fetchall() == [(A,)]
    acks = {gw: ids for o in outs for gw, ids in o.acks.items()}
    rejected = {gw: r for o in outs for gw, r in o.rejected.items()}
    assert acks == {A: [real["message_id"]]}, "ok only to the gateway whose reading was stored"
    assert rejected == {B: [(real["message_id"], "wrong_gateway")]}
    again = write(writer, [real])  # A's genuine re-send: a duplicate of its own, acked ok
    assert (again.duplicates, again.acks, again.rejected) == (1, {A: [real["message_id"]]}, {})


def test_a_duplicate_of_another_gateways_stored_reading_is_not_acked_ok(
    writer: BatchWriter, db: Conn
) -> None:
    real = unique_reading(A, 4)
    write(writer, [real])
    # the device moves to B, back-dated before the reading was measured (an admin's correction)
    db.execute("UPDATE device_enrolments SET gateway_id = %s", (B,))
    out = write(writer, [as_gateway(real, B)])
    assert out.acks == {} and out.rejected == {B: [(real["message_id"], "duplicate_of_other_gateway")]}
    assert db.execute("SELECT gateway_id FROM readings").fetchall() == [(A,)]
    assert letters(db)[0][1].startswith("duplicate_of_other_gateway: ")


def test_only_readings_from_the_enrolled_gateway_are_attached_later(writer: BatchWriter, db: Conn) -> None:
    own = unique_reading(A, 5, measured_at="2025-11-10T08:00:00Z")
    write(writer, [own])
    # a reading stored before the binding existed, from a gateway the device never belonged to
    db.execute(
        "INSERT INTO readings (message_id, gateway_id, device_id, kind, measured_at, received_at, quality,"
        " measurement, transmission, systolic_mmhg, ingested_at, raw)"
        " SELECT gen_random_uuid(), %s, device_id, kind, measured_at, received_at, quality, measurement,"
        " transmission, 250, ingested_at, raw FROM readings",
        (B,),
    )
    pid = db.execute("INSERT INTO patients (mrn, display_name, state) VALUES ('M', 'P', 'NY')"
                     " RETURNING patient_id").fetchone()
    assert pid is not None
    db.execute("INSERT INTO device_assignments (device_id, patient_id, valid_from) VALUES (%s, %s, %s)",
               (DEV, pid[0], datetime(2025, 11, 1, tzinfo=UTC)))
    attached = attach_unassigned(db, DEV)
    assert len(attached) == 1
    assert db.execute("SELECT gateway_id FROM readings WHERE patient_id IS NOT NULL").fetchall() == [(A,)]
    assert count(db, "SELECT count(*) FROM readings WHERE patient_id IS NULL AND gateway_id = %s", B) == 1
