"""``rpmflow-dashboard``: serve the web app, or create users and API tokens and enrol devices on
gateways from the shell."""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg

from dashboards import password_policy
from dashboards.passwords import hash_password
from dashboards.sessions import create_token
from dashboards.settings import PREFIX, Settings
from gateway.runtime import settings as rs
from gateway.runtime.fatal import EXIT_LOCAL, Fatal, exit_on_fatal, one_line
from gateway.runtime.gc_tuning import tune_gc
from gateway.runtime.settings import SettingError
from ingest.dberrors import check_url, describe_target, wait_for_database
from triage.clinical import device_enrolments, people, people_store

ROLES = ("nurse", "clinician", "billing", "admin")


PROG = "rpmflow-dashboard"


@dataclass(frozen=True)
class AdminSettings:
    """What the shell commands (create-user, create-token, enrol-device) need."""

    database_url: str = rs.database_url_field(check_url)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="rpmflow web dashboard. Configuration comes from RPMFLOW_DATABASE_URL and "
        "RPMFLOW_DASHBOARD_* variables; flags override them.",
    )
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="serve the dashboard with uvicorn", description="Serve the dashboard.")
    rs.add_flags(run, Settings)

    cu = sub.add_parser("create-user", help="create a dashboard user with a password")
    rs.add_flags(cu, AdminSettings)
    cu.add_argument("--username", required=True)
    cu.add_argument("--role", required=True, choices=ROLES)
    pw = cu.add_mutually_exclusive_group(required=True)
    pw.add_argument("--password", help="initial password (visible to `ps`: prefer --password-stdin)")
    pw.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    cu.add_argument("--display-name", help="name shown in the UI (default: the username)")
    cu.add_argument("--npi", help="10-digit NPI (clinicians)")
    cu.add_argument("--qhp", action="store_true", help="physician or qualified health professional")

    ct = sub.add_parser("create-token", help="create an API token for a user and print it once")
    rs.add_flags(ct, AdminSettings)
    ct.add_argument("--username", required=True)
    ct.add_argument("--name", default="cli", help="label shown on the account page")

    en = sub.add_parser("enrol-device", help="enrol a device on a gateway (audited; ingest accepts its "
                        "readings only from that gateway)")
    rs.add_flags(en, AdminSettings)
    en.add_argument("--device-id", required=True)
    en.add_argument("--gateway-id", required=True)
    en.add_argument("--kind", default="blood_pressure", choices=device_enrolments.KINDS)
    en.add_argument("--manufacturer")
    en.add_argument("--model")
    en.add_argument("--firmware")
    en.add_argument("--from", dest="valid_from", type=_aware, help="ISO 8601 with offset (default: now)")
    en.add_argument("--reason", required=True, help="why (kept in the history and the audit trail)")
    en.add_argument("--move", action="store_true", help="re-enrol: move it from the gateway it is on now")
    en.add_argument("--by", default=os.environ.get("USER") or "cli", help="who (default: $USER)")
    return p


def _aware(value: str) -> datetime:
    at = datetime.fromisoformat(value)
    if at.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{value!r} needs a UTC offset, e.g. 2026-01-31T09:00:00+00:00")
    return at


def _enrol_device(settings: AdminSettings, args: argparse.Namespace) -> int:
    device = device_enrolments.Device(args.device_id, args.kind, args.manufacturer, args.model, args.firmware)
    with _connect(settings.database_url) as conn:
        try:
            at = args.valid_from or datetime.now(UTC)
            eid = device_enrolments.enrol(conn, device, args.gateway_id, at=at, by=args.by,
                                          reason=args.reason, move=args.move)
        except device_enrolments.EnrolmentRefused as exc:
            print(f"cannot enrol: {exc}", file=sys.stderr)
            return 1
    print(f"enrolled device {args.device_id} on gateway {args.gateway_id} (enrolment {eid})")
    return 0


def _listen_check(host: str, port: int) -> None:
    """Bind once before uvicorn does: a port already in use is one line and exit 4, not a
    uvicorn error after start-up."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise SettingError("host", f"cannot resolve {host!r}: {exc.strerror}", env=PREFIX + "HOST",
                           flag="--host") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            raise Fatal(f"cannot listen on {host}:{port}: {exc.strerror or exc} "
                        f"({PREFIX}PORT, flag --port)", exit_code=EXIT_LOCAL) from None


def _run(settings: Settings) -> int:
    import uvicorn

    from dashboards.app import create_app

    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    _listen_check(settings.host, settings.port)
    wait_for_database(settings.database_url, application_name="rpmflow-dashboard",
                      auth_timeout_s=settings.auth_timeout_s, startup_timeout_s=settings.startup_timeout_s)
    if not settings.secure_cookies:
        logging.getLogger(__name__).warning("session cookies are not marked Secure: use only over localhost")
    from dashboards.limits import server_options

    app = create_app(settings)
    tune_gc()  # a full collection inside a request was the queue page's whole p99
    uvicorn.run(app, host=settings.host, port=settings.port,
                log_level=settings.log_level.lower(), timeout_graceful_shutdown=3, proxy_headers=False,
                **server_options(settings))
    return 0


def _connect(url: str) -> psycopg.Connection[tuple[Any, ...]]:
    try:
        return psycopg.connect(url, connect_timeout=10)
    except psycopg.Error as exc:
        raise Fatal(f"cannot connect to {describe_target(url)}: {one_line(str(exc))}") from None


def _create_user(settings: AdminSettings, args: argparse.Namespace) -> int:
    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else args.password
    if (weak := password_policy.problem(password, args.username)) is not None:
        print(f"rpmflow-dashboard: {weak}", file=sys.stderr)
        return 2
    with _connect(settings.database_url) as conn:
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


def _create_token(settings: AdminSettings, args: argparse.Namespace) -> int:
    with _connect(settings.database_url) as conn:
        user_id = people_store.active_user_id(conn, args.username)
        if user_id is None:
            print(f"no active user {args.username}", file=sys.stderr)
            return 1
        _, token = create_token(conn, user_id, args.name)
    print(token)
    return 0


def _main(argv: Sequence[str] | None, environ: Mapping[str, str]) -> int:
    args = _parser().parse_args(argv)
    if args.command == "run":
        return _run(rs.load(Settings, environ, args))
    admin = rs.load(AdminSettings, environ, args)
    if args.command == "create-user":
        return _create_user(admin, args)
    if args.command == "enrol-device":
        return _enrol_device(admin, args)
    return _create_token(admin, args)


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    return exit_on_fatal(PROG, lambda: _main(argv, os.environ if environ is None else environ))


if __name__ == "__main__":
    raise SystemExit(main())
