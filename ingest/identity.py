"""One running ingest process per MQTT identity, checked before it connects and while it runs.

The broker binds each client id to its username (``use_username_as_clientid``), so an MQTT
account *is* one persistent session. A second process started with the same account would
connect, take that session over and cut the first one off; paho reconnects, and the two would
take the session from each other for ever, each time redelivering the other's un-acked messages.
Mosquitto 2.0 just closes the older connection (no reason code to tell a takeover from a network
drop), so the guard is on our side: before connecting, ingest takes a PostgreSQL session-level
advisory lock named after its identity and keeps it for its lifetime. A second process finds it
taken and refuses to start with one line naming the holder. A background thread re-checks the
lock's connection; after a database restart it takes the lock again, and if another process got
it in between, this one stops.
"""

from __future__ import annotations

import logging
import threading

import psycopg

from gateway.runtime.fatal import EXIT_CONFIG, Fatal
from gateway.runtime.retry import retry_call, startup_policy
from ingest.dberrors import describe_target, kind_of
from ingest.errors import IngestError, TerminalError

log = logging.getLogger(__name__)

NAMESPACE = 0x6D71  # "mq": advisory-lock class id of ingest's MQTT identities
_CHECK_EVERY_S = 5.0


class IdentityTaken(IngestError, TerminalError, Fatal):
    """Another running ingest process holds this MQTT identity (exit 2: a configuration mistake)."""

    exit_code = EXIT_CONFIG

    def __init__(self, identity: str, holder: str) -> None:
        Fatal.__init__(self, f"MQTT identity {identity!r} is in use by another ingest process ({holder}): "
                             "each ingest process needs its own MQTT account (its username is its client id "
                             "and its session; docs/operations.md §4)")
        self.identity = identity
        self.holder = holder


class IdentityLock:
    """The advisory lock on ``identity``, held on a connection of its own for the process's life."""

    def __init__(self, database_url: str, identity: str, *, application_name: str,
                 auth_timeout_s: float = 30.0, startup_timeout_s: float = 60.0) -> None:
        self.identity = identity
        self._url = database_url
        self._app = application_name
        self._policy = startup_policy(auth_timeout_s, startup_timeout_s)
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.taken: IdentityTaken | None = None  # set by the watch thread: the owner stops

    def acquire(self) -> None:
        """Take the lock or raise :class:`IdentityTaken` (the database is waited for as at start-up);
        then watch it on a daemon thread."""
        retry_call(self._take, what=f"cannot check the MQTT identity lock in {describe_target(self._url)}",
                   classify=kind_of, policy=self._policy)
        self._thread = threading.Thread(target=self._watch, name="ingest-identity", daemon=True)
        self._thread.start()

    @property
    def held(self) -> bool:
        return self._conn is not None

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        self._close()

    def _take(self) -> None:
        conn = psycopg.connect(self._url, autocommit=True, connect_timeout=10, application_name=self._app)
        row = conn.execute("SELECT pg_try_advisory_lock(%s, hashtext(%s))",
                           (NAMESPACE, self.identity)).fetchone()
        if row is None or not row[0]:
            holder = _holder(conn, self.identity)
            conn.close()
            raise IdentityTaken(self.identity, holder)
        self._conn = conn

    def _watch(self) -> None:
        while not self._stop.wait(_CHECK_EVERY_S):
            if self._alive():
                continue
            self._close()
            try:
                self._take()
                log.info("MQTT identity %s: lock taken again after losing its database connection",
                         self.identity)
            except IdentityTaken as exc:
                log.error("%s", exc)
                self.taken = exc
                return
            except psycopg.Error as exc:  # database still away: keep the broker session, try later
                log.warning("MQTT identity %s: cannot re-check its lock yet: %s", self.identity,
                            str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)

    def _alive(self) -> bool:
        conn = self._conn
        if conn is None or conn.closed:
            return False
        try:
            conn.execute("SELECT 1")
        except psycopg.Error:
            return False
        return True

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.closed:
            conn.close()


def _holder(conn: psycopg.Connection[tuple[object, ...]], identity: str) -> str:
    """Who holds the lock, as far as this role may see (its own sessions: same role, same view)."""
    row = conn.execute(
        "SELECT a.application_name, a.client_addr::text, a.pid FROM pg_locks l"
        " JOIN pg_stat_activity a ON a.pid = l.pid"
        " WHERE l.locktype = 'advisory' AND l.granted AND l.classid = %s::oid"
        " AND l.objid = hashtext(%s)::oid AND l.objsubid = 2",
        (NAMESPACE, identity),
    ).fetchone()
    if row is None:
        return "holder not visible to this role"
    app, addr, pid = row
    return f"{app or 'no application name'} from {addr or 'a local socket'}, database pid {pid}"
