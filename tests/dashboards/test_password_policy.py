"""Issue 14: passwords by length (>= 12) and a local list of common ones, enforced where users are made."""

from __future__ import annotations

from typing import Any

import httpx
import psycopg
import pytest

from dashboards.password_policy import problem
from tests.dashboards.live import session_csrf


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
