"""Versioned schema migrations for the one store every server component shares, and its grants.

Each component keeps the SQL of the tables whose meaning it owns in its own ``migrations``
package (ingest: readings, devices, dead letters, gateway status; triage: patients, flags,
people, reviews, billing, audit; dashboards: users, sessions, tokens). The packages are found
through the ``rpmflow.migrations`` entry-point group (pyproject.toml), so this runner imports no
triage or dashboard code: it only reads their SQL files. Every ``NNNN_name.sql`` runs once, in
its own transaction, in global version order; ``schema_migrations`` keeps the sha256 of each
applied file and a changed file stops the run. After the files, every room's ``grants.sql`` is
applied in one transaction that first revokes everything from the service roles, so the grants
are exactly what the files say on every run and cannot drift. Before the grants, the optional
TimescaleDB layer (ingest/timescale.py) is applied when the extension is installed and preloaded,
and skipped with a log line otherwise, so the same queries run on both.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
from dataclasses import dataclass
from importlib import metadata, resources
from typing import Any

import psycopg

from gateway.runtime.fatal import Fatal
from ingest import timescale as ts
from ingest.dbroles import SERVICE_ROLES, check_service_roles, missing_roles

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "rpmflow.migrations"
# Used only when the entry points are not installed (an editable install made before the group
# existed): the same three rooms, so a stale install still migrates completely.
_BUILT_IN_ROOMS = ("ingest.migrations", "triage.migrations", "dashboards.migrations")
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_LOCK_KEY = 0x72706D66  # "rpmf": one migrator at a time across processes
# Before checksums, 0001_core held what is now ingest's 0001 and triage's 0002.
_SPLIT_FROM = {2: 1}


class MigrationError(Fatal):
    """The schema cannot be brought up to date (or is behind): one line for the operator, exit 1."""

    exit_code = 1


class ChangedMigration(MigrationError):
    """An applied migration file differs from the one recorded."""


class UnknownMigration(MigrationError):
    """The database has a migration this code does not ship (a newer rpmflow migrated it)."""


class MissingRoles(MigrationError):
    """The service roles the grants name do not exist yet (the bootstrap SQL was not run)."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    room: str  # the package that holds the file, e.g. "triage.migrations"
    sql: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    @property
    def path(self) -> str:
        return f"{self.room.replace('.', '/')}/{self.version:04d}_{self.name}.sql"


@dataclass(frozen=True)
class SchemaStatus:
    """How far a database is from the schema this code expects."""

    applied: int | None  # highest applied version, None when never migrated
    expected: int
    pending: tuple[int, ...]

    @property
    def current(self) -> bool:
        return not self.pending

    def describe(self) -> str:
        at = "not migrated" if self.applied is None else f"at {self.applied:04d}"
        if self.current:
            return f"schema {at} (expected {self.expected:04d})"
        return (f"schema {at}, expected {self.expected:04d}; {len(self.pending)} migration(s) pending: "
                "run `rpmflow-ingest migrate` as the owner role")


def rooms() -> list[str]:
    """The migration packages, from the entry-point group (built-in list if none installed)."""
    found = sorted({ep.value for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)})
    if not found:
        log.warning("no %s entry points installed (stale install? re-run pip install -e .): "
                    "using the built-in rooms", ENTRY_POINT_GROUP)
        return list(_BUILT_IN_ROOMS)
    return found


def available() -> list[Migration]:
    found = []
    for room in rooms():
        for entry in resources.files(room).iterdir():
            m = _NAME.match(entry.name)
            if m:
                found.append(Migration(int(m.group(1)), m.group(2), room, entry.read_text(encoding="utf-8")))
    found.sort(key=lambda x: x.version)
    by_version: dict[int, Migration] = {}
    for mig in found:
        if mig.version in by_version:
            raise MigrationError(
                f"two migrations share number {mig.version:04d}: "
                f"{by_version[mig.version].path} and {mig.path}"
            )
        by_version[mig.version] = mig
    return found


def grant_files() -> list[tuple[str, str]]:
    """(path, sql) of every room's grants.sql, in room order."""
    out = []
    for room in rooms():
        entry = resources.files(room) / "grants.sql"
        if entry.is_file():
            out.append((f"{room.replace('.', '/')}/grants.sql", entry.read_text(encoding="utf-8")))
    return out


def expected_version() -> int:
    return max(m.version for m in available())


@functools.cache
def _shipped() -> tuple[Migration, ...]:
    """The files do not change under a running process: read them once for health checks."""
    return tuple(available())


