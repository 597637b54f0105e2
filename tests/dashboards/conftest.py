"""Dashboard fixtures: a seeded database, the app on it, and signed-in clients per role."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import httpx
import psycopg
import pytest
from playwright.sync_api import Browser, sync_playwright

from dashboards.app import create_app
from dashboards.settings import Settings
from simulators.embedded_postgres import DatabaseUrls
from simulators.stack import Stack
from tests.conftest import clone_database
from tests.dashboards.live import serve, sign_in
from tests.dashboards.seed import World, make_world


def settings_for(url: str, **over: object) -> Settings:
    base = {"database_url": url, "secure_cookies": False, "sse_poll_seconds": 0.1, "pool_max_size": 4}
    base.update(over)
    return Settings(**base)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def module_db_urls(stack: Stack) -> DatabaseUrls:
    """A migrated database shared by one test module (for read-mostly suites such as the role matrix)."""
    return clone_database(stack.postgres, f"dash_{secrets.token_hex(4)}")


@pytest.fixture(scope="module")
def module_db_url(module_db_urls: DatabaseUrls) -> str:
    """The shared database as the superuser (seeding); the app itself runs as rpmflow_dashboard."""
    return module_db_urls.superuser


@pytest.fixture(scope="module")
def module_world(module_db_url: str) -> World:
    with psycopg.connect(module_db_url, autocommit=True) as conn:
        return make_world(conn)


@pytest.fixture
def world(db: psycopg.Connection[tuple[object, ...]]) -> World:
    return make_world(db)


@pytest.fixture
def base_url(database_urls: DatabaseUrls, world: World) -> Iterator[str]:
    """The app on a fresh, seeded database, served by uvicorn on a free port, as its own role."""
    with serve(create_app(settings_for(database_urls.dashboard))) as url:
        yield url


@pytest.fixture
def app_client(base_url: str) -> Iterator[httpx.Client]:
    """An anonymous client of ``base_url``."""
    with httpx.Client(base_url=base_url, timeout=20) as client:
        yield client


@pytest.fixture
def signed_in(app_client: httpx.Client, world: World) -> object:
    """``signed_in(role)`` signs ``app_client`` in as that role's seeded user."""

    def _sign(role: str) -> httpx.Client:
        r = sign_in(app_client, world.usernames[role])
        assert r.status_code == 303, r.text
        return app_client

    return _sign


CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
def browser() -> Iterator[Browser]:
    """Headless Chromium (the system's), for the browser tests."""
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()
