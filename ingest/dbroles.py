"""The database roles rpmflow runs as, the one-time bootstrap SQL, and the least-privilege check.

One owner role owns every table and runs ``migrate``; each service logs in as its own role with
only the grants its code needs (each room's ``migrations/grants.sql``); a reporting role reads.
Roles are created once by a DBA (CREATEROLE and CREATEDB suffice, no superuser) with the SQL from
``rpmflow-ingest migrate --print-bootstrap-sql``, so migrate itself never needs CREATEROLE.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import psycopg

OWNER_ROLE = "rpmflow_owner"
INGEST_ROLE = "rpmflow_ingest"
TRIAGE_ROLE = "rpmflow_triage"
DASHBOARD_ROLE = "rpmflow_dashboard"
REPORTING_ROLE = "rpmflow_reporting"
SERVICE_ROLES = (INGEST_ROLE, TRIAGE_ROLE, DASHBOARD_ROLE, REPORTING_ROLE)
ALL_ROLES = (OWNER_ROLE, *SERVICE_ROLES)
# Built-in roles that read or write server files or run programs on the database host.
DANGEROUS_BUILTINS = ("pg_execute_server_program", "pg_read_server_files", "pg_write_server_files")
_ATTRIBUTES = "NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"


def _password_clause(role: str, passwords: Mapping[str, str] | None) -> str:
    if passwords is None:
        return f"PASSWORD :'{role.removeprefix('rpmflow_')}_password'"  # a psql variable
    return "PASSWORD '" + passwords[role].replace("'", "''") + "'"


def bootstrap_statements(database: str = "rpmflow", passwords: Mapping[str, str] | None = None) -> list[str]:
    """The statements, one each (CREATE DATABASE cannot share a transaction).

    Without ``passwords`` the passwords are psql variables (``psql -v owner_password=…``).
    """
    db = '"' + database.replace('"', '""') + '"'
    services = ", ".join(SERVICE_ROLES[:3])
    stmts = [f"CREATE ROLE {r} LOGIN {_ATTRIBUTES} {_password_clause(r, passwords)}" for r in ALL_ROLES]
    stmts += [
        # A CREATEROLE DBA must be a member of the owner role to give it a database.
        f"GRANT {OWNER_ROLE} TO CURRENT_USER",
        f"CREATE DATABASE {db} OWNER {OWNER_ROLE}",
        f"REVOKE ALL ON DATABASE {db} FROM PUBLIC",
        f"GRANT CONNECT, TEMPORARY ON DATABASE {db} TO {services}",
        f"GRANT CONNECT ON DATABASE {db} TO {REPORTING_ROLE}",
        f"REVOKE {OWNER_ROLE} FROM CURRENT_USER",
    ]
    return stmts


def bootstrap_sql(database: str = "rpmflow") -> str:
    """A psql script for ``--print-bootstrap-sql``."""
    variables = " ".join(f"-v {r.removeprefix('rpmflow_')}_password=…" for r in ALL_ROLES)
    head = [
        "-- rpmflow database bootstrap: run once, as a role with CREATEROLE and CREATEDB (superuser",
        "-- not needed), then run `rpmflow-ingest migrate` as rpmflow_owner. Passwords are psql variables:",
        f"--   psql -h HOST -U DBA -d postgres {variables} -f bootstrap.sql",
        "\\set ON_ERROR_STOP on",
    ]
    db = '"' + database.replace('"', '""') + '"'
    tail = [
        "-- Optional, TimescaleDB only: as a superuser (TimescaleDB is not a trusted extension), once, in",
        "-- the new database, on a server that preloads it (shared_preload_libraries = 'timescaledb').",
        "-- Without it rpmflow runs on plain PostgreSQL; migrate says which (docs/operations.md).",
        f"--   \\connect {db}",
        "--   CREATE EXTENSION IF NOT EXISTS timescaledb;",
    ]
    return "\n".join(head + [s + ";" for s in bootstrap_statements(database)] + tail) + "\n"


def missing_roles(conn: psycopg.Connection[Any]) -> list[str]:
    have = {r[0] for r in conn.execute("SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)",
                                       (list(SERVICE_ROLES),))}
    return [r for r in SERVICE_ROLES if r not in have]


def check_service_roles(conn: psycopg.Connection[Any]) -> list[str]:
    """Why a service role has more power than a service may (empty: least privilege holds)."""
    problems = []
    for role, superuser, createrole, createdb, bypass in conn.execute(
        "SELECT rolname, rolsuper, rolcreaterole, rolcreatedb, rolbypassrls FROM pg_roles"
        " WHERE rolname = ANY(%s) ORDER BY rolname", (list(SERVICE_ROLES),)
    ):
        for flag, attr in ((superuser, "SUPERUSER"), (createrole, "CREATEROLE"), (createdb, "CREATEDB"),
                           (bypass, "BYPASSRLS")):
            if flag:
                problems.append(f"role {role} has {attr} (ALTER ROLE {role} NO{attr})")
    rows = conn.execute(
        "SELECT r.rolname, b.rolname FROM pg_roles r JOIN pg_roles b ON pg_has_role(r.oid, b.oid, 'MEMBER')"
        " WHERE r.rolname = ANY(%s) AND b.rolname = ANY(%s) ORDER BY 1, 2",
        (list(SERVICE_ROLES), [*DANGEROUS_BUILTINS, OWNER_ROLE]),
    )
    problems += [f"role {r} is a member of {b} (REVOKE {b} FROM {r})" for r, b in rows]
    rows = conn.execute(
        "SELECT r.rolname, count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner"
        " WHERE r.rolname = ANY(%s) GROUP BY 1 ORDER BY 1", (list(SERVICE_ROLES),)
    )
    problems += [f"role {r} owns {n} table(s)/index(es): services must own nothing" for r, n in rows]
    for role in SERVICE_ROLES:
        if conn.execute("SELECT has_schema_privilege(%s, 'public', 'CREATE')", (role,)).fetchone() == (True,):
            problems.append(f"role {role} may CREATE in schema public (REVOKE CREATE ON SCHEMA public ...)")
    return problems
