"""Sign-in, sessions (idle timeout = automatic logoff), CSRF, API tokens."""

from __future__ import annotations

import re
from typing import Any

import httpx
import psycopg

from dashboards.auth import SESSION_COOKIE
from dashboards.sessions import digest
from tests.dashboards.live import csrf_of, session_csrf, sign_in
from tests.dashboards.seed import PASSWORD, World

Db = psycopg.Connection[tuple[Any, ...]]


def test_sign_in_good_sets_strict_httponly_session_stored_hashed(app_client: httpx.Client, world: World,
                                                                 db: Db) -> None:
    r = sign_in(app_client, world.usernames["nurse"])
    assert r.status_code == 303 and r.headers["location"] == "/"
    cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE + "="))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    session_id = app_client.cookies[SESSION_COOKIE]
    row = db.execute("SELECT count(*) FROM dashboard_sessions WHERE session_hash = %s", (digest(session_id),))
    assert row.fetchone() == (1,)
    assert db.execute("SELECT count(*) FROM dashboard_sessions WHERE session_hash = %s",
                      (session_id,)).fetchone() == (0,)
    assert app_client.get("/", follow_redirects=False).headers["location"] == "/queue"


def test_sign_in_bad_password_or_user_is_refused_and_recorded(app_client: httpx.Client, world: World,
                                                             db: Db) -> None:
    r = sign_in(app_client, world.usernames["nurse"], "wrong password!")
    assert r.status_code == 401 and "wrong password" in r.text.lower()
    assert SESSION_COOKIE not in app_client.cookies
    assert sign_in(app_client, "nobody-here").status_code == 401
    reasons = [row[0] for row in db.execute("SELECT reason FROM dashboard_sign_ins ORDER BY sign_in_id")]
    assert reasons == ["wrong password", "unknown user"]
    assert app_client.get("/queue", follow_redirects=False).headers["location"].startswith("/login")


def test_login_form_without_its_csrf_token_is_403(app_client: httpx.Client, world: World) -> None:
    app_client.get("/login")
    r = app_client.post("/login", data={"username": world.usernames["nurse"], "password": "x"})
    assert r.status_code == 403


def test_post_without_or_with_wrong_csrf_is_403_and_changes_nothing(signed_in: Any, world: World,
                                                                    db: Db) -> None:
    client: httpx.Client = signed_in("nurse")
    url = f"/flags/{world.flag_id}/events"
    assert client.post(url, data={"event": "acknowledge"}).status_code == 403
    assert client.post(url, data={"event": "acknowledge", "csrf_token": "forged"}).status_code == 403
    assert db.execute("SELECT state FROM flags WHERE flag_id = %s", (world.flag_id,)).fetchone() == ("open",)
    ok = client.post(url, data={"event": "acknowledge", "csrf_token": session_csrf(client)},
                     follow_redirects=False)
    assert ok.status_code == 303
    assert db.execute("SELECT state FROM flags WHERE flag_id = %s", (world.flag_id,)).fetchone() == (
        "acknowledged",)


def test_every_form_on_every_page_carries_the_csrf_token(signed_in: Any, world: World) -> None:
    client: httpx.Client = signed_in("clinician")
    token = session_csrf(client)
    for path in ("/queue", f"/flags/{world.flag_id}", f"/patients/{world.patient_id}", "/account",
                 f"/flags/{world.flag_id}/review"):
        html = client.get(path).text
        # A <template> is inert markup: app.js gives its clone the page's token when it opens.
        live = re.sub(r"<template\b.*?</template>", "", html, flags=re.S)
        forms = live.count('method="post"')
        assert forms > 0 and live.count(f'name="csrf_token" value="{token}"') == forms, path
        # Buttons outside a form submit one on the page (the queue's buttons submit base.html's #pf).
        for owner in set(re.findall(r'<button[^>]* form="([^"]+)"', live)):
            assert f'<form id="{owner}" method="post"' in live, (path, owner)


def test_idle_session_is_logged_off(signed_in: Any, world: World, db: Db) -> None:
    client: httpx.Client = signed_in("nurse")
    assert client.get("/queue").status_code == 200
    db.execute("UPDATE dashboard_sessions SET last_seen_at = now() - interval '16 minutes'")
    r = client.get("/queue", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    assert db.execute("SELECT end_reason FROM dashboard_sessions").fetchone() == ("idle timeout",)


def test_sign_out_ends_the_server_side_session(signed_in: Any, world: World, db: Db) -> None:
    client: httpx.Client = signed_in("billing")
    stolen = client.cookies[SESSION_COOKIE]
    assert client.post("/logout", data={"csrf_token": session_csrf(client)}).status_code in (200, 303)
    with httpx.Client(base_url=str(client.base_url), cookies={SESSION_COOKIE: stolen}) as replay:
        assert replay.get("/billing", follow_redirects=False).status_code == 303


def test_api_token_create_use_revoke(signed_in: Any, world: World, db: Db) -> None:
    client: httpx.Client = signed_in("nurse")
    page = client.post("/account/tokens", data={"name": "script", "scope": "write",
                                                    "csrf_token": session_csrf(client)})
    token = page.text.split('id="new-token">', 1)[1].split("<", 1)[0]
    assert token.startswith("rpmf_")
    stored = db.execute("SELECT token_hash FROM api_tokens").fetchone()
    assert stored is not None and token not in stored[0]
    with httpx.Client(base_url=str(client.base_url), headers={"Authorization": f"Bearer {token}"}) as api:
        assert api.get("/api/me").json()["role"] == "nurse"
        # Bearer calls carry no ambient credential, so they need no CSRF token.
        r = api.post(f"/api/flags/{world.flag_id}/events", json={"event": "acknowledge"})
        assert r.status_code == 200 and r.json()["state"] == "acknowledged"
        assert api.get("/api/admin/users").status_code == 403
        token_id = db.execute("SELECT token_id FROM api_tokens").fetchone()
        assert token_id is not None
        client.post(f"/account/tokens/{token_id[0]}/revoke", data={"csrf_token": session_csrf(client)})
        assert api.get("/api/me").status_code == 401
    with httpx.Client(base_url=str(client.base_url), headers={"Authorization": "Bearer rpmf_guess"}) as bad:
        assert bad.get("/api/queue").status_code == 401


def test_next_parameter_cannot_redirect_off_site(app_client: httpx.Client, world: World) -> None:
    page = app_client.get("/login", params={"next": "//evil.example/x"})
    r = app_client.post("/login", data={"username": world.usernames["nurse"], "password": PASSWORD,
                                        "csrf_token": csrf_of(page.text), "next": "//evil.example/x"})
    assert r.status_code == 303 and r.headers["location"] == "/"
