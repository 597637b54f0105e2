"""The connection pool the app shares, and small helpers to read rows as dicts.

Connections keep psycopg's default tuple rows, because triage's functions (audit, lifecycle
store, review, promotion) index rows by position; our own reads ask for dict rows per cursor.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from dashboards.settings import Settings

Conn = psycopg.Connection[tuple[Any, ...]]


def make_pool(settings: Settings) -> ConnectionPool[Conn]:
    """A closed pool; the app opens it at start-up and closes it at shutdown."""
    return ConnectionPool(
        settings.database_url,
        min_size=settings.pool_min_size,
        max_size=settings.pool_max_size,
        open=False,
        name="rpmflow-dashboard",
        kwargs={"application_name": "rpmflow-dashboard"},
    )


def fetch_all(conn: Conn, query: str, params: Any = None) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query, params)
        return cur.fetchall()


def fetch_batch(conn: Conn, reads: Sequence[tuple[str, Any]]) -> list[list[dict[str, Any]]]:
    """Several independent reads in one round trip (psycopg's pipeline mode): on a loaded machine
    each wait for the server is a wait for a CPU too, so a page's reads go out together."""
    cursors = []
    with conn.pipeline():
        for query, params in reads:
            cur = conn.cursor(row_factory=dict_row)
            cur.execute(query, params)
            cursors.append(cur)
    try:
        return [cur.fetchall() for cur in cursors]
    finally:
        for cur in cursors:
            cur.close()


def fetch_one(conn: Conn, query: str, params: Any = None) -> dict[str, Any] | None:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query, params)
        return cur.fetchone()
