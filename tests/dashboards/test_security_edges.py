"""Issue 14 on the web edge: malformed Unicode is a 400, security headers, no server banner."""

from __future__ import annotations

import threading
from collections.abc import Callable

import httpx
import psycopg
import uvicorn

from dashboards.app import create_app
from dashboards.limits import server_options
from simulators.server_host import free_port
from tests.dashboards.conftest import settings_for
from tests.dashboards.live import session_csrf
from tests.dashboards.seed import World
from tests.waiting import wait_for

SignIn = Callable[[str], httpx.Client]


def test_a_lone_surrogate_is_a_400_never_a_500(
    signed_in: SignIn, world: World, db: psycopg.Connection[tuple[object, ...]]
) -> None:
    before = db.execute("SELECT count(*) FROM flag_events").fetchone()
    c = signed_in("nurse")
    csrf = session_csrf(c)
    json_headers = {"x-csrf-token": csrf, "content-type": "application/json"}
    bodies = [
        (f"/api/flags/{world.flag_id}/events", b'{"event": "annotate", "note": "\\ud800"}'),
        (f"/api/flags/{world.flag_id}/events", b'{"event": "annotate", "note": "\xed\xa0\x80"}'),
        (f"/api/flags/{world.flag_id}/events", b'{"event": "nope", "note": "\\udfff"}'),
    ]
    for path, body in bodies:
        r = c.post(path, content=body, headers=json_headers)
        assert r.status_code == 400, (body, r.status_code, r.text)
        assert r.json() == {"error": "malformed Unicode in the request"}
    assert db.execute("SELECT count(*) FROM flag_events").fetchone() == before
    form = c.post(f"/flags/{world.flag_id}/events",
                  content=b"event=annotate&note=%ED%A0%80&csrf_token=" + csrf.encode(),
                  headers={"content-type": "application/x-www-form-urlencoded"})
    assert form.status_code < 500
    assert c.get("/api/queue?patient=%ED%A0%80").status_code < 500
    assert c.get("/api/me").status_code == 200


def test_openapi_needs_a_signed_in_user(app_client: httpx.Client, signed_in: SignIn) -> None:
    anonymous = app_client.get("/openapi.json", follow_redirects=False)
    assert anonymous.status_code in (303, 401)
    assert "paths" not in anonymous.text
    schema = signed_in("billing").get("/openapi.json").json()
    assert "/api/queue" in schema["paths"] and schema["components"]["securitySchemes"]["bearer"]


def test_no_hsts_on_plain_http_demo(app_client: httpx.Client) -> None:
    r = app_client.get("/login")
    assert "strict-transport-security" not in r.headers
    assert r.headers["x-frame-options"] == "DENY"


def test_hsts_and_no_server_banner_when_served_like_production(database_url: str, world: World) -> None:
    settings = settings_for(database_url, secure_cookies=True)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port,
                                           log_level="warning", **server_options(settings)))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, 20, "uvicorn to start")
        r = httpx.get(f"http://127.0.0.1:{port}/login", timeout=10)
        assert r.status_code == 200
        assert r.headers["strict-transport-security"].startswith("max-age=31536000")
        assert "server" not in r.headers
    finally:
        server.should_exit = True
        thread.join(timeout=10)
