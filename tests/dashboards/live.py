"""Helpers to drive the app: sign in through the form, and serve it with uvicorn in a thread."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import httpx
import pyotp
import uvicorn
from fastapi import FastAPI

from simulators.server_host import free_port
from tests.dashboards.seed import PASSWORD, totp_secret
from tests.waiting import wait_for

_USED_STEPS: dict[str, int] = {}  # the server refuses a TOTP step twice: remember what we spent
_STEPS_LOCK = threading.Lock()

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    m = _CSRF.search(html)
    assert m, "no csrf_token field in the page"
    return m.group(1)


def totp_code(username: str, secret: str | None = None) -> str:
    """A current TOTP code for ``username`` (seeded secret unless given) that this process has not
    used yet: the current 30-s step, else the next one (the server accepts one step of drift), else
    wait for the clock to reach a fresh step."""
    otp = pyotp.TOTP(secret or totp_secret(username))

    def fresh_step() -> int | None:
        now = otp.timecode(datetime.now(UTC))
        return next((s for s in (now, now + 1) if s > _USED_STEPS.get(username, 0)), None)

    with _STEPS_LOCK:
        step = wait_for(fresh_step, 35, f"a TOTP step for {username} not used yet", interval=0.2)
        assert step is not None
        _USED_STEPS[username] = step
    return otp.generate_otp(step)


def sign_in(client: httpx.Client, username: str, password: str = PASSWORD,
            code: str | None = None) -> httpx.Response:
    """Sign in through the form; when a second factor is asked for, answer it (``code``, else the
    seeded secret's current code). Returns the last response (303 on success)."""
    page = client.get("/login")
    assert page.status_code == 200
    r = client.post("/login", data={"username": username, "password": password,
                                    "csrf_token": csrf_of(page.text), "next": ""},
                    follow_redirects=False)
    if r.status_code != 303 or not r.headers["location"].startswith("/login/second-factor"):
        return r
    form = client.get(r.headers["location"])
    assert form.status_code == 200, form.text[:300]
    answer = {"code": code or totp_code(username), "csrf_token": csrf_of(form.text), "next": ""}
    return client.post("/login/second-factor", data=answer, follow_redirects=False)


def enrol_second_factor(client: httpx.Client, username: str) -> tuple[str, list[str]]:
    """Enrol a signed-in user's authenticator through /account/mfa, as a person would: read the key
    shown, confirm with its code. Returns the secret and the ten recovery codes shown once."""
    page = client.get("/account/mfa")
    assert page.status_code == 200, page.text[:300]
    shown = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', page.text)
    assert shown, page.text[:2000]
    secret = shown.group(1).replace(" ", "")
    done = client.post("/account/mfa/confirm",
                       data={"code": totp_code(username, secret), "csrf_token": csrf_of(page.text)})
    assert done.status_code == 200, done.text[:500]
    return secret, re.findall(r"<li><code>([a-z2-7-]{19})</code></li>", done.text)


def session_csrf(client: httpx.Client) -> str:
    """The per-session CSRF token, read from a signed-in page."""
    return csrf_of(client.get("/account").text)


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Run ``app`` under uvicorn on a free loopback port; yields the base URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on",
                            timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, 20, "uvicorn to start")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        assert not thread.is_alive(), "uvicorn did not stop"
