"""Issue 14 item 3: TOTP second factor for clinician, billing and admin, with recovery codes,
replay refusal, throttling, forced enrolment and an admin's audited reset."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pyotp
import pytest

from dashboards import totp
from dashboards.app import create_app
from dashboards.auth import MFA_COOKIE, SESSION_COOKIE
from simulators.embedded_postgres import DatabaseUrls
from tests.dashboards.conftest import settings_for
from tests.dashboards.live import csrf_of, serve, session_csrf, sign_in, totp_code
from tests.dashboards.seed import PASSWORD, World, totp_secret
from triage.clinical import people

Db = psycopg.Connection[tuple[Any, ...]]
NOW = datetime(2026, 3, 1, 12, 0, 30, tzinfo=UTC)


def _actions(db: Db, actor: str) -> list[str]:
    return [r[0] for r in db.execute("SELECT action FROM audit_log WHERE actor = %s ORDER BY seq", (actor,))]


def _password_step(client: httpx.Client, username: str, password: str = PASSWORD) -> httpx.Response:
    page = client.get("/login")
    return client.post("/login", data={"username": username, "password": password,
                                       "csrf_token": csrf_of(page.text), "next": ""})


def _code_step(client: httpx.Client, code: str) -> httpx.Response:
    form = client.get("/login/second-factor")
    assert form.status_code == 200, form.text[:300]
    answer = {"code": code, "csrf_token": csrf_of(form.text), "next": ""}
    return client.post("/login/second-factor", data=answer)


# --- pure: dashboards/totp.py ---------------------------------------------------------------------

def test_a_code_is_accepted_once_per_step_and_one_step_of_drift_either_side() -> None:
    secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    otp = pyotp.TOTP(secret)
    step = otp.timecode(NOW)
    assert totp.matching_step(secret, otp.at(NOW), now=NOW, after_step=0) == step
    assert totp.matching_step(secret, otp.at(NOW), now=NOW, after_step=step) is None  # replay
    assert totp.matching_step(secret, otp.at(NOW - timedelta(seconds=30)), now=NOW, after_step=0) == step - 1
    assert totp.matching_step(secret, otp.at(NOW + timedelta(seconds=30)), now=NOW, after_step=0) == step + 1
    assert totp.matching_step(secret, otp.at(NOW - timedelta(seconds=90)), now=NOW, after_step=0) is None
    assert totp.matching_step(secret, "12345", now=NOW, after_step=0) is None
    assert totp.matching_step(secret, "abcdef", now=NOW, after_step=0) is None


def test_recovery_codes_are_ten_distinct_and_typed_forgivingly() -> None:
    codes = totp.new_recovery_codes()
    assert len(set(codes)) == 10 and all(re.fullmatch(r"[a-z2-7]{4}(-[a-z2-7]{4}){3}", c) for c in codes)
    assert totp.normalise_recovery(" " + codes[0].upper().replace("-", "") + " ") == codes[0]
    assert totp.normalise_recovery("not-a-code") is None
    assert totp.provisioning_uri("JBSWY3DPEHPK3PXPJBSWY3DP", "ada").startswith("otpauth://totp/rpmflow:ada?secret=")


# --- sign-in -------------------------------------------------------------------------------------

def test_password_alone_grants_no_session_to_a_clinician(
    app_client: httpx.Client, world: World, db: Db
) -> None:
    clin = world.usernames["clinician"]
    r = _password_step(app_client, clin)
    assert r.status_code == 303 and r.headers["location"].startswith("/login/second-factor")
    assert SESSION_COOKIE not in app_client.cookies and MFA_COOKIE in app_client.cookies
    assert app_client.get("/queue").headers["location"].startswith("/login")  # nothing reachable yet
    done = _code_step(app_client, totp_code(clin))
    assert done.status_code == 303 and SESSION_COOKIE in app_client.cookies
    assert app_client.get("/queue").status_code == 200
    assert _actions(db, clin)[:2] == ["auth.password_ok", "auth.sign_in"]
    detail = db.execute("SELECT detail FROM audit_log WHERE action = 'auth.sign_in' AND actor = %s",
                        (clin,)).fetchone()
    assert detail is not None and detail[0]["second_factor"] == "totp"


def test_a_replayed_code_is_refused_and_audited(base_url: str, world: World, db: Db) -> None:
    admin = world.usernames["admin"]
    code = totp_code(admin)
    with httpx.Client(base_url=base_url) as first, httpx.Client(base_url=base_url) as second:
        _password_step(first, admin)
        assert _code_step(first, code).status_code == 303
        _password_step(second, admin)
        replay = _code_step(second, code)
        assert replay.status_code == 401 and "already used" in replay.text
        assert SESSION_COOKIE not in second.cookies
    failed = db.execute("SELECT detail FROM audit_log WHERE action = 'auth.mfa_failed' AND actor = %s",
                        (admin,)).fetchone()
    assert failed is not None and failed[0]["factor"] == "totp"


def test_wrong_codes_are_throttled_like_wrong_passwords(
    app_client: httpx.Client, world: World, db: Db
) -> None:
    billing = world.usernames["billing"]
    _password_step(app_client, billing)
    assert [_code_step(app_client, "000000").status_code for _ in range(4)] == [401] * 4
    _password_step(app_client, billing)  # a fresh challenge (each allows five tries)
    assert _code_step(app_client, "000000").status_code == 401  # the fifth failure locks the account
    locked = _code_step(app_client, totp_code(billing))
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) >= 1
    assert _actions(db, billing).count("auth.mfa_failed") == 5
    assert "auth.lockout" in _actions(db, billing) and "auth.sign_in" not in _actions(db, billing)


def test_an_expired_challenge_asks_for_the_password_again(app_client: httpx.Client, world: World,
                                                          db: Db) -> None:
    clin = world.usernames["clinician"]
    _password_step(app_client, clin)
    db.execute("UPDATE mfa_challenges SET expires_at = now() - interval '1 second'")
    r = _code_step_after_expiry(app_client, totp_code(clin))
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    assert SESSION_COOKIE not in app_client.cookies
    assert db.execute("SELECT count(*) FROM audit_log WHERE action = 'auth.mfa_refused'").fetchone() == (1,)


def _code_step_after_expiry(client: httpx.Client, code: str) -> httpx.Response:
    login = client.get("/login")  # the code form itself now sends the user back: use the login CSRF
    return client.post("/login/second-factor",
                       data={"code": code, "csrf_token": csrf_of(login.text), "next": ""})


# --- enrolment, recovery codes, reset --------------------------------------------------------------

def _enrol(client: httpx.Client) -> tuple[str, list[str]]:
    """Enrol through the page: read the key shown, confirm with its code; the recovery codes shown."""
    page = client.get("/account/mfa")
    assert page.status_code == 200
    shown = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', page.text)
    assert shown, page.text[:2000]
    secret = shown.group(1).replace(" ", "")
    uri = html.unescape(re.search(r'id="totp-uri">([^<]+)<', page.text).group(1))  # type: ignore[union-attr]
    assert f"secret={secret}" in uri and uri.startswith("otpauth://totp/")
    wrong = client.post("/account/mfa/confirm", data={"code": "000000", "csrf_token": csrf_of(page.text)})
    assert wrong.status_code == 422
    done = client.post("/account/mfa/confirm",
                       data={"code": pyotp.TOTP(secret).now(), "csrf_token": csrf_of(page.text)})
    assert done.status_code == 200, done.text[:500]
    return secret, re.findall(r"<li><code>([a-z2-7-]{19})</code></li>", done.text)


def test_an_admin_without_a_factor_can_reach_only_enrolment_then_uses_recovery_codes_once(
    app_client: httpx.Client, db: Db
) -> None:
    from tests.dashboards.seed import _HASH

    people.create_user(db, username="new-admin", display_name="New Admin", role="admin", password_hash=_HASH)
    assert sign_in(app_client, "new-admin").status_code == 303  # no factor yet: a restricted session
    for path in ("/admin", "/account", "/admin/users"):
        assert app_client.get(path).headers["location"] == "/account/mfa"
    assert app_client.get("/api/me").status_code == 403
    token = app_client.post("/account/tokens",
                            data={"name": "x", "csrf_token": session_csrf_of_mfa(app_client)})
    assert token.status_code == 303  # redirected to enrolment, no token made
    assert db.execute("SELECT count(*) FROM api_tokens").fetchone() == (0,)
    secret, codes = _enrol(app_client)
    assert len(codes) == 10
    assert app_client.get("/admin").status_code == 200
    stored = {r[0] for r in db.execute("SELECT code_hash FROM mfa_recovery_codes")}
    assert stored == {totp.recovery_digest(c) for c in codes} and not set(codes) & stored

    with httpx.Client(base_url=app_client.base_url) as again:
        _password_step(again, "new-admin")
        assert _code_step(again, codes[0].upper()).status_code == 303
    with httpx.Client(base_url=app_client.base_url) as replay:
        _password_step(replay, "new-admin")
        assert _code_step(replay, codes[0]).status_code == 401  # consumed
    used = db.execute("SELECT detail FROM audit_log WHERE action = 'auth.recovery_code_used'").fetchall()
    assert [u[0]["recovery_codes_left"] for u in used] == [9]
    assert {"mfa.enrol_failed", "mfa.enrolled"} <= set(_actions(db, "new-admin"))
    assert secret != totp_secret("new-admin")


def session_csrf_of_mfa(client: httpx.Client) -> str:
    """The session's CSRF token, read from the one page a restricted session can open."""
    return csrf_of(client.get("/account/mfa").text)


