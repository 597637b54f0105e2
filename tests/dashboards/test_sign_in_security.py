"""Issue 14: brute force is throttled per account and per address, and tokens expire, are scoped,
and every sign-in, failure, lockout, token creation and token use is in the audit chain."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from dashboards.app import create_app
from dashboards.sessions import create_token
from dashboards.throttle import SignInThrottle
from simulators.embedded_postgres import DatabaseUrls
from tests.dashboards.conftest import settings_for
from tests.dashboards.live import serve, session_csrf, sign_in
from tests.dashboards.seed import World
from tests.waiting import wait_for

Db = psycopg.Connection[tuple[Any, ...]]


def _actions(db: Db, actor: str) -> list[str]:
    return [r[0] for r in db.execute("SELECT action FROM audit_log WHERE actor = %s ORDER BY seq", (actor,))]


def test_five_failures_lock_the_account_even_for_the_right_password(
    app_client: httpx.Client, world: World, db: Db
) -> None:
    nurse = world.usernames["nurse"]
    assert [sign_in(app_client, nurse, "wrong-password-123").status_code for _ in range(5)] == [401] * 5
    locked = sign_in(app_client, nurse)  # the right password, but the account is locked
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) >= 1
    assert "try again in" in locked.text
    assert sign_in(app_client, world.usernames["clinician"]).status_code == 303  # others are unaffected
    assert _actions(db, nurse) == ["auth.sign_in_failed"] * 5 + ["auth.lockout", "auth.sign_in_refused"]
    assert _actions(db, world.usernames["clinician"]) == ["auth.password_ok", "auth.sign_in"]


def test_one_address_trying_many_accounts_is_locked_out(
    app_client: httpx.Client, world: World, db: Db
) -> None:
    codes = [sign_in(app_client, f"guess-{i}", "wrong-password-123").status_code for i in range(20)]
    assert codes == [401] * 20
    assert sign_in(app_client, world.usernames["billing"]).status_code == 429
    lock = db.execute("SELECT detail->>'scope' FROM audit_log WHERE action = 'auth.lockout'").fetchone()
    assert lock == ("address",)


@pytest.fixture
def fast_lock_url(database_url: str, world: World) -> Iterator[str]:
    app = create_app(settings_for(database_url))
    app.state.ctx.throttle = SignInThrottle(account_ladder=("2/second",), address_ladder=("1000/second",))
    with serve(app) as url:
        yield url


def test_repeated_lockouts_alert_the_admins(fast_lock_url: str, world: World, db: Db) -> None:
    nurse = world.usernames["nurse"]
    with httpx.Client(base_url=fast_lock_url, timeout=20) as c:
        for _ in range(3):
            wait_for(lambda: sign_in(c, nurse, "wrong-password-123").status_code == 401, 10, "unlocked")
            sign_in(c, nurse, "wrong-password-123")  # the second failure in a second locks
        alert = db.execute("SELECT detail FROM audit_log WHERE action = 'alert.repeated_lockout'").fetchone()
        assert alert is not None and alert[0]["username"] == nurse and alert[0]["lockouts_today"] >= 3
        sign_in(c, world.usernames["admin"])
        wait_for(lambda: sign_in(c, world.usernames["admin"]).status_code == 303, 10, "admin sign-in")
        assert "Security alerts in the last day" in c.get("/admin").text


def test_tokens_expire_are_scoped_and_every_use_is_audited(signed_in: Any, world: World, db: Db) -> None:
    client: httpx.Client = signed_in("nurse")
    page = client.post("/account/tokens", data={"name": "reader", "days": "30",
                                                "csrf_token": session_csrf(client)})
    token = page.text.split('id="new-token">', 1)[1].split("<", 1)[0]
    created = db.execute("SELECT detail FROM audit_log WHERE action = 'auth.token_created'").fetchone()
    assert created is not None and created[0]["token_name"] == "reader" and created[0]["scope"] == "read"
    base = str(client.base_url)
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as api:
        assert api.get("/api/me").status_code == 200
        write = api.post(f"/api/flags/{world.flag_id}/events", json={"event": "acknowledge"})
        assert write.status_code == 403
    uses = db.execute("SELECT detail->>'token_name', detail->>'path' FROM audit_log"
                      " WHERE action = 'auth.token_use' ORDER BY seq").fetchall()
    assert uses[0] == ("reader", "/api/me") and len(uses) == 2
    db.execute("UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE name = 'reader'")
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as api:
        assert api.get("/api/me").status_code == 401
    refused = db.execute("SELECT detail FROM audit_log WHERE action = 'auth.token_refused'").fetchone()
    assert refused is not None and refused[0]["reason"] == "expired" and refused[0]["token_name"] == "reader"
    with pytest.raises(ValueError):
        create_token(db, world.users["nurse"], "forever", days=3650)


def test_throttle_counters_hold_across_dashboard_processes(
    database_urls: DatabaseUrls, world: World, db: Db
) -> None:
    """Two dashboards (each its own pool and throttle object, as two processes behind one proxy)
    on one database, as the dashboard's role: failures split between them lock the account in both,
    because the counters are rows of ``throttle_hits`` (dashboards/throttle_store.py)."""
    nurse = world.usernames["nurse"]
    with serve(create_app(settings_for(database_urls.dashboard))) as one, \
            serve(create_app(settings_for(database_urls.dashboard))) as two, \
            httpx.Client(base_url=one, timeout=20) as a, httpx.Client(base_url=two, timeout=20) as b:
        assert [sign_in(c, nurse, "wrong-password-123").status_code for c in (a, b, a, b, a)] == [401] * 5
        assert sign_in(b, nurse).status_code == 429  # the fifth failure was on the other one
        assert sign_in(a, nurse).status_code == 429
    refused = ["auth.sign_in_refused"] * 2
    assert _actions(db, nurse) == ["auth.sign_in_failed"] * 5 + ["auth.lockout"] + refused
    hits = db.execute("SELECT count(*) FROM throttle_hits WHERE key LIKE %s", (f"%/account/{nurse}/%",))
    assert hits.fetchone() == (5 * 4,)  # five failures on each of the four rungs


@pytest.mark.parametrize("query", [
    "SELECT password_hash FROM users",
    "SELECT session_hash FROM dashboard_sessions",
    "SELECT token_hash FROM api_tokens",
    "SELECT * FROM dashboard_sign_ins",
    "SELECT * FROM throttle_hits",
    "UPDATE audit_log SET actor = 'x'",
    "DELETE FROM audit_log",
])
def test_the_ingest_role_cannot_read_staff_credentials_nor_edit_the_audit_log(
    database_urls: DatabaseUrls, world: World, query: str
) -> None:
    """Connected as ingest's own login (not a catalog check): each attempt is refused."""
    with psycopg.connect(database_urls.ingest, autocommit=True) as conn, \
            pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
        conn.execute(query)
