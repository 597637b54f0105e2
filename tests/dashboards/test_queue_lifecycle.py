"""The queue reads the flag lifecycle (triage/lifecycle.py) instead of restating it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg

from dashboards.routes.queue import QUEUE_EVENTS, STATUS_CHOICES
from dashboards.sessions import create_token
from tests.dashboards.live import session_csrf
from tests.dashboards.seed import World, add_flag
from triage import lifecycle

Db = psycopg.Connection[tuple[Any, ...]]


def test_filters_and_one_click_events_come_from_the_lifecycle_table() -> None:
    # written out here on purpose: a change to the lifecycle shows up as a failing literal
    assert STATUS_CHOICES == ("active", "open", "acknowledged", "escalated", "reviewed", "promoted",
                              "dismissed", "closed")
    assert QUEUE_EVENTS == ("acknowledge", "assign", "annotate", "log_time", "escalate", "close")
    assert set(QUEUE_EVENTS) == set(lifecycle.ROLE_EVENTS["nurse"])


def test_the_api_filters_by_any_lifecycle_state_and_refuses_others(signed_in: Any, world: World,
                                                                   db: Db) -> None:
    closed = add_flag(db, world, severity="info", rule_id="silence",
                      opened_at=datetime.now(UTC) - timedelta(days=1))
    _, token = create_token(db, world.users["nurse"], "test")
    with httpx.Client(base_url=str(signed_in("nurse").base_url),
                      headers={"Authorization": f"Bearer {token}"}) as api:
        assert api.post(f"/api/flags/{closed}/events",
                        json={"event": "close", "disposition": "artefact"}).json()["state"] == "closed"
        for status in lifecycle.STATES:
            got = api.get("/api/queue", params={"status": status})
            assert got.status_code == 200 and all(f["state"] == status for f in got.json()["flags"])
        assert [f["flag_id"] for f in api.get("/api/queue", params={"status": "closed"}).json()["flags"]] == [
            closed]
        assert api.get("/api/queue", params={"status": "billable"}).status_code == 422
        assert api.post(f"/api/flags/{world.flag_id}/events", json={"event": "promote"}).status_code == 422
        bad = api.post(f"/api/flags/{world.flag_id}/events", json={"event": "close", "disposition": "bored"})
        assert bad.status_code == 422


def test_the_queue_page_offers_every_state_and_the_flag_page_promotes_only_when_the_table_says(
    signed_in: Any, world: World, db: Db
) -> None:
    nurse: httpx.Client = signed_in("nurse")
    page = nurse.get("/queue").text
    assert all(f'<option value="{s}"' in page for s in STATUS_CHOICES)
    clinician: httpx.Client = signed_in("clinician")
    assert 'id="promote"' not in clinician.get(f"/flags/{world.flag_id}").text  # open: nothing to promote
    form = clinician.post(f"/flags/{world.flag_id}/events",
                          data={"csrf_token": session_csrf(clinician), "event": "bogus"})
    assert form.status_code == 422