def test_admin_reset_ends_sessions_and_sends_the_user_to_enrolment(
    base_url: str, signed_in: Any, world: World, db: Db
) -> None:
    clin = world.usernames["clinician"]
    with httpx.Client(base_url=base_url) as clinician:
        assert sign_in(clinician, clin).status_code == 303
        admin: httpx.Client = signed_in("admin")
        r = admin.post(f"/admin/users/{world.users['clinician']}/mfa/reset",
                       data={"csrf_token": session_csrf(admin)})
        assert r.status_code == 303
        assert clinician.get("/queue").headers["location"].startswith("/login")  # session ended
        assert sign_in(clinician, clin).status_code == 303  # the password alone now: to enrolment
        assert clinician.get("/queue").headers["location"] == "/account/mfa"
    reset = db.execute("SELECT actor, detail FROM audit_log WHERE action = 'mfa.reset'").fetchone()
    assert reset is not None and reset[0] == world.usernames["admin"] and reset[1]["username"] == clin
    again = admin.post(f"/admin/users/{world.users['clinician']}/mfa/reset",
                       data={"csrf_token": session_csrf(admin)})
    assert again.status_code == 404


def test_nurses_need_a_factor_only_when_the_setting_says(
    database_urls: DatabaseUrls, world: World, app_client: httpx.Client
) -> None:
    assert sign_in(app_client, world.usernames["nurse"]).status_code == 303
    assert app_client.get("/queue").status_code == 200
    with serve(create_app(settings_for(database_urls.dashboard, mfa_nurses=True))) as url, \
            httpx.Client(base_url=url) as c:
        assert sign_in(c, world.usernames["nurse"]).status_code == 303
        assert c.get("/queue").headers["location"] == "/account/mfa"


@pytest.mark.parametrize("table", ["user_mfa", "mfa_recovery_codes", "mfa_challenges"])
def test_only_the_dashboard_role_reads_second_factor_secrets(database_urls: DatabaseUrls, table: str) -> None:
    for url in (database_urls.ingest, database_urls.triage, database_urls.reporting):
        with psycopg.connect(url) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(f"SELECT * FROM {table}")
