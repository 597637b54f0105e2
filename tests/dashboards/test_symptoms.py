"""The AHA crisis panel on a bp_crisis flag: symptom check form and API, 911 banner, re-measure status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.types.json import Jsonb

from dashboards.sessions import create_token
from tests.dashboards.live import session_csrf, sign_in
from tests.dashboards.seed import World, add_flag, add_reading

Db = psycopg.Connection[tuple[Any, ...]]
BANNER = 'id="call-911"'


def _written(db: Db) -> tuple[Any, ...]:
    row = db.execute(
        "SELECT (SELECT count(*) FROM flag_symptom_checks), (SELECT count(*) FROM flag_events"
        " WHERE event = 'annotate'), (SELECT count(*) FROM audit_log WHERE action = 'flag.symptom_check')"
    ).fetchone()
    assert row is not None
    return tuple(row)


def test_nurse_records_symptoms_and_the_page_says_call_911(signed_in: Any, world: World, db: Db) -> None:
    client: httpx.Client = signed_in("nurse")
    page = client.get(f"/flags/{world.flag_id}")
    assert page.status_code == 200
    assert BANNER not in page.text and 'id="symptoms-not-asked"' in page.text
    assert 'data-status="overdue"' in page.text  # the crisis reading is 3 h old and nothing followed it
    r = client.post(f"/flags/{world.flag_id}/symptoms", data={
        "symptoms": ["chest_pain", "difficulty_speaking"], "note": "slurred words on the phone",
        "csrf_token": session_csrf(client)})
    assert r.status_code == 303
    assert r.headers["location"] == f"/flags/{world.flag_id}?done=symptoms#symptom-check"
    html = client.get(f"/flags/{world.flag_id}").text
    assert BANNER in html and "Patient should call 911 now" in html
    assert "chest pain, difficulty speaking" in html and "slurred words on the phone" in html
    assert 'class="badge sev-critical">critical<' in html  # severity stays critical
    evidence = db.execute("SELECT evidence->'symptom_check' FROM flags WHERE flag_id = %s",
                          (world.flag_id,)).fetchone()
    assert evidence is not None and evidence[0]["outcome"] == "hypertensive_emergency"
    assert evidence[0]["asked_by"] == world.usernames["nurse"]
    assert _written(db) == (1, 1, 1)
    actor = db.execute("SELECT actor, detail->>'role' FROM audit_log WHERE action = 'flag.symptom_check'"
                       ).fetchone()
    assert actor == (world.usernames["nurse"], "nurse")


def test_refused_without_role_or_csrf_or_valid_answer(base_url: str, world: World, db: Db) -> None:
    path = f"/flags/{world.flag_id}/symptoms"
    for role in ("billing", "admin"):
        with httpx.Client(base_url=base_url, timeout=20) as c:
            assert sign_in(c, world.usernames[role]).status_code == 303
            csrf = session_csrf(c)
            assert c.post(path, data={"symptoms": "chest_pain", "csrf_token": csrf}).status_code == 403
            assert c.post(f"/api{path}", json={"symptoms": ["chest_pain"]},
                          headers={"X-CSRF-Token": csrf}).status_code == 403
    _, token = create_token(db, world.users["billing"], "t")
    assert httpx.post(f"{base_url}/api{path}", json={"symptoms": ["none"]},
                      headers={"Authorization": f"Bearer {token}"}, timeout=20).status_code == 403
    with httpx.Client(base_url=base_url, timeout=20) as nurse:
        assert sign_in(nurse, world.usernames["nurse"]).status_code == 303
        assert nurse.post(path, data={"symptoms": "chest_pain"}).status_code == 403  # no CSRF token
        assert nurse.post(path, data={"symptoms": "chest_pain", "csrf_token": "forged"}).status_code == 403
        csrf = session_csrf(nurse)
        for bad in ({}, {"symptoms": ["none", "confusion"]}, {"symptoms": "headache"}):
            r = nurse.post(path, data={**bad, "csrf_token": csrf})
            assert r.status_code == 422 and "symptom check" in r.text
        other = add_flag(db, world, severity="high", rule_id="bp_hypotension")
        r = nurse.post(f"/flags/{other}/symptoms", data={"symptoms": "none", "csrf_token": csrf})
        assert r.status_code == 422 and "bp_crisis" in r.text
        assert 'id="symptom-check"' not in nurse.get(f"/flags/{other}").text
    assert _written(db) == (0, 0, 0)


@pytest.mark.parametrize("confirmation", ["confirmed", "cleared"])
def test_api_records_and_flag_json_shows_the_remeasure(
    base_url: str, world: World, db: Db, confirmation: str
) -> None:
    # The re-measure arrived and the rule concluded (as bp_crisis writes it into the evidence).
    first = world.reading_ids[-1]
    values = (188.0, 126.0) if confirmation == "confirmed" else (150.0, 92.0)
    second = add_reading(db, world, datetime.now(UTC) - timedelta(hours=3) + timedelta(minutes=3),
                         systolic=values[0], diastolic=values[1])
    items = [{"reading_id": first, "systolic_mmhg": 186.0, "diastolic_mmhg": 124.0},
             {"reading_id": second, "systolic_mmhg": values[0], "diastolic_mmhg": values[1]}]
    db.execute("UPDATE flags SET evidence = %s, reading_ids = %s WHERE flag_id = %s",
               (Jsonb({"confirmation": confirmation, "items": items}), [first, second], world.flag_id))
    _, token = create_token(db, world.users["clinician"], "t")
    with httpx.Client(base_url=base_url, timeout=20, headers={"Authorization": f"Bearer {token}"}) as api:
        r = api.post(f"/api/flags/{world.flag_id}/symptoms",
                     json={"symptoms": ["none"], "note": "feels fine",
                           "asked_at": (datetime.now(UTC) - timedelta(minutes=2)).isoformat()})
        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["outcome"], body["call_911"], body["symptoms"]) == (
            "severe_asymptomatic_hypertension", False, ["none"])
        assert "contact the clinician promptly" in body["instruction"]
        naive = api.post(f"/api/flags/{world.flag_id}/symptoms",
                         json={"symptoms": ["none"], "asked_at": "2026-03-10T10:00:00"})
        assert naive.status_code == 422
        flag = api.get(f"/api/flags/{world.flag_id}").json()
        crisis = flag["crisis"]
        assert crisis["remeasure"]["status"] == confirmation and crisis["remeasure"]["arrived"] is True
        assert f"{values[0]:g}/{values[1]:g} mmHg" in crisis["remeasure"]["instruction"]
        assert crisis["latest"]["outcome"] == "severe_asymptomatic_hypertension"
        assert [c["note"] for c in crisis["checks"]] == ["feels fine"]
    with httpx.Client(base_url=base_url, timeout=20) as c:
        assert sign_in(c, world.usernames["clinician"]).status_code == 303
        html = c.get(f"/flags/{world.flag_id}").text
    assert BANNER not in html and 'id="severe-asymptomatic"' in html
    assert f'data-status="{confirmation}"' in html
    assert _written(db) == (1, 1, 1)
