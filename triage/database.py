"""One connection for the one-shot commands (``once``, ``replay``, ``billing``, ``audit-verify``,
``audit-anchor``): a server that refuses us is one line naming the target, never its password,
and exit 3 like the services' bounded start-up (:mod:`gateway.runtime.fatal`)."""

from __future__ import annotations

from typing import Any

import psycopg

from gateway.runtime.fatal import Fatal, one_line
from ingest.dberrors import describe_target


def connect(url: str, *, autocommit: bool = True) -> psycopg.Connection[tuple[Any, ...]]:
    """Connect once (10 s bound): a one-shot command does not wait for a server to come back."""
    try:
        return psycopg.connect(url, autocommit=autocommit, connect_timeout=10)
    except psycopg.Error as exc:
        raise Fatal(f"cannot connect to {describe_target(url)}: {one_line(str(exc))}") from None
