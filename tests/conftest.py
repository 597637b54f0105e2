"""Session fixtures: our own PostgreSQL and Mosquitto on free loopback ports.

Each test that needs the database gets a fresh database cloned from a migrated template (fast,
isolated). Tests that stop or kill a server ask for ``private_postgres`` / ``private_broker`` so
their outage cannot disturb other tests.
"""

from __future__ import annotations

import contextlib
import itertools
import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from ingest.dbroles import OWNER_ROLE
from ingest.migrate import migrate
from simulators.embedded_mosquitto import EmbeddedMosquitto
from simulators.embedded_postgres import DatabaseUrls, EmbeddedPostgres
from simulators.stack import Stack, start_stack

TEMPLATE_DB = "rpmflow_template"
_db_counter = itertools.count()


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    s = start_stack(durable=False)  # a throwaway cluster: no fsync (EmbeddedPostgres.durable)
    try:
        admin = s.postgres.url.rsplit("/", 1)[0] + "/postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{TEMPLATE_DB}" OWNER {OWNER_ROLE}')
        s.postgres.create_timescale_extension(TEMPLATE_DB)
        migrate(s.postgres.urls(TEMPLATE_DB).owner)  # as the owner role, as an operator does
        with psycopg.connect(admin, autocommit=True) as conn:
            _close_template(conn)
        yield s
    finally:
        s.destroy()


def _close_template(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """No sessions on the template, so CREATE DATABASE … TEMPLATE can copy it: with TimescaleDB
    its scheduler connects to every database that allows connections."""
    conn.execute(f'ALTER DATABASE "{TEMPLATE_DB}" ALLOW_CONNECTIONS false')
    conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (TEMPLATE_DB,))


def clone_database(pg: EmbeddedPostgres, name: str) -> DatabaseUrls:
    """A copy of the migrated template (owned by rpmflow_owner, grants included), per role."""
    base = pg.url.rsplit("/", 1)[0]
    with psycopg.connect(base + "/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE_DB}" OWNER {OWNER_ROLE}')
    return pg.urls(name)


def drop_database(pg: EmbeddedPostgres, name: str) -> None:
    """Dropped after its test, so the session's cluster stays small (thousands of copies of the
    template made its final clean-up outlast the test timeout). FORCE ends what a test left behind."""
    base = pg.url.rsplit("/", 1)[0]
    with psycopg.connect(base + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def database_urls(stack: Stack) -> Iterator[DatabaseUrls]:
    """A fresh, migrated database of the session's PostgreSQL: ``.superuser`` to seed and inspect,
    ``.owner`` to migrate, ``.ingest``/``.triage``/``.dashboard``/``.reporting`` for the services."""
    name = f"t{next(_db_counter)}_{secrets.token_hex(3)}"
    urls = clone_database(stack.postgres, name)
    yield urls
    with contextlib.suppress(psycopg.OperationalError):  # a test that left the server down
        drop_database(stack.postgres, name)


@pytest.fixture
def database_url(database_urls: DatabaseUrls) -> str:
    """The fresh database as the cluster superuser (test set-up and inspection, not services)."""
    return database_urls.superuser


@pytest.fixture
def db(database_url: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        yield conn


@pytest.fixture
def broker(stack: Stack) -> EmbeddedMosquitto:
    """The session's broker (do not stop it: use ``private_broker`` for outages)."""
    return stack.mosquitto


@pytest.fixture
def gateway_id(broker: EmbeddedMosquitto) -> str:
    """A freshly provisioned gateway account, unique to this test."""
    gw = f"gw-{secrets.token_hex(4)}"
    broker.add_gateways([gw])
    return gw


@pytest.fixture
def private_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedMosquitto]:
    """A broker of this test's own, which the test may stop, kill and restart."""
    b = EmbeddedMosquitto.create()
    b.start()
    try:
        yield b
    finally:
        b.destroy()


@pytest.fixture
def private_postgres() -> Iterator[EmbeddedPostgres]:
    """A migrated PostgreSQL cluster of this test's own, which the test may stop and restart."""
    pg = EmbeddedPostgres.create(durable=False)
    pg.start()
    try:
        migrate(pg.urls().owner)
        yield pg
    finally:
        pg.destroy()


@pytest.fixture
def artifacts_dir(request: pytest.FixtureRequest) -> Path:
    """Where a test keeps screenshots and reports (kept after the run, under test-artifacts/)."""
    root = Path(__file__).resolve().parent.parent / "test-artifacts"
    name = str(request.node.name)
    d = root / name.replace("/", "_").replace("[", "_").replace("]", "")
    d.mkdir(parents=True, exist_ok=True)
    return d
