"""Patient-local times with zone (UTC on hover) and each user's glucose unit (issue 17 item 4)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import psycopg

from dashboards.units import glucose_text
from tests.dashboards.live import session_csrf, sign_in
from tests.dashboards.seed import World, add_flag, add_reading

Db = psycopg.Connection[tuple[Any, ...]]
TIME = re.compile(r'<time datetime="([^"]+)" title="([^"]+ UTC)">([^<]+)</time>')


def test_flag_review_and_patient_pages_show_the_patients_local_time(
    base_url: str, world: World, db: Db
) -> None:
    db.execute("UPDATE patients SET timezone = 'America/Phoenix' WHERE patient_id = %s",
               (world.patient_id,))
    at = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1)
    rid = add_reading(db, world, at, systolic=186.0, diastolic=122.0)
    flag_id = add_flag(db, world, reading_ids=[rid], rule_id="bp_crisis")
    local = at.astimezone(ZoneInfo("America/Phoenix")).strftime("%Y-%m-%d %H:%M MST")
    with httpx.Client(base_url=base_url, timeout=20) as clin:
        assert sign_in(clin, world.usernames["clinician"]).status_code == 303
        for path in (f"/flags/{flag_id}", f"/flags/{flag_id}/review", f"/patients/{world.patient_id}"):
            html = clin.get(path).text
            times = TIME.findall(html)
            assert times, path
            assert (at.isoformat(), at.strftime("%Y-%m-%d %H:%M UTC"), local) in times, path
            assert all(text.endswith(" MST") for _, _, text in times), path
    with httpx.Client(base_url=base_url, timeout=20) as admin:  # admin pages stay in UTC, said so
        assert sign_in(admin, world.usernames["admin"]).status_code == 303
        assert "<time datetime=" not in admin.get("/admin/devices").text


def test_a_patient_without_a_known_zone_uses_the_clinic_zone(base_url: str, world: World, db: Db) -> None:
    db.execute("UPDATE patients SET timezone = 'Not/AZone' WHERE patient_id = %s", (world.patient_id,))
    with httpx.Client(base_url=base_url, timeout=20) as nurse:
        assert sign_in(nurse, world.usernames["nurse"]).status_code == 303
        times = TIME.findall(nurse.get(f"/flags/{world.flag_id}").text)
    assert times and all(re.search(r" E[SD]T$", text) for _, _, text in times)  # the default clinic zone


def test_glucose_unit_is_a_user_preference_and_the_api_stays_mg_dl(
    base_url: str, world: World, db: Db
) -> None:
    db.execute("UPDATE flags SET state = 'closed', disposition = 'acted' WHERE flag_id = %s",
               (world.flag_id,))
    rid = add_reading(db, world, datetime.now(UTC) - timedelta(minutes=30), kind="glucose", glucose=48.0)
    flag_id = add_flag(db, world, reading_ids=[rid], rule_id="glucose_hypo_l2")
    with httpx.Client(base_url=base_url, timeout=20) as nurse:
        assert sign_in(nurse, world.usernames["nurse"]).status_code == 303
        assert "48 mg/dL" in nurse.get(f"/flags/{flag_id}").text
        assert 'value="mg/dL" checked' in nurse.get("/account/preferences").text
        csrf = session_csrf(nurse)
        r = nurse.post("/account/preferences", data={"glucose_unit": "mmol/L", "csrf_token": csrf})
        assert r.status_code == 303 and r.headers["location"] == "/account/preferences?done=preferences"
        page = nurse.get(r.headers["location"]).text
        assert 'value="mmol/L" checked' in page and "Display settings saved." in page
        assert "2.7 mmol/L" in nurse.get(f"/flags/{flag_id}").text
        assert "2.7 mmol/L" in nurse.get("/queue").text
        patient_page = nurse.get(f"/patients/{world.patient_id}?days=7").text
        assert "2.7 mmol/L</td>" in patient_page  # the readings table
        # The chart, its target lines and the time-in-range bands follow the same choice.
        assert "Glucose (mmol/L)" in patient_page and "glucose 2.7 mmol/L at" in patient_page
        assert "Band (mmol/L)" in patient_page and "In range (3.9-10.0)" in patient_page
        assert "mg/dL" not in patient_page.split('id="glucose-chart"', 1)[1].split("</svg>", 1)[0]
        api = nurse.get(f"/api/flags/{flag_id}").json()
        assert [r["glucose_mg_dl"] for r in api["readings"]] == [48.0]
        bad = nurse.post("/account/preferences", data={"glucose_unit": "mg", "csrf_token": csrf})
        assert bad.status_code == 422
    with httpx.Client(base_url=base_url, timeout=20) as clin:  # one user's choice is not another's
        assert sign_in(clin, world.usernames["clinician"]).status_code == 303
        assert "48 mg/dL" in clin.get(f"/flags/{flag_id}").text
    audit = db.execute("SELECT actor, detail->>'glucose_unit' FROM audit_log"
                       " WHERE action = 'user.preferences'").fetchall()
    assert [tuple(a) for a in audit] == [(world.usernames["nurse"], "mmol/L")]


def test_glucose_text_converts_with_the_wire_constant() -> None:
    assert glucose_text(180.0) == "180 mg/dL" and glucose_text(112.5) == "112.5 mg/dL"
    assert glucose_text(180.0, "mmol/L") == "10.0 mmol/L"  # 180 / 18.0156
    assert glucose_text(54.0, "mmol/L") == "3.0 mmol/L" and glucose_text(70.0, "mmol/L") == "3.9 mmol/L"
    assert glucose_text(None, "mmol/L") == "–"
