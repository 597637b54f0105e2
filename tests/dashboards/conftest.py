"""Dashboard fixtures: a seeded database, the app on it, and signed-in clients per role."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import httpx
import psycopg
import pytest

from dashboards.app import create_app
from dashboards.settings import Settings
from simulators.stack import Stack
from tests.dashboards.live import serve, sign_in
from tests.dashboards.seed import World, make_world


def settings_for(url: str, **over: object) -> Settings:
    base = {"database_url": url, "secure_cookies": False, "sse_poll_seconds": 0.1, "pool_max_size": 4}
    base.update(over)
    return Settings(**base)  # type: ignore[arg-type]


def _clone(stack: Stack) -> str:
    base = stack.postgres.url.rsplit("/", 1)[0]
    name = f"dash_{secrets.token_hex(4)}"
    with psycopg.connect(base + "/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "rpmflow_template"')
    return base + "/" + name


@pytest.fixture(scope="module")
def module_db_url(stack: Stack) -> str:
    """A migrated database shared by one test module (for read-mostly suites such as the role matrix)."""
    return _clone(stack)


@pytest.fixture(scope="module")
def module_world(module_db_url: str) -> World:
    with psycopg.connect(module_db_url, autocommit=True) as conn:
        return make_world(conn)


@pytest.fixture
def world(db: psycopg.Connection[tuple[object, ...]]) -> World:
    return make_world(db)


@pytest.fixture
def base_url(database_url: str, world: World) -> Iterator[str]:
    """The app on a fresh, seeded database, served by uvicorn on a free port."""
    with serve(create_app(settings_for(database_url))) as url:
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
