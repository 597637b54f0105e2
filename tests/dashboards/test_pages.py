"""Pages and API: audit of views, escaping, nurse vs clinician, review/promote, billing, queue order."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg

from dashboards.sessions import create_token
from tests.dashboards.live import session_csrf
from tests.dashboards.seed import World, add_flag

Db = psycopg.Connection[tuple[Any, ...]]


def _token(db: Db, world: World, role: str) -> dict[str, str]:
    _, token = create_token(db, world.users[role], "test")
    return {"Authorization": f"Bearer {token}"}


def test_patient_page_view_is_audited(signed_in: Any, world: World, db: Db) -> None:
    client: httpx.Client = signed_in("nurse")
    r = client.get(f"/patients/{world.patient_id}", params={"days": 30})
    assert r.status_code == 200
    assert world.patient_name in r.text
    assert 'class="threshold"' in r.text and 'class="flagged"' in r.text  # thresholds and flagged readings
    assert "quarantined" in r.text and "failed" in r.text
    assert "Daily summary" in r.text  # the 30-day view reads readings_daily
    assert "Daily summary" not in client.get(f"/patients/{world.patient_id}", params={"days": 7}).text
    rows = db.execute("SELECT actor, action, patient_id, detail->>'role' FROM audit_log"
                      " WHERE action = 'view:patient'").fetchall()
    assert rows == [(world.usernames["nurse"], "view:patient", world.patient_id, "nurse")] * 2
    api = client.get(f"/api/patients/{world.patient_id}/readings", params={"days": 7})
    assert api.status_code == 200 and api.json()["readings"]
    assert db.execute("SELECT count(*) FROM audit_log WHERE action = 'view:readings' AND patient_id = %s",
                      (world.patient_id,)).fetchone() == (1,)


def test_note_with_script_is_escaped_everywhere(signed_in: Any, world: World) -> None:
    client: httpx.Client = signed_in("nurse")
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    r = client.post(f"/flags/{world.flag_id}/events",
                    data={"event": "annotate", "note": evil, "csrf_token": session_csrf(client)})
    assert r.status_code == 303
    for path in (f"/flags/{world.flag_id}", f"/patients/{world.patient_id}"):
        html = client.get(path).text
        assert "<script>alert" not in html and "<img src=x" not in html
        assert "&lt;script&gt;alert(" in html
    assert "Content-Security-Policy" in client.get("/queue").headers


def test_nurse_gets_403_from_review_and_promote(signed_in: Any, world: World, db: Db) -> None:
    client: httpx.Client = signed_in("nurse")
    csrf = session_csrf(client)
    assert client.post(f"/flags/{world.flag_id}/promote", data={"csrf_token": csrf}).status_code == 403
    assert client.get(f"/flags/{world.flag_id}/review").status_code == 403
    form = {"csrf_token": csrf, "determination": "x", "icd10_codes": "I10", "action": "x", "minutes": "5",
            "date_of_service": "2026-01-05"}
    assert client.post(f"/flags/{world.flag_id}/review", data=form).status_code == 403
    with httpx.Client(base_url=str(client.base_url), headers=_token(db, world, "nurse")) as api:
        assert api.post(f"/api/flags/{world.flag_id}/promote").status_code == 403
        body = {"determination": "x", "icd10_codes": ["I10"], "action": "x", "minutes": 5,
                "date_of_service": "2026-01-05"}
        assert api.post(f"/api/flags/{world.flag_id}/review", json=body).status_code == 403
    assert db.execute("SELECT count(*) FROM reviews").fetchone() == (0,)


def test_promotion_refused_shows_every_reason(signed_in: Any, world: World, db: Db) -> None:
    client: httpx.Client = signed_in("clinician")
    r = client.post(f"/flags/{world.flag_id}/promote", data={"csrf_token": session_csrf(client)})
    assert r.status_code == 409
    assert "has not been reviewed" in r.text and 'class="reasons"' in r.text
    refused = db.execute("SELECT count(*) FROM audit_log WHERE action = 'flag.promotion_refused'").fetchone()
    assert refused == (1,)  # the refusal is audited even though the request failed


def test_clinician_reviews_and_promotes_then_billing_sees_it(signed_in: Any, world: World, db: Db) -> None:
    client: httpx.Client = signed_in("clinician")
    csrf = session_csrf(client)
    today = datetime.now(UTC).astimezone().date()
    bad = client.post(f"/flags/{world.flag_id}/review", data={
        "csrf_token": csrf, "determination": "Confirmed crisis", "icd10_codes": "not-a-code",
        "action": "Called patient", "minutes": "12", "date_of_service": today.isoformat()})
    assert bad.status_code == 422 and "not an ICD-10" in bad.text  # the form comes back with the reason
    ok = client.post(f"/flags/{world.flag_id}/review", data={
        "csrf_token": csrf, "determination": "Confirmed crisis", "icd10_codes": "I10",
        "action": "Called patient, adjusted medication", "minutes": "12", "interactive": "true",
        "interactive_mode": "phone", "place_of_service": "11", "date_of_service": today.isoformat()})
    assert ok.status_code == 303, ok.text[:500]
    assert client.post(f"/flags/{world.flag_id}/promote", data={"csrf_token": csrf}).status_code == 303
    state = db.execute("SELECT state FROM flags WHERE flag_id = %s", (world.flag_id,)).fetchone()
    assert state == ("promoted",)
    assert db.execute("SELECT count(*) FROM billable_events WHERE flag_id = %s",
                      (world.flag_id,)).fetchone() == (1,)
    with httpx.Client(base_url=str(client.base_url), headers=_token(db, world, "billing")) as api:
        month = api.get(f"/api/billing/{today.year}/{today.month}").json()
        assert [p["patient_id"] for p in month["patients"]] == [world.patient_id]
        assert month["patients"][0]["mgmt_minutes"] >= 12
        assert api.get(f"/billing/{today.year}/{today.month}.csv").text.startswith("patient_mrn,")
        bundle = api.get(f"/billing/{today.year}/{today.month}.fhir.json").json()
        assert bundle["resourceType"] == "Bundle"


def test_queue_orders_by_severity_then_age_and_filters(signed_in: Any, world: World, db: Db) -> None:
    now = datetime.now(UTC)
    old_high = add_flag(db, world, severity="high", rule_id="bp_stage2", opened_at=now - timedelta(hours=5))
    new_high = add_flag(db, world, severity="high", rule_id="bp_stage2_b", opened_at=now - timedelta(hours=1))
    info = add_flag(db, world, severity="info", rule_id="silence", opened_at=now - timedelta(days=3))
    with httpx.Client(base_url=str(signed_in("nurse").base_url), headers=_token(db, world, "nurse")) as api:
        body = api.get("/api/queue").json()
        assert [f["flag_id"] for f in body["flags"]] == [world.flag_id, old_high, new_high, info]
        assert body["counts"] == {"critical": 1, "high": 2, "moderate": 0, "info": 1}
        top = body["flags"][0]
        assert (top["systolic_mmhg"], top["diastolic_mmhg"]) == (186.0, 124.0)
        assert top["patient"] == world.patient_name
        assert [f["flag_id"] for f in api.get("/api/queue", params={"severity": "high"}).json()["flags"]] == [
            old_high, new_high]
        api.post(f"/api/flags/{info}/events", json={"event": "assign"})
        mine = api.get("/api/queue", params={"mine": "true"}).json()["flags"]
        assert [f["flag_id"] for f in mine] == [info]
        closed = api.post(f"/api/flags/{info}/events", json={"event": "close", "disposition": "artefact"})
        assert closed.json()["state"] == "closed"
        assert api.post(f"/api/flags/{info}/events", json={"event": "escalate"}).status_code == 409
        logged = api.post(f"/api/flags/{old_high}/events", json={"event": "log_time", "minutes": 7})
        assert logged.status_code == 200
    assert db.execute("SELECT sum(minutes) FROM time_logs WHERE flag_id = %s", (old_high,)).fetchone() == (7,)


def test_healthz_lists_failing_timescaledb_jobs(app_client: httpx.Client) -> None:
    body = app_client.get("/healthz").json()
    assert body["status"] == "ok" and isinstance(body["timescaledb_jobs_failing"], list)


def test_daily_summary_shows_weight_and_spo2(signed_in: Any, world: World, db: Db) -> None:
    at = datetime.now(UTC) - timedelta(days=3)
    insert = ("INSERT INTO readings (message_id, gateway_id, device_id, patient_id, kind, measured_at,"
              " received_at, weight_kg, spo2_pct, spo2_min_pct, pulse_bpm, raw)"
              " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, '\\x00')")
    for kind, kg, spo2, low, pulse in (("weight", 81.5, None, None, None),
                                       ("weight", 82.5, None, None, None),
                                       ("spo2", None, 95.5, 91.0, 64.0)):
        db.execute(insert, (secrets.token_hex(16), world.gateway_id, f"{kind}-dev", world.patient_id, kind,
                            at, at, kg, spo2, low, pulse))
    page = signed_in("nurse").get(f"/patients/{world.patient_id}", params={"days": 30}).text
    summary = page[page.index("Daily summary"):page.index("<h2>Readings")]
    assert "82 kg" in summary and "81.5–82.5 kg" in summary  # mean, then the day's range
    assert "SpO2 95.5 %, 64 /min" in summary and "91–95.5 %" in summary
    assert "weight (daily mean)" in page and "SpO2 (daily mean)" in page  # the charts read them too
