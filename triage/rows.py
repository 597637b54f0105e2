"""Rows as dicts, for the stores whose callers read columns by name (the dashboards' templates)."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row


def dict_rows(conn: psycopg.Connection[Any], sql: str, params: Any = None) -> list[dict[str, Any]]:
    """Run one statement on the caller's connection; every row as a column-name → value dict."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def dict_one(conn: psycopg.Connection[Any], sql: str, params: Any = None) -> dict[str, Any] | None:
    """Run one statement on the caller's connection; its first row as a dict, None for no row."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(sql, params)
        return cur.fetchone()
