"""Fixtures the triage store tests share."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from simulators.embedded_postgres import DatabaseUrls

Conn = psycopg.Connection[Any]


def _as(url: str) -> Iterator[Conn]:
    with psycopg.connect(url, autocommit=True) as conn:
        yield conn


@pytest.fixture
def as_triage(database_urls: DatabaseUrls) -> Iterator[Conn]:
    yield from _as(database_urls.triage)


@pytest.fixture
def as_dashboard(database_urls: DatabaseUrls) -> Iterator[Conn]:
    yield from _as(database_urls.dashboard)


@pytest.fixture
def as_ingest(database_urls: DatabaseUrls) -> Iterator[Conn]:
    yield from _as(database_urls.ingest)
