"""The "who viewed my data" page and API, and the admin audit-chain page (DOMAIN F, H11)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import psycopg

from tests.dashboards.live import sign_in
from tests.dashboards.seed import World


@contextmanager
def _client(base_url: str, w: World, role: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=20) as c:
        assert sign_in(c, w.usernames[role]).status_code == 303
        yield c


def _tamper(db: psycopg.Connection[Any], sql: str) -> None:
    with db.transaction():
        db.execute("ALTER TABLE audit_log DISABLE TRIGGER USER")
        db.execute(sql)
        db.execute("ALTER TABLE audit_log ENABLE TRIGGER USER")


def test_access_report_lists_views_and_is_itself_audited(
    base_url: str, world: World, db: psycopg.Connection[Any]
) -> None:
    with _client(base_url, world, "nurse") as nurse, _client(base_url, world, "clinician") as clin:
        assert nurse.get("/queue").status_code == 200
        assert nurse.get(f"/patients/{world.patient_id}").status_code == 200
        assert nurse.get(f"/patients/{world.patient_id}/access").status_code == 403
        page = clin.get(f"/patients/{world.patient_id}/access")
        assert page.status_code == 200 and "Audit trail verified" in page.text
        assert world.usernames["nurse"] in page.text and "listed with other patients" in page.text
        api = clin.get(f"/api/patients/{world.patient_id}/access").json()
    assert api["ok"] and api["chain"]["ok"] and len(api["chain"]["head_hash"]) == 64
    assert "display_name" not in api["patient"] and world.patient_name not in str(api)
    mine = [(e["who"], e["action"], e["direct"]) for e in api["events"]]
    nurse_name, clin_name = world.usernames["nurse"], world.usernames["clinician"]
    assert (nurse_name, "view:queue", False) in mine and (nurse_name, "view:patient", True) in mine
    assert (clin_name, "view:access_report", True) in mine  # the HTML view, recorded before the API call
    queue = next(e for e in api["events"] if e["action"] == "view:queue")
    assert "patient_ids" not in queue["detail"] and queue["detail"]["patients_listed"] >= 1
    assert queue["role"] == "nurse" and queue["from"] == "127.0.0.1" and queue["intact"]
    last = db.execute(
        "SELECT seq, actor, action, patient_id FROM audit_log ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    assert last == (api["this_view_seq"], clin_name, "view:access_report", world.patient_id)


def test_tampering_shows_as_not_ok(base_url: str, world: World, db: psycopg.Connection[Any]) -> None:
    with _client(base_url, world, "clinician") as clin, _client(base_url, world, "admin") as admin:
        assert clin.get(f"/patients/{world.patient_id}").status_code == 200
        assert admin.get(f"/api/patients/{world.patient_id}/access").json()["ok"]
        page = admin.get("/admin/audit")
        assert page.status_code == 200 and ">ok<" in page.text
        row = db.execute(
            "SELECT seq FROM audit_log WHERE action = 'view:patient' AND patient_id = %s", (world.patient_id,)
        ).fetchone()
        assert row is not None
        _tamper(db, f"UPDATE audit_log SET actor = 'nobody' WHERE seq = {int(row[0])}")
        api = admin.get(f"/api/patients/{world.patient_id}/access").json()
        assert not api["ok"] and not api["chain"]["ok"]
        assert [e["seq"] for e in api["events"] if not e["intact"]] == [int(row[0])]
        html = clin.get(f"/patients/{world.patient_id}/access").text
        assert "NOT intact" in html and "TAMPERED" in html
        chain = admin.get("/api/admin/audit").json()
        assert not chain["ok"] and any(
            p["kind"] == "edited" and p["seq"] == row[0] for p in chain["problems"]
        )
        head = db.execute("SELECT last_hash FROM audit_chain_head").fetchone()
        assert head is not None
        page = admin.get("/admin/audit")  # the head it shows is the one before its own audit row
        assert "problems" in page.text and f'<code id="chain-head">{head[0]}</code>' in page.text
        assert clin.get("/admin/audit").status_code == 403
    assert db.execute("SELECT count(*) FROM audit_log WHERE action = 'view:audit_chain'").fetchone() == (3,)
