"""Helpers to drive the app: sign in through the form, and serve it with uvicorn in a thread."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import uvicorn
from fastapi import FastAPI

from simulators.stack import free_port
from tests.dashboards.seed import PASSWORD
from tests.waiting import wait_for

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    m = _CSRF.search(html)
    assert m, "no csrf_token field in the page"
    return m.group(1)


def sign_in(client: httpx.Client, username: str, password: str = PASSWORD) -> httpx.Response:
    page = client.get("/login")
    assert page.status_code == 200
    return client.post("/login", data={"username": username, "password": password,
                                       "csrf_token": csrf_of(page.text), "next": ""},
                       follow_redirects=False)


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
