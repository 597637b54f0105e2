"""Fixtures the triage store tests share."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from simulators.embedded_postgres import DatabaseUrls


@pytest.fixture
def as_dashboard(database_urls: DatabaseUrls) -> Iterator[psycopg.Connection[Any]]:
    """A connection as the dashboard's own role: the stores' reads must work under its grants."""
    with psycopg.connect(database_urls.dashboard, autocommit=True) as conn:
        yield conn