def schema_status(conn: psycopg.Connection[Any]) -> SchemaStatus:
    """Read-only: what is applied against what this code ships (any role with SELECT may ask)."""
    known = _shipped()
    exists = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
    done: set[int] = set()
    if exists and exists[0]:
        done = {int(r[0]) for r in conn.execute("SELECT version FROM schema_migrations")}
    return SchemaStatus(
        applied=max(done) if done else None,
        expected=known[-1].version,
        pending=tuple(m.version for m in known if m.version not in done),
    )


def migrate(conninfo: str, timescale: ts.Settings | None = None, *, up_to: int | None = None) -> list[int]:
    """Apply pending migrations, the TimescaleDB layer, then the grants; returns the versions
    applied now. ``timescale`` defaults to the ``RPMFLOW_TIMESCALE*`` variables
    (ingest/timescale.py); ``up_to`` stops after that version, without the TimescaleDB layer or
    the grants (tests and benchmarks of an older layout). The layer comes before the grants
    because it may replace objects they name (``readings_daily`` becomes a continuous aggregate)."""
    settings = ts.settings_from_env() if timescale is None else timescale
    known = [m for m in available() if up_to is None or m.version <= up_to]
    grants = grant_files()
    applied_now: list[int] = []
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        paused: list[int] = []
        try:
            done = _ledger(conn, known)
            if any(m.version not in done for m in known):
                paused = ts.pause_jobs(conn)
            for mig in known:
                if mig.version in done:
                    continue
                with conn.transaction():
                    conn.execute(mig.sql.encode())
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name, sha256) VALUES (%s, %s, %s)",
                        (mig.version, mig.name, mig.sha256),
                    )
                log.info("applied migration %s", mig.path)
                applied_now.append(mig.version)
            if up_to is None:  # an older layout gets neither the layer nor today's grants
                ts.apply(conn, settings)
                apply_grants(conn, grants)
        finally:
            if not conn.closed:
                ts.resume_jobs(conn, paused)
                conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied_now


def _ledger(conn: psycopg.Connection[Any], known: list[Migration]) -> set[int]:
    """The applied versions, after checking every recorded checksum against the files."""
    with conn.transaction():
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now(), sha256 text)"
        )
        _adopt_unchecked(conn, {m.version: m for m in known})
        rows = conn.execute("SELECT version, name, sha256 FROM schema_migrations ORDER BY version").fetchall()
    by_version = {m.version: m for m in known}
    for version, name, digest in rows:
        mig = by_version.get(version)
        if mig is None:
            raise UnknownMigration(
                f"the database has migration {version:04d}_{name}, which this rpmflow does not ship "
                "(migrated by a newer version?)"
            )
        if digest != mig.sha256:
            raise ChangedMigration(
                f"{mig.path} was changed after it was applied (recorded sha256 {str(digest)[:12]}…, file "
                f"{mig.sha256[:12]}…): restore it and put the change in a new migration"
            )
    return {int(r[0]) for r in rows}


def _adopt_unchecked(conn: psycopg.Connection[Any], known: dict[int, Migration]) -> None:
    """A database migrated before checksums existed: record today's checksums once (logged)."""
    if conn.execute(
        "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema()"
        " AND table_name = 'schema_migrations' AND column_name = 'sha256'"
    ).fetchone() is None:
        conn.execute("ALTER TABLE schema_migrations ADD COLUMN sha256 text")
    rows = conn.execute("SELECT version FROM schema_migrations WHERE sha256 IS NULL").fetchall()
    unchecked = {int(r[0]) for r in rows}
    if not unchecked:
        return
    for new, old in _SPLIT_FROM.items():
        if old in unchecked and new in known:
            conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                (new, known[new].name),
            )
            unchecked.add(new)
    for version in sorted(unchecked):
        if version in known:
            conn.execute("UPDATE schema_migrations SET sha256 = %s WHERE version = %s",
                         (known[version].sha256, version))
    log.info("recorded checksums for %d migration(s) applied before checksums existed", len(unchecked))


def apply_grants(conn: psycopg.Connection[Any], grants: list[tuple[str, str]]) -> None:
    """Revoke everything from the service roles, then grant what each room's grants.sql says."""
    absent = missing_roles(conn)
    if absent:
        raise MissingRoles(
            f"database role(s) {', '.join(absent)} do not exist: a DBA runs the output of "
            "`rpmflow-ingest migrate --print-bootstrap-sql` once (docs/operations.md)"
        )
    roles = ", ".join(SERVICE_ROLES)
    with conn.transaction():
        conn.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {roles}")
        conn.execute(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {roles}")
        conn.execute(f"GRANT SELECT ON schema_migrations TO {roles}")
        for path, sql in grants:
            try:
                conn.execute(sql.encode())
            except psycopg.Error as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise MigrationError(f"{path} failed: {first}") from exc
    problems = check_service_roles(conn)
    if problems:
        raise MigrationError("; ".join(problems))
    log.info("grants applied from %d file(s)", len(grants))
