"""Page weight of the 200-row queue (issue 17 item 9): 200 patients, one flag each, under 100 KB
before compression. The one-click buttons are not repeated per flag: each flag lists them in
``data-acts`` and app.js adds them (tests/dashboards/test_browser.py clicks them)."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg

from tests.dashboards.seed import World, join_team

Db = psycopg.Connection[tuple[Any, ...]]


def _two_hundred_patients(db: Db, world: World) -> None:
    now = datetime.now(UTC)
    ids: list[int] = []
    for i in range(200):
        pid = db.execute("INSERT INTO patients (mrn, display_name, state, timezone) VALUES (%s, %s, 'NY',"
                         " 'America/New_York') RETURNING patient_id",
                         (f"W-{i:04d}", f"Weight Patient {i:04d}")).fetchone()[0]  # type: ignore[index]
        at = now - timedelta(hours=i)
        rid = db.execute(
            "INSERT INTO readings (message_id, gateway_id, device_id, patient_id, kind, measured_at,"
            " received_at, systolic_mmhg, diastolic_mmhg, pulse_bpm, raw) VALUES (%s, %s, %s, %s,"
            " 'blood_pressure', %s, %s, 182, 121, 72, '\\x00') RETURNING reading_id",
            (secrets.token_hex(16), world.gateway_id, f"w-bp-{i}", pid, at, at)).fetchone()[0]  # type: ignore[index]
        db.execute(
            "INSERT INTO flags (patient_id, subject_key, rule_id, episode_key, severity, reason, reading_ids,"
            " last_reading_at, opened_at) VALUES (%s, %s, 'bp_crisis', %s, 'critical', 'bp_crisis: high',"
            " %s, %s, %s)", (pid, f"patient:{pid}", f"w-{i}", [rid], at, at))
        ids.append(pid)
    join_team(db, users=[world.users["nurse"]], patients=ids)  # the nurse's care team sees them


def test_200_row_queue_is_under_100_kb_and_says_which_buttons_to_add(
    signed_in: Any, world: World, db: Db
) -> None:
    _two_hundred_patients(db, world)
    client: httpx.Client = signed_in("nurse")
    page = client.get("/queue", headers={"Accept-Encoding": "identity"})
    body = page.text[page.text.index('<tbody id="queue-body">'):]
    assert len(re.findall(r'<tr class="[^"]*" data-patient=', body)) == 200  # the page's limit: 200 flags
    assert len(page.content) < 100_000, len(page.content)
    assert body.count('data-acts="a t"') == 200  # a nurse may acknowledge and take an open flag
    assert "<button" not in body  # not repeated per flag
    rows = client.get("/queue/rows").text
    assert rows.count("data-acts=") == 200 and len(rows.encode()) < 100_000
