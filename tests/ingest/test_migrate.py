"""The migration runner: rooms found by entry point, checksums per applied file, grants that cannot drift."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import psycopg
import pytest

from ingest import migrate as m
from ingest.dbroles import ALL_ROLES, SERVICE_ROLES, bootstrap_sql, check_service_roles
from simulators.embedded_postgres import DatabaseUrls

Conn = psycopg.Connection[Any]


def _cli(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RPMFLOW_")}
    env["RPMFLOW_DATABASE_URL"] = url
    env["RPMFLOW_MQTT_URL"] = "mqtt://nobody:x@127.0.0.1:9"  # never reached: the schema check comes first
    return subprocess.run([sys.executable, "-m", "ingest.cli", *args], env=env, capture_output=True,
                          text=True, timeout=120, check=False)


def test_each_room_holds_the_sql_of_its_own_tables() -> None:
    by_room: dict[str, list[str]] = {}
    for mig in m.available():
        by_room.setdefault(mig.room, []).append(mig.sql)
    assert set(by_room) == {"ingest.migrations", "triage.migrations", "dashboards.migrations"}
    owned = {
        "ingest.migrations": ["readings", "devices", "dead_letters", "gateway_status", "reading_keys"],
        "triage.migrations": ["patients", "device_assignments", "flags", "enrolments", "reviews",
                              "billable_events", "audit_log"],
        "dashboards.migrations": ["users", "dashboard_sessions", "api_tokens"],
    }
    for room, tables in owned.items():
        text = "\n".join(by_room[room])
        for table in tables:
            assert f"CREATE TABLE {table} (" in text, f"{table} is not created in {room}"
    versions = [x.version for x in m.available()]
    assert versions == sorted(versions) and len(versions) == len(set(versions))


def test_the_runner_reads_other_rooms_without_importing_their_code() -> None:
    probe = ("import sys, ingest.migrate as m; m.available(); m.grant_files();"
             "print(sorted(n for n in sys.modules if n.split('.')[0] in ('triage', 'dashboards')))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    loaded = eval(out.stdout)  # noqa: S307 - our own probe's printed list
    assert set(loaded) <= {"triage", "triage.migrations", "dashboards", "dashboards.migrations"}, loaded


def test_migrate_records_a_checksum_per_file(db: Conn) -> None:
    rows = dict(db.execute("SELECT version, sha256 FROM schema_migrations").fetchall())
    assert rows == {x.version: x.sha256 for x in m.available()}


def test_a_changed_applied_file_stops_migrate_with_one_line(database_urls: DatabaseUrls, db: Conn) -> None:
    audit = next(x for x in m.available() if x.name == "audit")
    db.execute("UPDATE schema_migrations SET sha256 = repeat('0', 64) WHERE version = %s", (audit.version,))
    out = _cli("migrate", url=database_urls.owner)
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "triage/migrations/0033_audit.sql was changed" in lines[0], out.stderr
    with pytest.raises(m.ChangedMigration, match=r"0033_audit\.sql"):
        m.migrate(database_urls.owner)


def test_a_migration_this_code_does_not_ship_is_refused(database_urls: DatabaseUrls, db: Conn) -> None:
    db.execute("INSERT INTO schema_migrations (version, name, sha256) VALUES (9999, 'future', 'x')")
    with pytest.raises(m.UnknownMigration, match="9999_future"):
        m.migrate(database_urls.owner)


def test_a_database_migrated_before_checksums_is_adopted_once(database_urls: DatabaseUrls, db: Conn) -> None:
    # As the previous release left it: no sha256 column, and 0001 held what is now 0001 + 0002.
    db.execute("ALTER TABLE schema_migrations DROP COLUMN sha256")
    db.execute("DELETE FROM schema_migrations WHERE version = 2")
    assert m.migrate(database_urls.owner) == []
    rows = dict(db.execute("SELECT version, sha256 FROM schema_migrations").fetchall())
    assert rows == {x.version: x.sha256 for x in m.available()}


def test_grants_are_reapplied_so_they_cannot_drift(database_urls: DatabaseUrls, db: Conn) -> None:
    db.execute("GRANT DELETE ON readings TO rpmflow_ingest")
    db.execute("GRANT UPDATE ON audit_log TO rpmflow_dashboard")
    db.execute("REVOKE INSERT ON readings FROM rpmflow_ingest")
    m.migrate(database_urls.owner)

    def has(role: str, table: str, priv: str) -> bool:
        row = db.execute("SELECT has_table_privilege(%s, %s, %s)", (role, table, priv)).fetchone()
        return bool(row and row[0])

    assert not has("rpmflow_ingest", "readings", "DELETE")
    assert not has("rpmflow_dashboard", "audit_log", "UPDATE")
    assert has("rpmflow_ingest", "readings", "INSERT")


def test_service_roles_hold_no_power_beyond_their_grants(db: Conn) -> None:
    assert check_service_roles(db) == []
    for role in SERVICE_ROLES:
        for table in ("audit_log", "audit_chain_head"):
            for priv in ("UPDATE", "DELETE", "TRUNCATE"):
                row = db.execute("SELECT has_table_privilege(%s, %s, %s)", (role, table, priv)).fetchone()
                assert row == (False,), (role, table, priv)
    for table in ("users", "dashboard_sessions", "api_tokens", "dashboard_sign_ins"):
        row = db.execute("SELECT has_table_privilege('rpmflow_ingest', %s, 'SELECT')", (table,)).fetchone()
        assert row == (False,), f"ingest can read {table}"
    for role in ("rpmflow_triage", "rpmflow_reporting"):
        row = db.execute("SELECT has_column_privilege(%s, 'users', 'password_hash', 'SELECT')",
                         (role,)).fetchone()
        assert row == (False,), f"{role} can read password hashes"
    reporting = db.execute(
        "SELECT count(*) FROM information_schema.role_table_grants WHERE grantee = 'rpmflow_reporting'"
        " AND privilege_type <> 'SELECT'").fetchone()
    assert reporting == (0,)


def test_a_superuser_service_role_is_reported(db: Conn) -> None:
    db.execute("ALTER ROLE rpmflow_reporting CREATEDB")
    try:
        expected = "role rpmflow_reporting has CREATEDB (ALTER ROLE rpmflow_reporting NOCREATEDB)"
        assert check_service_roles(db) == [expected]
    finally:
        db.execute("ALTER ROLE rpmflow_reporting NOCREATEDB")


def test_ingest_refuses_to_run_on_a_schema_behind_this_code(database_urls: DatabaseUrls, db: Conn) -> None:
    db.execute("DELETE FROM schema_migrations WHERE version = (SELECT max(version) FROM schema_migrations)")
    out = _cli("run", url=database_urls.ingest)
    assert out.returncode == 1
    assert out.stderr.strip().splitlines()[-1].startswith("rpmflow-ingest: schema at "), out.stderr
    assert "run `rpmflow-ingest migrate` as the owner role" in out.stderr
    assert "Traceback" not in out.stderr


def test_bootstrap_sql_names_every_role_and_needs_no_superuser() -> None:
    out = subprocess.run([sys.executable, "-m", "ingest.cli", "migrate", "--print-bootstrap-sql"],
                         capture_output=True, text=True, check=True)
    text = out.stdout
    assert text == bootstrap_sql("rpmflow")
    for role in ALL_ROLES:
        assert f"CREATE ROLE {role} LOGIN NOSUPERUSER" in text
    assert "CREATE DATABASE \"rpmflow\" OWNER rpmflow_owner;" in text
    assert "SUPERUSER " not in text.replace("NOSUPERUSER", "")
    # TimescaleDB's one superuser step is in the same script, commented out (optional).
    assert "\n--   CREATE EXTENSION IF NOT EXISTS timescaledb;\n" in text
    assert "\nCREATE EXTENSION" not in text


def test_every_table_has_grants_and_reporting_reads_all_but_credentials(db: Conn) -> None:
    """A new table without its lines in a grants.sql fails here, not in production."""
    credentials = {"dashboard_sessions", "api_tokens", "dashboard_sign_ins", "throttle_hits",
                   "user_mfa", "mfa_recovery_codes", "mfa_challenges"}  # second factor (0093)
    rows = db.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'v', 'p', 'm') ORDER BY 1").fetchall()
    ungranted, unreadable = [], []
    for (table,) in rows:
        privileged = [_can_read(db, role, table) for role in SERVICE_ROLES[:3]]
        if not any(privileged):
            ungranted.append(table)
        if _can_read(db, "rpmflow_reporting", table) == (table in credentials):
            unreadable.append(table)
    assert ungranted == [], f"tables no service may use: add them to their room's grants.sql: {ungranted}"
    assert unreadable == [], f"reporting reads credentials or misses a table: {unreadable}"


def _can_read(db: Conn, role: str, table: str) -> bool:
    row = db.execute("SELECT has_any_column_privilege(%s, %s, 'SELECT')", (role, table)).fetchone()
    return bool(row and row[0])
