"""The billing worklist page and API: every enrolled patient, least work first, read-only for clinicians."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg

from tests.dashboards.seed import World
from triage.clinical import people

Db = psycopg.Connection[tuple[Any, ...]]


def _second_patient(db: Db, world: World) -> int:
    """Enrolled and consented but no device and no readings: no code can be earned yet."""
    pid = people.create_patient(db, mrn="MRN-idle", display_name="Idle Patient", state="NY",
                                timezone="America/New_York")
    start = datetime.now(UTC) - timedelta(days=5)
    people.record_consent(db, pid, consented_at=start, method="verbal", recorded_by=world.users["admin"],
                          version="v1")
    people.enrol(db, pid, ordering_user_id=world.users["clinician"], icd10_codes=["I10"],
                 start_date=start.date(), established_visit_date=start.date() - timedelta(days=90))
    return pid


def test_billing_sees_every_enrolled_patient_with_steps_and_it_is_audited(
    signed_in: Any, world: World, db: Db
) -> None:
    idle = _second_patient(db, world)
    client: httpx.Client = signed_in("billing")
    today = datetime.now(UTC).date()
    page = client.get("/billing/worklist")
    assert page.status_code == 200
    html = page.text
    assert f'data-patient-id="{world.patient_id}"' in html and f'data-patient-id="{idle}"' in html
    assert "Idle Patient" in html and "nothing yet" in html  # a row even with no code
    assert "more minutes with an interactive call" in html and "days left" in html
    api = client.get(f"/api/billing/worklist/{today.year}/{today.month}")
    assert api.status_code == 200
    rows = {p["patient_id"]: p for p in api.json()["patients"]}
    assert set(rows) == {world.patient_id, idle}
    seeded = rows[world.patient_id]
    assert seeded["device_days"] is not None and seeded["device_days"] >= 1
    assert any(s["code"] in ("99470", "99457") and s["reachable"] for s in seeded["steps"])
    audit = db.execute("SELECT count(*) FROM audit_log WHERE action = 'view:billing_worklist'").fetchone()
    assert audit == (2,)


def test_clinicians_read_it_nurses_and_admins_do_not(app_client: httpx.Client, signed_in: Any) -> None:
    clinician: httpx.Client = signed_in("clinician")
    r = clinician.get("/billing/worklist")
    assert r.status_code == 200 and "Read-only for clinicians" in r.text
    assert "<form" not in r.text.split('id="main"')[1]  # nothing to submit from it
    for role in ("nurse", "admin"):
        c: httpx.Client = signed_in(role)  # signing in again replaces the session
        assert c.get("/billing/worklist").status_code == 403
