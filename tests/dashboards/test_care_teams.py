"""Issue 14 item 4 and break-glass: nurses and clinicians see their care teams' patients only, admins
assign (audited), and an emergency opening outside the team is reasoned, time-limited, audited and
announced to admins."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import psycopg
import pytest

from tests.dashboards.live import session_csrf
from tests.dashboards.seed import World, add_flag
from triage.clinical import people

Db = psycopg.Connection[tuple[Any, ...]]


@pytest.fixture
def outsider(db: Db, world: World) -> dict[str, int]:
    pid = people.create_patient(db, mrn="MRN-OUT", display_name="Olive Outside", state="NY")
    return {"patient_id": pid, "flag_id": add_flag(db, world, patient_id=pid, reading_ids=[])}


def test_the_queue_and_its_counts_show_only_the_care_teams_patients(
    signed_in: Any, world: World, outsider: dict[str, int]
) -> None:
    nurse: httpx.Client = signed_in("nurse")
    page = nurse.get("/queue")
    assert f"data-flag-id='{world.flag_id}'" in page.text or f'data-flag-id="{world.flag_id}"' in page.text
    assert "Olive Outside" not in page.text and str(outsider["flag_id"]) not in _flag_ids(nurse)
    api = nurse.get("/api/queue").json()
    assert {f["patient_id"] for f in api["flags"]} == {world.patient_id}
    assert api["counts"]["critical"] == 1  # the outsider's critical flag is not counted


def _flag_ids(client: httpx.Client) -> set[str]:
    return {str(f["flag_id"]) for f in client.get("/api/queue").json()["flags"]}


def test_break_glass_needs_a_reason_opens_for_a_while_and_alerts_admins(
    signed_in: Any, world: World, outsider: dict[str, int], db: Db, caplog: pytest.LogCaptureFixture,
    base_url: str,
) -> None:
    pid = outsider["patient_id"]
    clin: httpx.Client = signed_in("clinician")
    refused = clin.get(f"/patients/{pid}")
    assert refused.status_code == 403 and f'action="/patients/{pid}/break-glass"' in refused.text
    csrf = session_csrf(clin)
    short = clin.post(f"/patients/{pid}/break-glass", data={"reason": "urgent", "csrf_token": csrf})
    assert short.status_code == 422
    with caplog.at_level(logging.WARNING, logger="dashboards.routes.care_teams"):
        reason = "Covering nurse line: patient called with chest pain"
        opened = clin.post(f"/patients/{pid}/break-glass", data={"reason": reason, "csrf_token": csrf})
    assert opened.status_code == 303 and opened.headers["location"] == f"/patients/{pid}"
    assert clin.get(f"/patients/{pid}").status_code == 200
    assert clin.get(f"/flags/{outsider['flag_id']}").status_code == 200
    assert any("break-glass" in r.getMessage() for r in caplog.records)
    audit: dict[str, Any] = dict(db.execute("SELECT action, detail FROM audit_log WHERE patient_id = %s"
                            " AND action IN ('access.break_glass', 'alert.break_glass')", (pid,)).fetchall())
    assert audit["access.break_glass"]["reason"].startswith("Covering nurse line")
    assert audit["alert.break_glass"]["username"] == world.usernames["clinician"]

    with httpx.Client(base_url=base_url) as admin_client:
        from tests.dashboards.live import sign_in

        assert sign_in(admin_client, world.usernames["admin"]).status_code == 303
        home = admin_client.get("/admin").text
        assert "Security alerts in the last day" in home
        listed = admin_client.get("/admin/care-teams").text
        assert "Covering nurse line" in listed and "<strong>active</strong>" in listed

    db.execute("UPDATE break_glass SET opened_at = now() - interval '2 hours',"
               " expires_at = now() - interval '1 hour'")
    assert clin.get(f"/patients/{pid}").status_code == 403  # time-limited


def test_api_break_glass(signed_in: Any, outsider: dict[str, int], db: Db) -> None:
    nurse: httpx.Client = signed_in("nurse")
    pid = outsider["patient_id"]
    headers = {"X-CSRF-Token": session_csrf(nurse)}
    assert nurse.get(f"/api/patients/{pid}").status_code == 403
    bad = nurse.post(f"/api/patients/{pid}/break-glass", json={"reason": "x"}, headers=headers)
    assert bad.status_code == 422
    ok = nurse.post(f"/api/patients/{pid}/break-glass", json={"reason": "Patient collapsed at clinic"},
                    headers=headers)
    assert ok.status_code == 201 and ok.json()["patient_id"] == pid
    assert nurse.get(f"/api/patients/{pid}").status_code == 200
    assert nurse.post("/api/patients/999999999/break-glass", json={"reason": "Patient collapsed at clinic"},
                      headers=headers).status_code == 404


def test_admins_assign_patients_and_members_and_every_change_is_audited(
    base_url: str, world: World, outsider: dict[str, int], db: Db
) -> None:
    from tests.dashboards.live import sign_in

    with httpx.Client(base_url=base_url) as admin, httpx.Client(base_url=base_url) as nurse:
        assert sign_in(admin, world.usernames["admin"]).status_code == 303
        assert sign_in(nurse, world.usernames["nurse"]).status_code == 303
        pid = outsider["patient_id"]
        assert nurse.get(f"/patients/{pid}").status_code == 403
        csrf = session_csrf(admin)
        made = admin.post("/admin/care-teams", data={"name": "Night team", "csrf_token": csrf})
        assert made.status_code == 303
        team = db.execute("SELECT team_id FROM care_teams WHERE name = 'Night team'").fetchone()
        assert team is not None
        t = team[0]
        refused = admin.post(f"/admin/care-teams/{t}/members",
                             data={"user_id": world.users["billing"], "csrf_token": csrf})
        assert refused.status_code == 422  # billing is not scoped: not a member
        for what, value in (("members", {"user_id": world.users["nurse"]}),
                            ("patients", {"patient_id": pid})):
            added = admin.post(f"/admin/care-teams/{t}/{what}", data={**value, "csrf_token": csrf})
            assert added.status_code == 303
        assert nurse.get(f"/patients/{pid}").status_code == 200
        assert pid in {f["patient_id"] for f in nurse.get("/api/queue").json()["flags"]}
        teams = admin.get("/api/admin/care-teams").json()["teams"]
        night = next(x for x in teams if x["name"] == "Night team")
        assert {p["mrn"] for p in night["patients"]} == {"MRN-OUT"}
        assert admin.post(f"/admin/care-teams/{t}/patients",
                          data={"patient_id": pid, "action": "remove", "csrf_token": csrf}).status_code == 303
        assert nurse.get(f"/patients/{pid}").status_code == 403
    actions = [r[0] for r in db.execute("SELECT action FROM audit_log WHERE action LIKE 'care_team.%%'"
                                        " ORDER BY seq")]
    assert actions == ["care_team.create", "care_team.member_add", "care_team.patient_add",
                       "care_team.patient_remove"]
