"""Issue 14: passwords by length (>= 12) and a local list of common ones, enforced where users are made."""

from __future__ import annotations

from typing import Any

import httpx
import psycopg
import pytest

from dashboards.password_policy import problem
from dashboards.passwords import scrypt_hash
from tests.dashboards.live import session_csrf, sign_in
from tests.dashboards.seed import PASSWORD


@pytest.mark.parametrize(("password", "why"), [
    ("short-pw", "at least 12"), ("Password1234", "common"), (" QWERTYUIOPAS ", "common"),
    ("nurse.jones.42", "username"),
])
def test_weak_passwords_are_refused(password: str, why: str) -> None:
    reason = problem(password, "nurse.jones.42")
    assert reason is not None and why in reason


def test_a_long_uncommon_password_is_fine() -> None:
    assert problem("blue kettle over seven hills", "nurse.jones.42") is None


def test_the_admin_form_refuses_a_common_password(
    signed_in: Any, db: psycopg.Connection[tuple[object, ...]]
) -> None:
    admin: httpx.Client = signed_in("admin")
    r = admin.post("/admin/users", data={"username": "weak.user", "display_name": "Weak", "role": "nurse",
                                         "password": "password1234", "csrf_token": session_csrf(admin)})
    assert r.status_code == 422 and "common passwords" in r.text
    assert db.execute("SELECT count(*) FROM users WHERE username = 'weak.user'").fetchone() == (0,)


def test_a_legacy_scrypt_hash_is_replaced_by_argon2id_at_sign_in(
    app_client: httpx.Client, world: Any, db: psycopg.Connection[tuple[object, ...]]
) -> None:
    uid = world.users["nurse"]
    db.execute("UPDATE users SET password_hash = %s WHERE user_id = %s", (scrypt_hash(PASSWORD), uid))
    assert sign_in(app_client, world.usernames["nurse"]).status_code == 303
    stored = db.execute("SELECT password_hash FROM users WHERE user_id = %s", (uid,)).fetchone()
    assert stored is not None and str(stored[0]).startswith("$argon2id$v=19$m=19456,t=2,p=1$")
