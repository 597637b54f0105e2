"""The batch writer against a real PostgreSQL: idempotent, patient mapping, refusals, statuses."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from ingest.errors import DatabaseUnavailable, TransientError
from ingest.pipeline import classify
from ingest.writer import (
    Accepted,
    BatchWriter,
    DeadLetter,
    Item,
    attach_unassigned,
    keys_table,
    raw_bytes,
)
from simulators.server_host import free_port
from tests.ingest.helpers import EXAMPLE, HEX_ID, count, dumps, enrol, reading, status, unique_reading

NOW = datetime(2025, 11, 23, 15, 0, tzinfo=UTC)
GW = "gw-0001"
TOPIC = f"rpm/v1/{GW}/readings"

Conn = psycopg.Connection[tuple[Any, ...]]


def item(msg: dict[str, Any], topic: str = TOPIC) -> Item:
    out = classify(topic, dumps(msg), now=NOW)
    assert out is not None
    return out


@pytest.fixture
def writer(database_url: str, db: Conn) -> Any:
    enrol(db, EXAMPLE["device"]["id"], GW)  # every reading here is from the device's own gateway
    w = BatchWriter(database_url)
    yield w
    w.close()


def test_same_message_three_times_is_one_row(writer: BatchWriter, db: Conn) -> None:
    first = writer.write([item(EXAMPLE), item(EXAMPLE), item(EXAMPLE)])
    again = writer.write([item(EXAMPLE)])
    assert (first.inserted, first.duplicates, again.inserted, again.duplicates) == (1, 2, 0, 1)
    assert count(db, "SELECT count(*) FROM readings WHERE message_id = %s", EXAMPLE["message_id"]) == 1
    if keys_table(db):  # TimescaleDB
        assert count(db, "SELECT count(*) FROM reading_keys") == 1
    row = db.execute(
        "SELECT systolic_mmhg, device_status, quality, patient_id, gateway_id, raw, raw_context"
        " FROM readings"
    ).fetchone()
    assert row == (182.0, ["irregular_pulse"], "valid", None, GW, bytes.fromhex(EXAMPLE["raw"]), None)


def test_raw_gatt_bytes_are_kept_as_bytes_with_a_merged_context_apart() -> None:
    assert raw_bytes("1e6400b0f8") == (bytes.fromhex("1e6400b0f8"), None)
    assert raw_bytes("0b0100e8070301+020100") == (bytes.fromhex("0b0100e8070301"), bytes.fromhex("020100"))


def test_no_status_bit_is_stored_as_null_and_the_id_as_a_uuid(writer: BatchWriter, db: Conn) -> None:
    msg = unique_reading(GW, 1)
    msg["status"] = []
    writer.write([item(msg)])
    row = db.execute(
        "SELECT device_status, message_id::text, pg_typeof(message_id)::text FROM readings"
    ).fetchone()
    assert row is not None and row[0] is None and row[2] == "uuid"
    assert row[1].replace("-", "") == msg["message_id"]


def test_devices_keep_their_enrolled_description_and_record_what_the_gateway_reports(
    writer: BatchWriter, db: Conn
) -> None:
    early = unique_reading(GW, 1, received_at="2025-11-20T10:00:00Z")
    late = unique_reading(GW, 2, received_at="2025-11-22T10:00:00Z")
    late["device"] = {**EXAMPLE["device"], "model": "HEM-EVIL", "firmware": "6.6"}
    foreign = unique_reading("gw-0002", 3, received_at="2025-11-23T10:00:00Z")
    writer.write([item(late)])
    writer.write([item(early), item(foreign, "rpm/v1/gw-0002/readings")])
    row = db.execute(
        "SELECT first_seen_at, last_seen_at, last_gateway_id, model, firmware, kind,"
        " reported->>'model', reported->>'firmware', reported->>'gateway_id' FROM devices"
    ).fetchone()
    assert row == (
        datetime(2025, 11, 20, 10, tzinfo=UTC),
        datetime(2025, 11, 22, 10, tzinfo=UTC),  # the refused reading from gw-0002 is not "seen"
        GW,  # last gateway: the enrolment's, never what a message says
        None, None,  # the enrolment stated no model or firmware; the gateway cannot set them
        "blood_pressure",
        "HEM-EVIL", "6.6", GW,  # the newest report of the enrolled gateway, kept apart
    )


def _patient(db: Conn, mrn: str) -> int:
    row = db.execute(
        "INSERT INTO patients (mrn, display_name, state) VALUES (%s, %s, 'NY') RETURNING patient_id",
        (mrn, f"Patient {mrn}"),
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_unassigned_readings_are_kept_then_attached(writer: BatchWriter, db: Conn) -> None:
    before = unique_reading(GW, 1, measured_at="2025-11-01T08:00:00Z")
    inside = unique_reading(GW, 2, measured_at="2025-11-10T08:00:00Z")
    writer.write([item(before), item(inside)])
    assert count(db, "SELECT count(*) FROM readings WHERE patient_id IS NULL") == 2

    pid = _patient(db, "MRN-1")
    db.execute(
        "INSERT INTO device_assignments (device_id, patient_id, valid_from) VALUES (%s, %s, %s)",
        (EXAMPLE["device"]["id"], pid, datetime(2025, 11, 5, tzinfo=UTC)),
    )
    attached = attach_unassigned(db, EXAMPLE["device"]["id"])
    assert [p for _, p in attached] == [pid]
    assert attach_unassigned(db, EXAMPLE["device"]["id"]) == [], "a reading is attached once"
    rows: dict[Any, Any] = dict(db.execute(f"SELECT {HEX_ID}, patient_id FROM readings").fetchall())
    assert rows == {before["message_id"]: None, inside["message_id"]: pid}

    later = unique_reading(GW, 3, measured_at="2025-11-12T08:00:00Z")
    writer.write([item(later)])  # assigned at measured_at: mapped on insert
    assert count(db, "SELECT patient_id FROM readings WHERE message_id = %s", later["message_id"]) == pid


def test_assignment_history_maps_each_reading_to_the_patient_of_its_time(
    writer: BatchWriter, db: Conn
) -> None:
    dev = EXAMPLE["device"]["id"]
    writer.write([item(unique_reading(GW, 0))])  # creates the device row
    a, b = _patient(db, "A"), _patient(db, "B")
    db.execute(
        "INSERT INTO device_assignments (device_id, patient_id, valid_from, valid_to) VALUES"
        " (%s, %s, '2025-01-01Z', '2025-06-01Z'), (%s, %s, '2025-06-01Z', NULL)",
        (dev, a, dev, b),
    )
    old, new = unique_reading(GW, 1, measured_at="2025-05-31T23:59:59Z"), unique_reading(GW, 2)
    writer.write([item(old), item(new)])
    got: dict[Any, Any] = dict(db.execute(f"SELECT {HEX_ID}, patient_id FROM readings").fetchall())
    assert got[old["message_id"]] == a and got[new["message_id"]] == b


def test_quality_is_stored(writer: BatchWriter, db: Conn) -> None:
    bad = unique_reading(GW, 1)
    bad["values"] = {**EXAMPLE["values"], "systolic_mmhg": 80.0, "diastolic_mmhg": 90.0}
    failed = unique_reading(GW, 2, measurement="failed")
    failed["values"] = {}
    writer.write([item(bad), item(failed)])
    rows = db.execute(f"SELECT {HEX_ID}, quality, quality_reason FROM readings")
    got = {r[0]: (r[1], r[2]) for r in rows}
    assert got[bad["message_id"]] == ("quarantined", "systolic 80 <= diastolic 90")
    assert got[failed["message_id"]] == ("failed", "device reported measurement failed")


def test_a_row_the_database_refuses_becomes_a_dead_letter(writer: BatchWriter, db: Conn) -> None:
    poison = unique_reading(GW, 1)
    poison["device"] = {**EXAMPLE["device"], "model": "bad\u0000model"}  # valid JSON, no PG text can hold it
    good = [unique_reading(GW, n) for n in range(2, 6)]
    result = writer.write([item(good[0]), item(poison), *[item(g) for g in good[1:]]])
    assert result.inserted == 4 and len(result.refused) == 1
    assert count(db, "SELECT count(*) FROM readings") == 4
    row = db.execute("SELECT error_class, reason, topic, gateway_id, payload FROM dead_letters").fetchone()
    assert row is not None
    assert row[0] == "RowRefused" and "database refused" in row[1] and (row[2], row[3]) == (TOPIC, GW)
    assert b"bad\\u0000model" in bytes(row[4])


def test_dead_letters_are_kept_once_with_their_reason(writer: BatchWriter, db: Conn) -> None:
    letter = item(reading(schema="nope"))
    assert isinstance(letter, DeadLetter)
    writer.write([letter])
    writer.write([letter])  # a redelivery after a crash between commit and ack
    rows = db.execute("SELECT error_class, reason, payload FROM dead_letters").fetchall()
    assert len(rows) == 1
    assert rows[0][0] == "ContractViolation" and "schema must be" in rows[0][1]
    assert bytes(rows[0][2]) == letter.payload


def test_gateway_status_keeps_the_newest(writer: BatchWriter, db: Conn) -> None:
    topic = f"rpm/v1/{GW}/status"
    newer = item(status(GW, "2025-11-23T12:00:00Z", online=False), topic)
    older = item(status(GW, "2025-11-23T11:00:00Z", online=True), topic)
    writer.write([newer])
    writer.write([older])
    assert db.execute("SELECT online, updated_at FROM gateway_status").fetchone() == (
        False,
        datetime(2025, 11, 23, 12, tzinfo=UTC),
    )


def test_unreachable_database_is_transient() -> None:
    w = BatchWriter(f"postgresql://x:y@127.0.0.1:{free_port()}/nothing")
    accepted = item(EXAMPLE)
    assert isinstance(accepted, Accepted)
    with pytest.raises(DatabaseUnavailable) as info:
        w.write([accepted])
    assert isinstance(info.value, TransientError)
