"""``rpmflow-ingest``: ``run`` the consumer, or ``migrate`` the database (as the owner role).

The environment is read once here (``gateway.runtime.settings.load``); the flags, generated from
the same fields, override it. An operator's mistake (a bad setting, a database that refuses us or
stays unreachable past the start-up bound, a port in use) ends in one line and a non-zero exit
(``gateway/runtime/fatal.py``).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import FrameType

import psycopg

from gateway.runtime import settings as rs
from gateway.runtime.fatal import EXIT_CONFIG, Fatal, exit_on_fatal
from gateway.runtime.gc_tuning import tune_gc
from gateway.runtime.retry import Stopped, retry_call, startup_policy
from ingest import timescale
from ingest.consumer import Consumer
from ingest.dberrors import check_url, describe_target, kind_of
from ingest.dbroles import bootstrap_sql
from ingest.migrate import MigrationError, migrate, schema_status
from ingest.receiver import Receiver
from ingest.settings import PREFIX, Settings

log = logging.getLogger("ingest")
PROG = "rpmflow-ingest"


@dataclass(frozen=True)
class MigrateSettings:
    """What ``rpmflow-ingest migrate`` needs: the database and how long to wait for it."""

    database_url: str = rs.database_url_field(check_url)
    auth_timeout_s: float = rs.auth_timeout_field(PREFIX)
    startup_timeout_s: float = rs.startup_timeout_field(PREFIX)
    log_level: str = rs.log_level_field(PREFIX)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="rpmflow MQTT → PostgreSQL ingest service")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="consume readings and statuses until SIGTERM/SIGINT",
                         description="Consume readings and statuses until SIGTERM/SIGINT.")
    rs.add_flags(run, Settings)
    run.add_argument("--no-migrate", action="store_true",
                     help="accepted for compatibility: run never migrates, it checks the schema version")
    mig = sub.add_parser("migrate", help="apply pending schema migrations and the grants, as the owner role",
                         description="Apply pending schema migrations, then every room's grants.sql, and "
                                     "exit. Connect as rpmflow_owner (docs/operations.md).")
    rs.add_flags(mig, MigrateSettings)
    mig.add_argument("--print-bootstrap-sql", action="store_true",
                     help="print the one-time CREATE ROLE/DATABASE script for a DBA and exit (no connection)")
    mig.add_argument("--database", default="rpmflow",
                     help="database name in the bootstrap script (default rpmflow)")
    return p


def _logging(level: str) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def migrate_when_reachable(
    s: Settings | MigrateSettings, stop: threading.Event, environ: Mapping[str, str] | None = None
) -> list[int] | None:
    """Apply migrations, waiting with back-off while PostgreSQL is down (a restart must not kill
    ingest), bounded by the start-up and authentication timeouts; ``None`` when asked to stop.
    TimescaleDB required but unusable, or a malformed ``RPMFLOW_TIMESCALE*``: one line, exit 2."""
    try:
        layer = timescale.settings_from_env(os.environ if environ is None else environ)
        return retry_call(lambda: migrate(s.database_url, layer),
                          what=f"cannot migrate {describe_target(s.database_url)}",
                          classify=kind_of, policy=startup_policy(s.auth_timeout_s, s.startup_timeout_s),
                          stop=stop)
    except Stopped:
        return None
    except (timescale.TimescaleError, timescale.TimescaleSettingsError) as exc:
        raise Fatal(str(exc), exit_code=EXIT_CONFIG) from None


def schema_when_reachable(s: Settings, stop: threading.Event) -> bool:
    """Wait (bounded, as for migrate) until the database answers, then check that its schema is at
    this release's version: a service role cannot migrate, the owner does. False when stopped."""

    def check() -> None:
        with psycopg.connect(s.database_url, connect_timeout=10) as conn:
            status = schema_status(conn)
        if not status.current:
            raise MigrationError(status.describe())

    try:
        retry_call(check, what=f"cannot reach {describe_target(s.database_url)}", classify=kind_of,
                   policy=startup_policy(s.auth_timeout_s, s.startup_timeout_s), stop=stop)
    except Stopped:
        return False
    return True


def _stop_event() -> threading.Event:
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: draining and stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    return stop


def _main(argv: Sequence[str] | None, environ: Mapping[str, str]) -> int:
    args = _parser().parse_args(argv)
    if args.command == "migrate":
        if args.print_bootstrap_sql:
            sys.stdout.write(bootstrap_sql(args.database))
            return 0
        ms = rs.load(MigrateSettings, environ, args)
        _logging(ms.log_level)
        applied = migrate_when_reachable(ms, _stop_event(), environ)
        if applied is None:
            return 0
        print(f"applied {len(applied)} migration(s): {applied}")
        return 0
    settings = rs.load(Settings, environ, args)
    _logging(settings.log_level)
    stop = _stop_event()
    if not schema_when_reachable(settings, stop):
        return 0
    consumer = Receiver(settings) if settings.workers else Consumer(settings)
    tune_gc()  # paho's per-message MQTT v5 properties and parsed JSON: gateway/runtime/gc_tuning.py
    consumer.run(stop)
    log.info("stopped")
    return 0


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    return exit_on_fatal(PROG, lambda: _main(argv, os.environ if environ is None else environ))


if __name__ == "__main__":
    raise SystemExit(main())
