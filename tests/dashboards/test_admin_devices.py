"""The admin enrols a device on a gateway and assigns it from a past date, sees the history and the
readings it attached; moving a device to another gateway is an explicit, audited re-enrolment."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from tests.dashboards.live import session_csrf
from tests.dashboards.seed import World

Db = psycopg.Connection[Any]


def _unassigned(db: Db, device: str, at: datetime) -> int:
    row = db.execute(
        "INSERT INTO readings (message_id, gateway_id, device_id, kind, measured_at, received_at,"
        " systolic_mmhg, diastolic_mmhg, raw)"
        " VALUES (%s, 'gw-x', %s, 'blood_pressure', %s, %s, 131, 84, '\\x00') RETURNING reading_id",
        (secrets.token_hex(16), device, at, at),
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_admin_assigns_from_a_past_date_and_sees_the_move(signed_in: Any, world: World, db: Db) -> None:
    client = signed_in("admin")
    db.execute("INSERT INTO devices (device_id, kind) VALUES ('bp-handed-over', 'blood_pressure')")
    zone = ZoneInfo(str(db.execute("SELECT timezone FROM patients WHERE patient_id = %s",
                                   (world.patient_id,)).fetchone()[0]))  # type: ignore[index]
    start = (datetime.now(zone) - timedelta(days=3)).replace(second=0, microsecond=0, tzinfo=None)
    old = _unassigned(db, "bp-handed-over", start.replace(tzinfo=zone) - timedelta(hours=1))
    new = _unassigned(db, "bp-handed-over", start.replace(tzinfo=zone) + timedelta(hours=2))

    enrolled = client.post("/admin/devices/enrol", data={
        "csrf_token": session_csrf(client), "device_id": "bp-handed-over", "gateway_id": "gw-x",
        "kind": "blood_pressure", "reason": "handed over with gw-x",
        "valid_from": (datetime.now(UTC) - timedelta(days=10)).strftime("%Y-%m-%dT%H:%M")})
    assert enrolled.status_code == 303, enrolled.text[:400]
    r = client.post("/admin/devices/assign", data={
        "csrf_token": session_csrf(client), "device_id": "bp-handed-over", "patient_id": world.patient_id,
        "kind": "blood_pressure", "valid_from": start.isoformat(timespec="minutes")})
    assert r.status_code == 303, r.text[:400]
    owners = dict(db.execute("SELECT reading_id, patient_id FROM readings WHERE reading_id IN (%s, %s)",
                             (old, new)).fetchall())
    assert owners == {old: None, new: world.patient_id}

    page = client.get("/admin/devices")
    assert page.status_code == 200
    assert "bp-handed-over" in page.text and "attached" in page.text
    future = (datetime.now(UTC) + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    refused = client.post("/admin/devices/end", data={
        "csrf_token": session_csrf(client), "device_id": "bp-handed-over", "valid_to": future})
    assert refused.status_code == 422 and "in the future" in refused.text
    ended = client.post("/admin/devices/end", data={
        "csrf_token": session_csrf(client), "device_id": "bp-handed-over",
        "valid_to": (start + timedelta(hours=1)).isoformat(timespec="minutes")})
    assert ended.status_code == 303, ended.text[:400]
    assert db.execute("SELECT patient_id FROM readings WHERE reading_id = %s", (new,)).fetchone() == (None,)


def test_moving_a_device_to_another_gateway_is_an_explicit_audited_reenrolment(
    signed_in: Any, world: World, db: Db
) -> None:
    client = signed_in("admin")

    def enrol(gateway_id: str, **extra: str) -> Any:
        return client.post("/admin/devices/enrol", data={
            "csrf_token": session_csrf(client), "device_id": "bp-moves", "gateway_id": gateway_id,
            "kind": "blood_pressure", "model": "HEM-7361T", "reason": f"set up on {gateway_id}", **extra})

    assert enrol("gw-first").status_code == 303
    implicit = enrol("gw-second")
    assert implicit.status_code == 422 and "explicit re-enrolment" in implicit.text
    assert enrol("gw-second", move="true").status_code == 303
    rows = db.execute("SELECT gateway_id, valid_to IS NULL, enrolled_by, end_reason FROM device_enrolments"
                      " WHERE device_id = 'bp-moves' ORDER BY valid_from").fetchall()
    admin = world.usernames["admin"]
    assert [(g, open_, by) for g, open_, by, _ in rows] == [
        ("gw-first", False, admin), ("gw-second", True, admin)]
    assert rows[0][3].startswith("re-enrolled on gw-second")
    device = db.execute("SELECT last_gateway_id, model FROM devices WHERE device_id = 'bp-moves'").fetchone()
    assert device == ("gw-second", "HEM-7361T")
    audited = db.execute("SELECT actor, action, detail->>'gateway_id', detail->>'from_gateway_id'"
                         " FROM audit_log WHERE detail->>'device_id' = 'bp-moves' ORDER BY seq").fetchall()
    assert audited == [(admin, "device.enrolled", "gw-first", None),
                       (admin, "device.reenrolled", "gw-second", "gw-first")]
    page = client.get("/admin/devices").text
    history = page[page.index('id="enrolment-history"'):]
    assert "gw-first" in history and "gw-second" in history and "set up on gw-first" in history


def test_the_cli_enrols_and_moves_only_with_move(database_urls: Any, db: Db, capsys: Any) -> None:
    from dashboards.cli import main

    base = ["enrol-device", "--database-url", database_urls.dashboard, "--device-id", "cli-cuff",
            "--kind", "glucose", "--reason", "shell", "--by", "ops"]
    assert main([*base, "--gateway-id", "gw-cli-1", "--from", "2026-01-01T00:00:00+00:00"]) == 0
    assert main([*base, "--gateway-id", "gw-cli-2"]) == 1
    assert "explicit re-enrolment" in capsys.readouterr().err
    assert main([*base, "--gateway-id", "gw-cli-2", "--move"]) == 0
    rows = db.execute("SELECT gateway_id, enrolled_by, valid_to IS NULL FROM device_enrolments"
                      " WHERE device_id = 'cli-cuff' ORDER BY valid_from").fetchall()
    assert rows == [("gw-cli-1", "ops", False), ("gw-cli-2", "ops", True)]


def test_a_refused_reading_is_shown_with_its_reason_on_the_dead_letter_view(
    signed_in: Any, database_url: str, db: Db
) -> None:
    from ingest.pipeline import classify
    from ingest.writer import BatchWriter
    from tests.ingest.helpers import EXAMPLE, dumps, enrol, unique_reading

    enrol(db, EXAMPLE["device"]["id"], "gw-owner")
    forged = unique_reading("gw-intruder", 1)
    item = classify("rpm/v1/gw-intruder/readings", dumps(forged), now=datetime.now(UTC))
    assert item is not None
    writer = BatchWriter(database_url)
    try:
        assert writer.write([item]).rejected[0].code == "wrong_gateway"
    finally:
        writer.close()
    page = signed_in("admin").get("/admin/intake")
    assert page.status_code == 200
    assert "BindingRefused" in page.text and "wrong_gateway: device OMR-7361-000123" in page.text
