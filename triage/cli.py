"""``rpmflow-triage``: ``run`` (scheduled service), ``once`` (one pass: tests, demo), ``quality``."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict

import psycopg

from triage import flags_store
from triage.errors import TriageError
from triage.jobs import IncrementalJob, PassReport, daily_pass, silence_pass, utc_now
from triage.service import run
from triage.settings import Settings


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rpmflow-triage", description="rpmflow triage engine: rules → flags.")
    p.add_argument("--database-url", help="PostgreSQL URL (default: $RPMFLOW_DATABASE_URL)")
    p.add_argument("--shards", type=int, help="patient shards (default $RPMFLOW_TRIAGE_SHARDS or 4)")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run the scheduled service until interrupted")
    r.add_argument("--interval-s", type=float, help="incremental pass period in seconds (default 2)")
    r.add_argument("--silence-interval-s", type=float, help="silence check period in seconds (default 300)")
    o = sub.add_parser("once", help="run one incremental pass and print its report as JSON")
    o.add_argument("--all", action="store_true", help="also run the silence and daily (calendar) passes")
    sub.add_parser("quality", help="print each rule's flags, dispositions and PPV")
    sub.add_parser("audit-verify", help="verify the audit trail's hash chain (exit 1 if tampered)",
                   add_help=False)
    return p


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "audit-verify":
        from triage.clinical.audit import audit_verify_main

        return audit_verify_main(argv[1:])
    args = build_parser().parse_args(argv)
    env = dict(os.environ if environ is None else environ)
    if args.database_url:
        env["RPMFLOW_DATABASE_URL"] = args.database_url
    try:
        settings = Settings.from_env(env).with_overrides(
            shards=args.shards,
            interval_s=getattr(args, "interval_s", None),
            silence_interval_s=getattr(args, "silence_interval_s", None),
        )
    except TriageError as exc:
        print(f"rpmflow-triage: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.command == "run":
        run(settings)
        return 0
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
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


def _summary(report: PassReport) -> dict[str, object]:
    out = asdict(report)
    out["flag_ids"] = sorted(set(report.flag_ids))
    return out


if __name__ == "__main__":
    raise SystemExit(main())
