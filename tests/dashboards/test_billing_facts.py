"""Billing facts recorded where people work: forms and JSON API, each audited, role-checked."""

from __future__ import annotations

from datetime import date
from typing import Any

import httpx
import psycopg

from dashboards.sessions import create_token
from tests.dashboards.live import session_csrf
from tests.dashboards.seed import World

Db = psycopg.Connection[Any]


def _api(client: httpx.Client, db: Db, world: World, role: str) -> httpx.Client:
    _, token = create_token(db, world.users[role], "test")
    return httpx.Client(
        base_url=str(client.base_url), headers={"Authorization": f"Bearer {token}"}, timeout=20
    )


def _audits(db: Db, action: str, patient_id: int) -> int:
    row = db.execute(
        "SELECT count(*) FROM audit_log WHERE action = %s AND patient_id = %s", (action, patient_id)
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_locations_orders_and_communications_by_api(signed_in: Any, world: World, db: Db) -> None:
    client: httpx.Client = signed_in("nurse")
    pid = world.patient_id
    with _api(client, db, world, "nurse") as nurse, _api(client, db, world, "clinician") as clin:
        r = nurse.post(
            f"/api/patients/{pid}/locations",
            json={"state": "NJ", "effective_from": "2026-02-15", "source": "patient_reported"},
        )
        assert r.status_code == 200, r.text
        assert _audits(db, "patient.location", pid) == 1
        bad = nurse.post(
            f"/api/patients/{pid}/locations", json={"state": "XX", "effective_from": "2026-03-01"}
        )
        assert bad.status_code == 422 and "state" in bad.text
        assert (
            nurse.post(
                f"/api/patients/{pid}/orders",
                json={"order_date": "2026-01-01", "icd10_codes": ["I10"], "medical_necessity": "HTN"},
            ).status_code
            == 403
        )
        bad = clin.post(
            f"/api/patients/{pid}/orders",
            json={"order_date": "2026-01-01", "icd10_codes": ["nope"], "medical_necessity": "HTN"},
        )
        assert bad.status_code == 422 and "ICD-10" in bad.text
        ok = clin.post(
            f"/api/patients/{pid}/orders",
            json={
                "order_date": "2026-01-01",
                "icd10_codes": ["i10"],
                "medical_necessity": "uncontrolled HTN",
            },
        )
        assert ok.status_code == 200 and _audits(db, "patient.order", pid) == 1
        for mode in ("portal_message", "phone"):
            r = nurse.post(
                f"/api/flags/{world.flag_id}/communications",
                json={"mode": mode, "at": "2026-02-10T10:00:00-05:00"},
            )
            assert r.status_code == 200, r.text
        refused = nurse.post(
            f"/api/flags/{world.flag_id}/communications",
            json={"mode": "voicemail", "at": "2026-02-10T10:00:00-05:00", "realtime": True},
        )
        assert refused.status_code == 422 and "real-time" in refused.text
        facts = nurse.get(f"/api/patients/{pid}/billing-facts").json()
        assert sorted((c["mode"], c["realtime"], c["two_way"]) for c in facts["communications"]) == [
            ("phone", True, True),
            ("portal_message", False, True),
        ]
        assert [loc["state"] for loc in facts["locations"]][-1] == "NJ"
        assert facts["orders"][-1]["icd10_codes"] == ["I10"]
        assert _audits(db, "flag.communication", pid) == 2


def test_counted_elsewhere_by_form_and_api(signed_in: Any, world: World, db: Db) -> None:
    row = db.execute("SELECT u.user_id FROM users u WHERE u.user_id = %s", (world.users["nurse"],)).fetchone()
    assert row is not None
    log = db.execute(
        "INSERT INTO time_logs (flag_id, user_id, role, minutes) VALUES (%s, %s, 'nurse', 15)"
        " RETURNING time_log_id",
        (world.flag_id, world.users["nurse"]),
    ).fetchone()
    assert log is not None
    client: httpx.Client = signed_in("clinician")
    r = client.post(
        f"/patients/{world.patient_id}/counted-elsewhere",
        data={"csrf_token": session_csrf(client), "time_log_id": str(log[0]), "program": "CCM"},
    )
    assert r.status_code == 303
    assert db.execute(
        "SELECT counted_elsewhere FROM time_logs WHERE time_log_id = %s", (log[0],)
    ).fetchone() == ("CCM",)
    with _api(client, db, world, "billing") as billing:
        r = billing.post(
            f"/api/patients/{world.patient_id}/counted-elsewhere",
            json={"time_log_id": log[0], "program": "TCM"},
        )
        assert r.status_code == 200
        other = billing.post(
            f"/api/patients/{world.patient_id + 10_000}/counted-elsewhere",
            json={"time_log_id": log[0], "program": "TCM"},
        )
        assert other.status_code == 404
    assert _audits(db, "time_log.counted_elsewhere", world.patient_id) == 2


def test_patient_page_shows_why_a_reading_does_not_count(signed_in: Any, world: World, db: Db) -> None:
    client: httpx.Client = signed_in("nurse")
    page = client.get(f"/patients/{world.patient_id}").text
    assert "Counts as a day" in page and "no: quarantined" in page and 'id="billing-facts"' in page
    r = client.post(
        f"/patients/{world.patient_id}/locations",
        data={
            "csrf_token": session_csrf(client),
            "state": "PA",
            "effective_from": date(2026, 1, 10).isoformat(),
        },
    )
    assert r.status_code == 303 and "PA" in client.get(f"/patients/{world.patient_id}").text
    flag_page = client.get(f"/flags/{world.flag_id}").text
    assert 'action="/flags/' in flag_page and "portal message (asynchronous)" in flag_page
    r = client.post(
        f"/flags/{world.flag_id}/communications",
        data={"csrf_token": session_csrf(client), "mode": "video", "at": "2026-02-10T10:00"},
    )
    assert r.status_code == 303
    at = db.execute(
        "SELECT at FROM communications WHERE flag_id = %s AND mode = 'video'", (world.flag_id,)
    ).fetchone()
    assert at is not None
