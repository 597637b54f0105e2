"""``rpmflow-triage``: ``run`` (scheduled service), ``once`` (one pass: tests, demo), ``quality``,
``billing`` (the monthly billing computation, :mod:`triage.billing.cli`)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict

import psycopg

from gateway.runtime import settings as rs
from gateway.runtime.fatal import Fatal, exit_on_fatal, one_line
from ingest.dberrors import describe_target
from triage import flags_store
from triage.billing import cli as billing_cli
from triage.jobs import IncrementalJob, PassReport, daily_pass, silence_pass, utc_now
from triage.service import run
from triage.settings import Settings

PROG = "rpmflow-triage"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="rpmflow triage engine: rules → flags.")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run the scheduled service until interrupted",
                       description="Run the scheduled service until interrupted.")
    rs.add_flags(r, Settings)
    o = sub.add_parser("once", help="run one incremental pass and print its report as JSON",
                       description="Run one incremental pass and print its report as JSON.")
    rs.add_flags(o, Settings)
    o.add_argument("--all", action="store_true", help="also run the silence and daily (calendar) passes")
    q = sub.add_parser("quality", help="print each rule's flags, dispositions and PPV")
    rs.add_flags(q, Settings)
    rs.add_flags(billing_cli.add_parser(sub), Settings)
    sub.add_parser("audit-verify", help="verify the audit trail's hash chain (exit 1 if tampered)",
                   add_help=False)
    return p


def configure_logging(level: str) -> None:
    """The service's lines at ``level``; APScheduler's routine "Running job …" (every pass) only
    when debugging."""
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if level != "DEBUG":
        logging.getLogger("apscheduler").setLevel(logging.WARNING)


def _main(argv: list[str], environ: Mapping[str, str]) -> int:
    args = build_parser().parse_args(argv)
    settings = rs.load(Settings, environ, args)
    configure_logging(settings.log_level)
    if args.command == "run":
        run(settings)
        return 0
    try:
        conn = psycopg.connect(settings.database_url, autocommit=True, connect_timeout=10)
    except psycopg.Error as exc:
        target = describe_target(settings.database_url)
        raise Fatal(f"cannot connect to {target}: {one_line(str(exc))}") from None
    with conn:
        if args.command == "billing":
            return billing_cli.billing_main(conn, args)
        if args.command == "quality":
            for row in flags_store.rule_quality(conn):
                print(json.dumps(row, default=str))
            return 0
        report = IncrementalJob(settings).run(conn)
        if args.all:
            now = utc_now()
            report.add(silence_pass(conn, now))
            report.add(daily_pass(conn, settings, now))
        print(json.dumps(_summary(report)))
    return 0


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "audit-verify":
        from triage.clinical.audit import audit_verify_main

        return audit_verify_main(argv[1:])
    if argv and argv[0] == "audit-anchor":
        from triage.clinical.audit_anchor import audit_anchor_main

        return audit_anchor_main(argv[1:])
    env = os.environ if environ is None else environ
    return exit_on_fatal(PROG, lambda: _main(argv, env))


def _summary(report: PassReport) -> dict[str, object]:
    out = asdict(report)
    out["flag_ids"] = sorted(set(report.flag_ids))
    return out


if __name__ == "__main__":
    raise SystemExit(main())
