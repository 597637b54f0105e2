"""Database connection helpers shared by ingest and the components downstream of it.

Everything that talks to PostgreSQL maps driver errors here, in one place, onto the ingest error
tree: connection-level trouble becomes :class:`~ingest.errors.DatabaseUnavailable` (transient),
and a refused value becomes :class:`~ingest.errors.RowRefused` (terminal for that row only). What
each PostgreSQL error means for retrying is decided in ``ingest/dberrors.py`` alone.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from gateway.runtime.retry import Backoff, ErrorKind, RetryPolicy
from ingest.dberrors import kind_of
from ingest.errors import DatabaseUnavailable, RowRefused

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


def retry_kind(exc: psycopg.Error) -> ErrorKind:
    """For a batch in hand: refused credentials and a missing database are bounded
    (``ingest/dberrors.py``); anything else, even a missing table during a deployment, is retried
    until it works, because the batch stays un-acked in the broker and nothing is lost."""
    kind = kind_of(exc)
    if kind is ErrorKind.AUTHENTICATION:
        return kind
    connecting = exc.sqlstate is None and not isinstance(exc, psycopg.DataError | psycopg.IntegrityError)
    if kind is ErrorKind.PERMANENT and (exc.sqlstate == "3D000" or connecting):
        return kind  # the database does not exist, or the connection string cannot work
    return ErrorKind.TRANSIENT


COMMIT_BACKOFF = Backoff(base_s=0.2, cap_s=5.0)


def commit_kind(exc: BaseException) -> ErrorKind | None:
    """``classify`` for retrying a batch commit: only :class:`DatabaseUnavailable` is retried."""
    return exc.kind if isinstance(exc, DatabaseUnavailable) else None


def commit_policy(auth_timeout_s: float) -> RetryPolicy:
    """A batch in hand is retried for as long as the database is down (nothing is acked, the
    broker holds the rest); refused credentials only for ``auth_timeout_s``."""
    return RetryPolicy(COMMIT_BACKOFF, auth_timeout_s=auth_timeout_s)


@contextlib.contextmanager
def map_errors() -> Iterator[None]:
    """Translate psycopg exceptions at the I/O edge (the httpx ``map_exceptions`` idea)."""
    try:
        yield
    except psycopg.Error as exc:
        if is_refusal(exc):
            raise RowRefused(f"{exc.sqlstate or 'client'}: {str(exc).strip()[:500]}", exc.sqlstate) from exc
        reason = f"{type(exc).__name__}: {str(exc).strip()[:500]}"
        raise DatabaseUnavailable(reason, retry_kind(exc)) from exc
