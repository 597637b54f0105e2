"""Database connection helpers shared by ingest and the components downstream of it.

Everything that talks to PostgreSQL maps driver errors here, in one place, onto the ingest error
tree: connection-level trouble becomes :class:`~ingest.errors.DatabaseUnavailable` (transient),
and a refused value becomes :class:`~ingest.errors.RowRefused` (terminal for that row only).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from ingest.errors import DatabaseUnavailable, RowRefused

# SQLSTATE classes that mean "try again later": connection exception, insufficient resources,
# operator intervention (shutdown, crash recovery), serialization failure / deadlock.
_TRANSIENT_CLASSES = ("08", "53", "57", "40", "58")

Connection = psycopg.Connection[tuple[Any, ...]]


def connect(conninfo: str, *, autocommit: bool = False, connect_timeout: int = 5,
            application_name: str = "rpmflow") -> Connection:
    """A plain connection; raises DatabaseUnavailable when the server cannot be reached."""
    with map_errors():
        return psycopg.connect(
            conninfo, autocommit=autocommit, connect_timeout=connect_timeout,
            application_name=application_name,
        )


def pool(conninfo: str, *, min_size: int = 1, max_size: int = 4, name: str = "rpmflow") -> ConnectionPool:
    """A connection pool (opened); callers use ``with pool.connection() as conn``."""
    p = ConnectionPool(
        conninfo, min_size=min_size, max_size=max_size, name=name, open=False,
        kwargs={"application_name": name, "connect_timeout": 5},
    )
    p.open(wait=False)
    return p


def is_refusal(exc: BaseException) -> bool:
    """A data/constraint error about *these values* (class 22/23), not about the connection."""
    return isinstance(exc, psycopg.DataError | psycopg.IntegrityError)


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        return True
    state = getattr(exc, "sqlstate", None)
    return isinstance(state, str) and state[:2] in _TRANSIENT_CLASSES


@contextlib.contextmanager
def map_errors() -> Iterator[None]:
    """Translate psycopg exceptions at the I/O edge (the httpx ``map_exceptions`` idea)."""
    try:
        yield
    except psycopg.Error as exc:
        if is_refusal(exc):
            raise RowRefused(f"{exc.sqlstate or 'client'}: {str(exc).strip()[:500]}", exc.sqlstate) from exc
        # Anything else (connection lost, shutdown, deadlock, even a missing table during a
        # deployment) is retried: the batch stays un-acked in the broker, nothing is lost.
        raise DatabaseUnavailable(f"{type(exc).__name__}: {str(exc).strip()[:500]}") from exc
