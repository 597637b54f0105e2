"""``rpmflow-dashboard``: serve the web app, or create users and API tokens from the shell."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from collections.abc import Mapping, Sequence

import psycopg

from dashboards.passwords import hash_password
from dashboards.sessions import create_token
from dashboards.settings import Settings, SettingsError
from triage.clinical import people

ROLES = ("nurse", "clinician", "billing", "admin")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="rpmflow-dashboard",
        description="rpmflow web dashboard. Configuration comes from RPMFLOW_DATABASE_URL and "
        "RPMFLOW_DASHBOARD_* variables; flags override them.",
    )
    p.add_argument("--database-url", help="PostgreSQL URL (default: $RPMFLOW_DATABASE_URL)")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="serve the dashboard with uvicorn")
    run.add_argument("--host", help="bind address (default: $RPMFLOW_DASHBOARD_HOST or 127.0.0.1)")
    run.add_argument("--port", type=int, help="port (default: $RPMFLOW_DASHBOARD_PORT or 8000)")
    run.add_argument("--session-idle-minutes", type=float, help="automatic logoff after this idle time")
    run.add_argument("--insecure-cookies", action="store_true",
                     help="drop the Secure cookie flag (plain-HTTP local demo only)")
    run.add_argument("--max-body-bytes", type=int, help="413 above this (default 1 MiB)")
    run.add_argument("--header-timeout", type=float, help="seconds a request head may take (default 10)")
    run.add_argument("--keep-alive", type=float, help="seconds an idle connection stays open (default 5)")
    run.add_argument("--log-level", default="info")

    cu = sub.add_parser("create-user", help="create a dashboard user with a password")
    cu.add_argument("--username", required=True)
    cu.add_argument("--role", required=True, choices=ROLES)
    pw = cu.add_mutually_exclusive_group(required=True)
    pw.add_argument("--password", help="initial password (visible to `ps`: prefer --password-stdin)")
    pw.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    cu.add_argument("--display-name", help="name shown in the UI (default: the username)")
    cu.add_argument("--npi", help="10-digit NPI (clinicians)")
    cu.add_argument("--qhp", action="store_true", help="physician or qualified health professional")

    ct = sub.add_parser("create-token", help="create an API token for a user and print it once")
    ct.add_argument("--username", required=True)
    ct.add_argument("--name", default="cli", help="label shown on the account page")
    return p


def _settings(args: argparse.Namespace, environ: Mapping[str, str]) -> Settings:
    env = dict(environ)
    if args.database_url:
        env["RPMFLOW_DATABASE_URL"] = args.database_url
    settings = Settings.from_env(env)
    overrides: dict[str, object] = {}
    if getattr(args, "host", None):
        overrides["host"] = args.host
    if getattr(args, "port", None) is not None:
        overrides["port"] = args.port
    if getattr(args, "session_idle_minutes", None) is not None:
        overrides["session_idle_minutes"] = args.session_idle_minutes
    for flag, key in (("max_body_bytes", "max_body_bytes"), ("header_timeout", "header_timeout_seconds"),
                      ("keep_alive", "keep_alive_seconds")):
        if getattr(args, flag, None) is not None:
            overrides[key] = getattr(args, flag)
    if getattr(args, "insecure_cookies", False):
        overrides["secure_cookies"] = False
    return dataclasses.replace(settings, **overrides)  # type: ignore[arg-type]


def _run(settings: Settings, log_level: str) -> int:
    import uvicorn

    from dashboards.app import create_app

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if not settings.secure_cookies:
        logging.getLogger(__name__).warning("session cookies are not marked Secure: use only over localhost")
    from dashboards.limits import server_options

    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level=log_level,
                timeout_graceful_shutdown=3, proxy_headers=False, **server_options(settings))
    return 0


def _create_user(settings: Settings, args: argparse.Namespace) -> int:
    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else args.password
    if len(password) < 12:
        print("password must have at least 12 characters", file=sys.stderr)
        return 2
    with psycopg.connect(settings.database_url) as conn:
        try:
            uid = people.create_user(
                conn, username=args.username, display_name=args.display_name or args.username,
                role=args.role, password_hash=hash_password(password), npi=args.npi,
                is_physician_or_qhp=args.qhp,
            )
        except (people.InvalidPerson, psycopg.errors.UniqueViolation) as exc:
            print(f"cannot create user: {exc}", file=sys.stderr)
            return 1
    print(f"created user {args.username} (id {uid}, role {args.role})")
    return 0


def _create_token(settings: Settings, args: argparse.Namespace) -> int:
    with psycopg.connect(settings.database_url) as conn:
        row = conn.execute(
            "SELECT user_id FROM users WHERE username = %s AND active", (args.username,)
        ).fetchone()
        if row is None:
            print(f"no active user {args.username}", file=sys.stderr)
            return 1
        _, token = create_token(conn, int(row[0]), args.name)
    print(token)
    return 0


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = _settings(args, os.environ if environ is None else environ)
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    if args.command == "run":
        return _run(settings, args.log_level)
    if args.command == "create-user":
        return _create_user(settings, args)
    return _create_token(settings, args)


if __name__ == "__main__":
    raise SystemExit(main())
