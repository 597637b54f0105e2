"""The crisis workflow on the flag page (issue 17 item 2): later readings, outcomes moving the flag, flash."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg

from dashboards.sessions import create_token
from tests.dashboards.live import session_csrf, sign_in
from tests.dashboards.seed import World, add_flag, add_reading

Db = psycopg.Connection[tuple[Any, ...]]


@contextmanager
def _client(base_url: str, world: World, role: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=20) as c:
        assert sign_in(c, world.usernames[role]).status_code == 303
        yield c


def _flag(db: Db, flag_id: int) -> tuple[Any, ...]:
    row = db.execute("SELECT state, disposition, evidence->'crisis_outcomes' FROM flags WHERE flag_id = %s",
                     (flag_id,)).fetchone()
    assert row is not None
    return tuple(row)


def test_later_normal_readings_end_the_wait(base_url: str, world: World, db: Db) -> None:
    start = datetime.now(UTC) - timedelta(hours=2, minutes=30)
    for i in range(12):
        add_reading(db, world, start + timedelta(minutes=10 * i), systolic=128.0, diastolic=82.0)
    with _client(base_url, world, "nurse") as nurse:
        html = nurse.get(f"/flags/{world.flag_id}").text
    assert 'data-status="late_normal"' in html
    assert "12 later readings, the newest 128/82 mmHg: below the crisis line." in html
    assert "Waiting for the re-measurement" not in html and "No re-measurement yet" not in html
    assert 'data-step="ask_symptoms"' in html and "Ask about symptoms now" in html


def test_emergency_then_911_escalates_then_loop_closes(base_url: str, world: World, db: Db) -> None:
    path = f"/flags/{world.flag_id}"
    with _client(base_url, world, "nurse") as nurse:
        csrf = session_csrf(nurse)
        r = nurse.post(f"{path}/symptoms", data={"symptoms": "chest_pain", "csrf_token": csrf})
        assert r.headers["location"] == f"{path}?done=symptoms#symptom-check"
        html = nurse.get(r.headers["location"]).text
        assert 'id="flash"' in html
        assert "Symptom check recorded. Next: The patient should call 911 now" in html
        assert 'data-step="call_911"' in html
        assert 'value="called_911"' in html and 'value="loop_closed"' not in html
        refused = nurse.post(f"{path}/crisis-outcome", data={"outcome": "loop_closed", "csrf_token": csrf})
        assert refused.status_code == 422 and "must call 911 first" in refused.text
        assert _flag(db, world.flag_id) == ("open", None, None)
        r = nurse.post(f"{path}/crisis-outcome", data={"outcome": "called_911", "note": "EMS on the way",
                                                       "csrf_token": csrf})
        assert r.status_code == 303 and r.headers["location"] == f"{path}?done=called_911#symptom-check"
        html = nurse.get(r.headers["location"]).text
    assert "Recorded: 911 called. Next: Clinician: follow up on the emergency visit" in html
    assert 'data-step="called_911"' in html and "EMS on the way" in html
    state, disposition, outcomes = _flag(db, world.flag_id)
    assert (state, disposition) == ("escalated", None)
    assert [(o["outcome"], o["by"], o["flag_event"]) for o in outcomes] == [
        ("called_911", world.usernames["nurse"], "escalate")]
    with _client(base_url, world, "clinician") as clin:
        r = clin.post(f"{path}/crisis-outcome",
                      data={"outcome": "loop_closed", "csrf_token": session_csrf(clin)})
        assert r.status_code == 303
        html = clin.get(r.headers["location"]).text
    assert "Recorded: loop closed with the patient. Next: Nothing more: the loop is closed." in html
    assert 'id="record-outcome"' not in html and 'id="record-symptoms"' not in html
    assert _flag(db, world.flag_id)[:2] == ("closed", "acted")
    audit = db.execute("SELECT actor, detail->>'outcome', detail->>'to' FROM audit_log"
                       " WHERE action = 'flag.crisis_outcome' ORDER BY seq").fetchall()
    assert [tuple(a) for a in audit] == [(world.usernames["nurse"], "called_911", "escalated"),
                                         (world.usernames["clinician"], "loop_closed", "closed")]


def test_asymptomatic_normal_remeasure_closes_the_loop_by_api(base_url: str, world: World, db: Db) -> None:
    add_reading(db, world, datetime.now(UTC) - timedelta(hours=1), systolic=142.0, diastolic=88.0)
    _, token = create_token(db, world.users["nurse"], "t")
    with httpx.Client(base_url=base_url, timeout=20, headers={"Authorization": f"Bearer {token}"}) as api:
        r = api.post(f"/api/flags/{world.flag_id}/symptoms", json={"symptoms": ["none"]})
        assert r.status_code == 200
        flag = api.get(f"/api/flags/{world.flag_id}").json()
        assert flag["crisis"]["workflow"]["step"] == "close_loop"
        assert flag["crisis"]["remeasure"]["status"] == "late_normal"
        r = api.post(f"/api/flags/{world.flag_id}/crisis-outcome", json={"outcome": "loop_closed"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["event"], body["state"], body["step"]) == ("close", "closed", "loop_closed")
        again = api.post(f"/api/flags/{world.flag_id}/crisis-outcome", json={"outcome": "not_reached"})
        assert again.status_code == 422 and "ended" in again.text
        assert api.post(f"/api/flags/{world.flag_id}/crisis-outcome",
                        json={"outcome": "teleported"}).status_code == 422


def test_refusals_and_a_finished_flag_stops_asking(base_url: str, world: World, db: Db) -> None:
    path = f"/flags/{world.flag_id}/crisis-outcome"
    with _client(base_url, world, "billing") as billing:
        assert billing.post(path, data={"outcome": "called_911",
                                        "csrf_token": session_csrf(billing)}).status_code == 403
    other = add_flag(db, world, severity="high", rule_id="bp_hypotension")
    with _client(base_url, world, "nurse") as nurse:
        assert nurse.post(path, data={"outcome": "called_911"}).status_code == 403  # no CSRF token
        r = nurse.post(f"/flags/{other}/crisis-outcome", data={"outcome": "called_911",
                                                               "csrf_token": session_csrf(nurse)})
        assert r.status_code == 422 and "not a BP crisis" in r.text
        # Promotion needs a review and a billable month (the pure tests cover "promoted"); any finished
        # state ends the workflow the same way.
        db.execute("UPDATE flags SET state = 'dismissed', closed_at = now() WHERE flag_id = %s",
                   (world.flag_id,))
        html = nurse.get(f"/flags/{world.flag_id}").text
    assert 'data-step="ended"' in html and "Nothing more: the flag is dismissed." in html
    assert "Waiting for the re-measurement" not in html and 'id="record-outcome"' not in html
    written = db.execute("SELECT count(*) FROM audit_log WHERE action = 'flag.crisis_outcome'").fetchone()
    assert written == (0,)


def test_queue_action_says_what_happened(base_url: str, world: World) -> None:
    with _client(base_url, world, "nurse") as nurse:
        r = nurse.post(f"/flags/{world.flag_id}/events", data={
            "event": "acknowledge", "next": "/queue?severity=critical", "csrf_token": session_csrf(nurse)})
        assert r.status_code == 303 and r.headers["location"] == "/queue?severity=critical&done=acknowledge"
        html = nurse.get(r.headers["location"]).text
        assert "Flag acknowledged. Next: contact the patient or escalate to the clinician." in html
        assert 'id="flash"' not in nurse.get("/queue?done=%3Cscript%3E").text
