"""Assignment history in both directions, run as the dashboard's role (the admin's path)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from simulators.embedded_postgres import DatabaseUrls
from triage.clinical import assignments, audit, people

Conn = psycopg.Connection[Any]
T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def admin(database_urls: DatabaseUrls) -> Iterator[Conn]:
    """A connection as rpmflow_dashboard: the grants must suffice for the whole admin path."""
    with psycopg.connect(database_urls.dashboard, autocommit=True) as conn:
        yield conn


def _stored(db: Conn, device: str, at: datetime, patient_id: int | None = None) -> int:
    """A reading as ingest stores it (patient_id NULL when no assignment covered it), from the
    gateway the device is enrolled on (ingest accepts no other)."""
    db.execute("INSERT INTO devices (device_id, kind) VALUES (%s, 'blood_pressure') ON CONFLICT DO NOTHING",
               (device,))
    db.execute("INSERT INTO device_enrolments (device_id, gateway_id, valid_from, enrolled_by, reason)"
               " VALUES (%s, 'gw-a', '2015-01-01Z', 'test', 'test set-up')"
               " ON CONFLICT (device_id) WHERE valid_to IS NULL DO NOTHING", (device,))
    row = db.execute(
        "INSERT INTO readings (message_id, gateway_id, device_id, patient_id, kind, measured_at, received_at,"
        " systolic_mmhg, diastolic_mmhg, raw)"
        " VALUES (%s, 'gw-a', %s, %s, 'blood_pressure', %s, %s, 120, 80, '\\x00') RETURNING reading_id",
        (secrets.token_hex(16), device, patient_id, at, at),
    ).fetchone()
    assert row is not None
    return int(row[0])


def _owner(db: Conn, ids: list[int]) -> list[int | None]:
    return [r[0] for r in db.execute(
        "SELECT patient_id FROM readings WHERE reading_id = ANY(%s) ORDER BY reading_id", (ids,))]


def test_assigning_from_a_past_date_attaches_unassigned_readings_once(db: Conn, admin: Conn) -> None:
    pid = people.create_patient(db, mrn="P1", display_name="P1", state="NY")
    db.execute("INSERT INTO devices (device_id, kind) VALUES ('bp-late', 'blood_pressure')")
    before = _stored(db, "bp-late", T0 - timedelta(days=1))
    inside = [_stored(db, "bp-late", T0 + timedelta(days=d)) for d in (0, 3, 6)]

    moved = assignments.assign(admin, "bp-late", pid, at=T0, assigned_by="ada")
    assert moved.attached == {pid: inside} and moved.detached == {}
    assert _owner(db, [before, *inside]) == [None, pid, pid, pid]
    rows = db.execute("SELECT actor, action, patient_id, detail FROM audit_log"
                      " WHERE action = 'device.readings_attached'").fetchall()
    assert len(rows) == 1
    actor, _, patient_id, detail = rows[0]
    assert (actor, patient_id, detail["readings"], detail["reading_ids"]) == ("ada", pid, 3, inside)
    assert audit.verify_chain(db).ok
    # A later sweep finds nothing more to attach: once.
    assert assignments._attach(admin, "bp-late") == {}


def test_ending_an_assignment_stops_attribution_at_that_instant(db: Conn, admin: Conn) -> None:
    pid = people.create_patient(db, mrn="P2", display_name="P2", state="NY")
    people.assign_device(admin, "bp-end", pid, at=T0, assigned_by="ada")
    kept = _stored(db, "bp-end", T0 + timedelta(hours=1), pid)
    after = [_stored(db, "bp-end", T0 + timedelta(days=2, minutes=m), pid) for m in (0, 30)]

    moved = assignments.end(admin, "bp-end", at=T0 + timedelta(days=2), ended_by="ada")
    assert moved.detached == {pid: after}
    assert _owner(db, [kept, *after]) == [pid, None, None]
    assert assignments.device_history(db, "bp-end") == [(pid, T0, T0 + timedelta(days=2))]
    action = db.execute("SELECT detail->>'readings' FROM audit_log WHERE action = 'device.readings_detached'")
    assert action.fetchall() == [("2",)]


def test_reassigning_from_a_past_date_moves_the_readings_to_the_new_patient(db: Conn, admin: Conn) -> None:
    a = people.create_patient(db, mrn="PA", display_name="A", state="NY")
    b = people.create_patient(db, mrn="PB", display_name="B", state="NY")
    people.assign_device(admin, "bp-move", a, at=T0, assigned_by="ada")
    a_reading = _stored(db, "bp-move", T0 + timedelta(days=1), a)
    b_reading = _stored(db, "bp-move", T0 + timedelta(days=5), a)  # handed to B on day 4, recorded late

    moved = assignments.assign(admin, "bp-move", b, at=T0 + timedelta(days=4), assigned_by="ada")
    assert moved.detached == {a: [b_reading]} and moved.attached == {b: [b_reading]}
    assert _owner(db, [a_reading, b_reading]) == [a, b]
    history = {(h["patient_id"], h["readings"]) for h in assignments.history(admin)}
    assert history == {(a, 1), (b, 1)}
    assert {m["action"] for m in audit.device_moves(admin)} == {"device.readings_attached",
                                                               "device.readings_detached"}


def test_an_overlapping_assignment_is_refused(db: Conn, admin: Conn) -> None:
    a = people.create_patient(db, mrn="PO", display_name="O", state="NY")
    people.assign_device(admin, "bp-o", a, at=T0, assigned_by="ada")
    people.unassign_device(admin, "bp-o", at=T0 + timedelta(days=10))
    with pytest.raises(people.InvalidPerson, match="would overlap"):
        people.assign_device(admin, "bp-o", a, at=T0 + timedelta(days=5), assigned_by="ada")
    assert len(assignments.device_history(db, "bp-o")) == 1


def test_a_crisis_attached_by_a_past_dated_assignment_is_flagged_at_once(db: Conn, admin: Conn) -> None:
    # The triage watermark has long passed these rows' ingested_at: the assignment path evaluates them.
    pid = people.create_patient(db, mrn="PC", display_name="C", state="NY")
    measured = datetime.now(UTC) - timedelta(hours=3)
    db.execute("INSERT INTO devices (device_id, kind) VALUES ('bp-mem', 'blood_pressure')")
    db.execute("INSERT INTO device_enrolments (device_id, gateway_id, valid_from, enrolled_by, reason)"
               " VALUES ('bp-mem', 'gw-a', '2015-01-01Z', 'test', 'test set-up')")
    row = db.execute(
        "INSERT INTO readings (message_id, gateway_id, device_id, kind, measured_at, received_at,"
        " ingested_at,"
        " systolic_mmhg, diastolic_mmhg, pulse_bpm, raw)"
        " VALUES (md5('m-crisis')::uuid, 'gw-a', 'bp-mem', 'blood_pressure', %s, %s, %s, 192, 124, 80,"
        " '\\x00')"
        " RETURNING reading_id", (measured, measured, measured)).fetchone()
    assert row is not None
    assignments.assign(admin, "bp-mem", pid, at=measured - timedelta(days=1), assigned_by="ada")
    flags = db.execute("SELECT rule_id, severity, reading_ids FROM flags WHERE patient_id = %s",
                       (pid,)).fetchall()
    assert ("bp_crisis", "critical", [row[0]]) in flags, flags
