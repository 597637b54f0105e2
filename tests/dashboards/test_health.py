"""/healthz is ready only at the expected schema version; a missing schema never answers 500."""

from __future__ import annotations

import secrets
from typing import Any

import httpx
import psycopg

from dashboards.app import create_app
from ingest.dbroles import OWNER_ROLE
from ingest.migrate import available
from simulators.embedded_postgres import DatabaseUrls
from simulators.stack import Stack
from tests.dashboards.conftest import settings_for
from tests.dashboards.live import csrf_of, serve


def test_healthz_is_ready_at_the_expected_version(
    database_urls: DatabaseUrls, db: psycopg.Connection[Any]
) -> None:
    app = create_app(settings_for(database_urls.dashboard))
    with serve(app) as url, httpx.Client(base_url=url) as client:
        ok = client.get("/healthz")
        assert (ok.status_code, ok.json()["status"]) == (200, "ok")
        assert isinstance(ok.json().get("timescaledb_jobs_failing", []), list)  # detail (TimescaleDB jobs)
        db.execute("DELETE FROM schema_migrations WHERE version = %s", (max(m.version for m in available()),))
        behind = client.get("/healthz")
        assert behind.status_code == 503
        assert behind.json()["status"] == "not ready"
        reason = behind.json()["reason"]
        assert "1 migration(s) pending: run `rpmflow-ingest migrate` as the owner role" in reason


def test_an_unmigrated_database_is_not_ready_and_sign_in_answers_503(stack: Stack) -> None:
    name = f"empty_{secrets.token_hex(4)}"
    with psycopg.connect(stack.postgres.url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" OWNER {OWNER_ROLE}')
    urls = stack.postgres.urls(name)
    with serve(create_app(settings_for(urls.dashboard))) as url, httpx.Client(base_url=url) as client:
        health = client.get("/healthz")
        assert health.status_code == 503
        assert health.json()["reason"].startswith("schema not migrated, expected ")
        page = client.get("/login")
        assert page.status_code == 200
        signed = client.post("/login", data={"username": "nurse", "password": "x" * 12,
                                             "csrf_token": csrf_of(page.text), "next": ""})
        assert signed.status_code == 503
        assert "not ready" in signed.text
