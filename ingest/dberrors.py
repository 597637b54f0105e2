"""PostgreSQL errors classified once, for ingest, triage and the dashboard.

Every service that talks to the database asks :func:`kind_of` what a psycopg error means for
retrying (:class:`~gateway.runtime.retry.ErrorKind`), and waits for its database at start-up with
:func:`wait_for_database`. By SQLSTATE class when the server sent one:

======================  =====================  ===============================================
class / code            kind                   examples
======================  =====================  ===============================================
08xxx, 57Pxx, 57014     transient              connection lost, admin shutdown, cannot connect now
53xxx, 58xxx            transient              too many connections, disk full, I/O error
40001, 40P01, 55P03     transient              serialization failure, deadlock, lock not available
28xxx                   authentication         invalid password, invalid authorization
3D000                   permanent              the database does not exist
anything else           permanent              syntax, undefined table, privilege, data errors
======================  =====================  ===============================================

A connection attempt that fails carries no SQLSTATE at all (libpq builds the message without a
result; psycopg issue #1188), so for those, and only those, the server's (English) message is
read: authentication and missing-database failures are recognised, and anything else (refused,
timed out, host not found) is transient, which the callers bound at start-up.
"""

from __future__ import annotations

import logging
import re
import threading
from urllib.parse import urlsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict

from gateway.runtime.fatal import one_line
from gateway.runtime.retry import ErrorKind, retry_call, startup_policy

log = logging.getLogger(__name__)

_TRANSIENT_CLASSES = frozenset({"08", "53", "57", "58"})
_TRANSIENT_CODES = frozenset({"40001", "40P01", "55P03"})
MISSING_DATABASE = "3D000"
_AUTH_TEXT = re.compile(
    r"password authentication failed|no password supplied|no pg_hba\.conf entry|authentication failed"
    r"|role \"[^\"]*\" does not exist|permission denied for database"
)
_MISSING_DB_TEXT = re.compile(r"database \"[^\"]*\" does not exist")


def kind_by_sqlstate(sqlstate: str) -> ErrorKind:
    if sqlstate[:2] == "28":
        return ErrorKind.AUTHENTICATION
    if sqlstate == MISSING_DATABASE:
        return ErrorKind.PERMANENT
    if sqlstate[:2] in _TRANSIENT_CLASSES or sqlstate in _TRANSIENT_CODES:
        return ErrorKind.TRANSIENT
    return ErrorKind.PERMANENT


def kind_of(exc: BaseException) -> ErrorKind | None:
    """How to retry a psycopg error; ``None`` for anything that is not one."""
    if not isinstance(exc, psycopg.Error):
        return None
    if exc.sqlstate:
        return kind_by_sqlstate(exc.sqlstate)
    if isinstance(exc, psycopg.ProgrammingError):  # a malformed connection string, a client-side misuse
        return ErrorKind.PERMANENT
    if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        text = str(exc)
        if _AUTH_TEXT.search(text):
            return ErrorKind.AUTHENTICATION
        if _MISSING_DB_TEXT.search(text):
            return ErrorKind.PERMANENT
        return ErrorKind.TRANSIENT
    return ErrorKind.PERMANENT


def url_problem(url: str) -> str | None:
    """Why a database URL cannot work, or ``None``: checked before any connection is tried."""
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        return f"not a PostgreSQL URL or conninfo string: {one_line(str(exc), 120)}"
    if url.startswith(("postgresql:", "postgres:")):
        try:
            urlsplit(url).port  # noqa: B018  (raises on a port that is not a number)
        except ValueError as exc:
            return f"bad port in the URL: {exc}"
    ports = str(params.get("port") or "")
    for port in filter(None, ports.split(",")):
        if not port.isdigit() or not 1 <= int(port) <= 65535:
            return f"port must be a number 1..65535, got {port!r}"
    return None


def check_url(url: str) -> str | None:
    """A settings ``check``: the reason a database URL is unusable, without echoing its password."""
    problem = url_problem(url)
    return None if problem is None else f"{problem}; expected postgresql://user:password@host:port/database"


def describe_target(url: str) -> str:
    """``host:port/dbname`` for log lines: never the password."""
    try:
        p = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "the database"
    return f"PostgreSQL at {p.get('host') or 'localhost'}:{p.get('port') or 5432}/{p.get('dbname') or ''}"


def wait_for_database(url: str, *, auth_timeout_s: float, startup_timeout_s: float,
                      stop: threading.Event | None = None, application_name: str = "rpmflow") -> None:
    """Connect once, retrying within the start-up bounds; raises
    :class:`~gateway.runtime.retry.GaveUp` (one line: what, why, for how long) or
    :class:`~gateway.runtime.retry.Stopped`."""
    policy = startup_policy(auth_timeout_s, startup_timeout_s)

    def attempt() -> None:
        psycopg.connect(url, connect_timeout=5, application_name=application_name).close()

    retry_call(attempt, what=f"cannot connect to {describe_target(url)}", classify=kind_of, policy=policy,
               stop=stop)
