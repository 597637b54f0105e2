"""The admin assigns a device from a past date, sees the history and the readings it attached."""

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
