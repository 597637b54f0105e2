"""The sign-in throttle's counters in PostgreSQL, so every dashboard process counts the same hits.

A ``limits`` storage backend (the library has none for PostgreSQL) holding the moving windows of
:mod:`dashboards.throttle` in ``throttle_hits`` (migration 0078), one row per hit, written through
the dashboard's own role. Each key is changed under a transaction-scoped advisory lock, so two
processes hitting the same account at once cannot both take the last free entry of a rung. Rows
older than their window are deleted when their key is next hit. Only the moving-window interface
is implemented: the fixed-window calls raise, since nothing here uses them.
"""

from __future__ import annotations

import time
from typing import Any

import psycopg
from limits.storage import MovingWindowSupport, Storage
from psycopg_pool import ConnectionPool

LOCK_NAMESPACE = 0x7468  # "th": advisory-lock class id of throttle keys


class PostgresThrottleStorage(Storage, MovingWindowSupport):
    """Moving windows shared by every process that connects to the same database."""

    STORAGE_SCHEME = None  # built with a pool, never from a URI

    def __init__(self, pool: ConnectionPool[Any]) -> None:
        super().__init__()
        self._pool = pool

    @property
    def base_exceptions(self) -> type[Exception]:
        return psycopg.Error

    def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        if amount > limit:
            return False
        now = time.time()  # the library computes resets from time.time(): the same clock
        with self._pool.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (LOCK_NAMESPACE, key))
            conn.execute("DELETE FROM throttle_hits WHERE key = %s AND at < %s", (key, now - expiry))
            row = conn.execute("SELECT count(*) FROM throttle_hits WHERE key = %s", (key,)).fetchone()
            if row is None or int(row[0]) + amount > limit:
                return False
            conn.execute("INSERT INTO throttle_hits (key, at) SELECT %s, %s FROM generate_series(1, %s)",
                         (key, now, amount))
        return True

    def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        now = time.time()
        with self._pool.connection() as conn:
            row = conn.execute("SELECT min(at), count(*) FROM throttle_hits WHERE key = %s AND at >= %s",
                               (key, now - expiry)).fetchone()
        if row is None or not row[1]:
            return now, 0
        return float(row[0]), int(row[1])

    def clear(self, key: str) -> None:
        with self._pool.connection() as conn:
            conn.execute("DELETE FROM throttle_hits WHERE key = %s", (key,))

    def reset(self) -> int | None:
        with self._pool.connection() as conn:
            return int(conn.execute("DELETE FROM throttle_hits").rowcount)

    def check(self) -> bool:
        try:
            with self._pool.connection() as conn:
                conn.execute("SELECT 1 FROM throttle_hits LIMIT 1")
        except psycopg.Error:
            return False
        return True

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        raise NotImplementedError("PostgresThrottleStorage keeps moving windows only")

    def get(self, key: str) -> int:
        raise NotImplementedError("PostgresThrottleStorage keeps moving windows only")

    def get_expiry(self, key: str) -> float:
        raise NotImplementedError("PostgresThrottleStorage keeps moving windows only")
