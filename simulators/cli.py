"""``rpmflow-sim``: the outside world on demand (demo, embedded servers, fleets, patients)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

from gateway.runtime import settings as rs
from gateway.runtime.fatal import exit_on_fatal
from simulators.settings import DemoSettings


def _demo(args: argparse.Namespace) -> int:
    from simulators.demo import run_demo

    s = rs.load(DemoSettings, os.environ, args)
    return run_demo(gateways=s.gateways, port=s.port, interval_s=s.interval_s, duration_s=s.duration_s,
                    bluez=s.bluez)


def _stack(args: argparse.Namespace) -> int:
    from simulators.stack import start_stack

    stack = start_stack(gateways=args.gateway or [])
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        urls = stack.database_urls
        for role in ("owner", "ingest", "triage", "dashboard", "reporting"):
            print(f"RPMFLOW_DATABASE_URL={getattr(urls, role)}   # {role}")
        print(f"RPMFLOW_MQTT_URL={stack.mosquitto.ingest_url}   # the ingest account")
        for gw in stack.mosquitto.gateway_ids:
            print(f"gateway {gw}: {stack.mosquitto.url_for(gw)}")
        print("Ctrl-C stops both servers and deletes their data.", flush=True)
        stop.wait()
    finally:
        stack.destroy()
    return 0


def _fleet(rest: list[str]) -> int:
    from simulators.fleet_cli import fleet_main

    return fleet_main(rest)


def _chaos(rest: list[str]) -> int:
    from simulators.chaos_cli import chaos_main

    return chaos_main(rest)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="rpmflow-sim",
        description="Simulated world for rpmflow: the whole-pipeline demo, embedded servers, fleets.",
    )
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="run the whole pipeline on embedded servers with simulated gateways")
    rs.add_flags(d, DemoSettings)
    s = sub.add_parser("stack", help="start an embedded PostgreSQL + Mosquitto and print their URLs")
    s.add_argument("--gateway", action="append", help="provision a gateway account (repeatable)")
    sub.add_parser("fleet", help="fleet load generator (see `rpmflow-sim fleet --help`)", add_help=False)
    sub.add_parser("chaos", help="whole-pipeline chaos run (see `rpmflow-sim chaos --help`)", add_help=False)
    return p


def main(argv: list[str] | None = None) -> int:
    return exit_on_fatal("rpmflow-sim", lambda: _main(argv))


def _main(argv: list[str] | None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "fleet":
        return _fleet(argv[1:])
    if argv and argv[0] == "chaos":
        return _chaos(argv[1:])
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        return _demo(args)
    return _stack(args)


if __name__ == "__main__":
    raise SystemExit(main())
