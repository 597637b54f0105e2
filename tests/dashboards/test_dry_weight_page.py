"""The patient page sets the dry weight: care team only, kept with its reason, audited."""

from __future__ import annotations

from typing import Any

import psycopg

from tests.dashboards.live import csrf_of
from tests.dashboards.seed import World
from triage.clinical import people

Db = psycopg.Connection[tuple[Any, ...]]


def test_nurse_sets_the_dry_weight_in_lb_and_it_is_audited(signed_in: Any, world: World, db: Db) -> None:
    nurse = signed_in("nurse")
    page = nurse.get(f"/patients/{world.patient_id}")
    assert "Dry weight: not set" in page.text
    form = {"value": "176", "unit": "lb", "reason": "discharge weight", "csrf_token": csrf_of(page.text)}
    r = nurse.post(f"/patients/{world.patient_id}/dry-weight", data=form, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].endswith("#dry-weight")
    text = nurse.get(f"/patients/{world.patient_id}").text
    assert "<strong>79.8 kg</strong> (176 lb)" in text and "discharge weight" in text
    audit = db.execute(
        "SELECT detail->>'unit', detail->>'reason' FROM audit_log"
        " WHERE action = 'patient.dry_weight' AND patient_id = %s",
        (world.patient_id,),
    ).fetchall()
    assert audit == [("lb", "discharge weight")]
    bad = dict(form, value="5", unit="kg")
    assert nurse.post(f"/patients/{world.patient_id}/dry-weight", data=bad).status_code == 422
    active = db.execute(
        "SELECT dry_weight_kg FROM patient_dry_weights WHERE patient_id = %s AND revoked_at IS NULL",
        (world.patient_id,),
    ).fetchall()
    assert [round(a[0], 1) for a in active] == [79.8]  # the refused value changed nothing


def test_billing_may_not_set_it(signed_in: Any, world: World) -> None:
    billing = signed_in("billing")
    csrf = csrf_of(billing.get("/account").text)
    data = {"value": "80", "unit": "kg", "reason": "x", "csrf_token": csrf}
    assert billing.post(f"/patients/{world.patient_id}/dry-weight", data=data).status_code == 403


def test_a_nurse_outside_the_care_team_may_not_set_it(signed_in: Any, world: World, db: Db) -> None:
    pid = people.create_patient(db, mrn="MRN-DRY-OUT", display_name="In no team", state="NY")
    nurse = signed_in("nurse")
    data = {"value": "80", "unit": "kg", "reason": "x", "csrf_token": csrf_of(nurse.get("/account").text)}
    assert nurse.post(f"/patients/{pid}/dry-weight", data=data).status_code == 403
    rows = db.execute("SELECT count(*) FROM patient_dry_weights WHERE patient_id = %s", (pid,)).fetchone()
    assert rows == (0,)
