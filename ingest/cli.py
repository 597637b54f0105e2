"""``rpmflow-ingest``: ``run`` the consumer, or ``migrate`` the database.

The environment is read once here (``Settings.from_env``); flags override it.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

import psycopg

from ingest.consumer import Consumer
from ingest.migrate import migrate
from ingest.receiver import Receiver
from ingest.settings import Settings, SettingsError

log = logging.getLogger("ingest")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rpmflow-ingest", description="rpmflow MQTT → PostgreSQL ingest service")
    p.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="consume readings and statuses until SIGTERM/SIGINT")
    run.add_argument("--database-url", help="overrides RPMFLOW_DATABASE_URL")
    run.add_argument("--mqtt-url", help="overrides RPMFLOW_INGEST_MQTT_URL / RPMFLOW_MQTT_URL")
    run.add_argument("--client-id", help="fixed MQTT client id (one per process; reuse it on restart)")
    run.add_argument("--group", help="shared-subscription group")
    run.add_argument(
        "--shared",
        action="store_true",
        default=None,
        help="subscribe through $share/<group>/ (run several processes; see docs/ingest.md)",
    )
    run.add_argument("--batch-size", type=int, help="messages per commit (default 500)")
    run.add_argument(
        "--batch-ms", type=int, help="max wait of the oldest message before a commit (default 200)"
    )
    run.add_argument("--receive-maximum", type=int, help="MQTT v5 Receive Maximum (default 2000)")
    run.add_argument("--workers", type=int,
                     help="worker processes behind the MQTT receiver, 0 = in-process (default 1)")
    run.add_argument("--send-acks", action=argparse.BooleanOptionalAction, default=None,
                     help="publish commit acks to rpm/v1/<gw>/acks (default on; RPMFLOW_INGEST_SEND_ACKS)")
    run.add_argument("--metrics-port", type=int, help="Prometheus port, 0 = off (default 0)")
    run.add_argument("--no-migrate", action="store_true", help="do not apply pending migrations at start")
    mig = sub.add_parser("migrate", help="apply pending schema migrations and exit")
    mig.add_argument("--database-url", help="overrides RPMFLOW_DATABASE_URL")
    return p


def _tune_gc() -> None:
    """Fewer cyclic-GC passes: each message makes dozens of short-lived containers (paho's MQTT v5
    properties, the parsed JSON), and with up to Receive Maximum messages held, the default
    thresholds made collections a large share of the receive thread's time. Reference counting
    still frees everything acyclic at once; imported modules are frozen out of the scans."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    env = dict(os.environ)
    if args.database_url:
        env["RPMFLOW_DATABASE_URL"] = args.database_url
    if args.command == "migrate":
        url = env.get("RPMFLOW_DATABASE_URL")
        if not url:
            print("rpmflow-ingest: RPMFLOW_DATABASE_URL (or --database-url) is required", file=sys.stderr)
            return 2
        applied = migrate(url)
        print(f"applied {len(applied)} migration(s): {applied}")
        return 0
    if args.mqtt_url:
        env["RPMFLOW_INGEST_MQTT_URL"] = args.mqtt_url
    try:
        settings = Settings.from_env(env).override(
            client_id=args.client_id,
            group=args.group,
            shared=args.shared,
            batch_size=args.batch_size,
            batch_ms=args.batch_ms,
            receive_maximum=args.receive_maximum,
            metrics_port=args.metrics_port,
            workers=args.workers,
            send_acks=args.send_acks,
        )
    except SettingsError as exc:
        print(f"rpmflow-ingest: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: draining and stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    if not args.no_migrate and not _migrate_when_reachable(settings.database_url, stop):
        return 0
    consumer = Receiver(settings) if settings.workers else Consumer(settings)
    _tune_gc()
    consumer.run(stop)
    log.info("stopped")
    return 0


def _migrate_when_reachable(url: str, stop: threading.Event, max_wait_s: float = 30.0) -> bool:
    """Apply migrations, waiting with back-off while PostgreSQL is down (a restart must not kill
    ingest); False when asked to stop first."""
    wait = 0.5
    while True:
        try:
            migrate(url)
            return True
        except psycopg.OperationalError as exc:
            log.warning("database not reachable for migrations (%s); retrying in %.1f s", exc, wait)
        if stop.wait(wait):
            return False
        wait = min(wait * 2, max_wait_s)


if __name__ == "__main__":
    raise SystemExit(main())
