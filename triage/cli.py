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
from datetime import UTC, datetime, timedelta

from gateway.runtime import settings as rs
from gateway.runtime.fatal import Fatal, exit_on_fatal
from triage import flags_store
from triage.billing import cli as billing_cli
from triage.database import connect
from triage.jobs import IncrementalJob, PassReport, daily_pass, silence_pass, utc_now
from triage.replay import as_of_pass, replay
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
    o.add_argument("--as-of", type=instant, metavar="TIME",
                   help="triage as of this past UTC instant (e.g. 2026-03-04T08:00Z): value rules over "
                        "readings measured by then, flags stamped then; with --all also the daily rules "
                        "(not the silences)")
    rp = sub.add_parser("replay", help="triage a range of history as it happened, step by step",
                        description="Replay triage over [--from, --to]: every --step the value rules as "
                                    "of then, the daily rules at their hour; flags are stamped when they "
                                    "would have been raised. Watermarks are not moved; re-running changes "
                                    "nothing.")
    rs.add_flags(rp, Settings)
    rp.add_argument("--from", dest="start", type=instant, required=True, metavar="TIME", help="UTC start")
    rp.add_argument("--to", dest="end", type=instant, required=True, metavar="TIME", help="UTC end")
    rp.add_argument("--step", type=duration, default=timedelta(hours=1), metavar="DURATION",
                    help="evaluation step, e.g. 15m, 1h, 1d (default 1h)")
    q = sub.add_parser("quality", help="print each rule's flags, dispositions and PPV")
    rs.add_flags(q, Settings)
    rs.add_flags(billing_cli.add_parser(sub), Settings)
    sub.add_parser("audit-verify", help="verify the audit trail's hash chain (exit 1 if tampered)",
                   add_help=False)
    return p


def instant(text: str) -> datetime:
    """An ISO 8601 instant with its offset (``Z`` or ``+hh:mm``), as UTC; naive times are refused."""
    try:
        t = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r} (e.g. 2026-03-04T08:00Z)") from None
    if t.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no UTC offset (add Z or +hh:mm)")
    return t.astimezone(UTC)


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration(text: str) -> timedelta:
    """``30s``, ``15m``, ``1h``, ``1d``: a positive step."""
    t = text.strip()
    if len(t) < 2 or t[-1] not in _UNITS or not t[:-1].isdigit() or int(t[:-1]) == 0:
        raise argparse.ArgumentTypeError(f"not a positive duration: {text!r} (e.g. 15m, 1h, 1d)")
    return timedelta(seconds=int(t[:-1]) * _UNITS[t[-1]])


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
    _check_times(args)
    with connect(settings.database_url) as conn:
        if args.command == "billing":
            return billing_cli.billing_main(conn, args)
        if args.command == "quality":
            for row in flags_store.rule_quality(conn):
                print(json.dumps(row, default=str))
            return 0
        if args.command == "replay":
            print(json.dumps(_summary(replay(conn, settings, args.start, args.end, args.step))))
            return 0
        if args.as_of is not None:
            report = as_of_pass(conn, settings, args.as_of)
            if args.all:
                report.add(daily_pass(conn, settings, args.as_of))
            print(json.dumps(_summary(report)))
            return 0
        report = IncrementalJob(settings).run(conn)
        if args.all:
            now = utc_now()
            report.add(silence_pass(conn, now))
            report.add(daily_pass(conn, settings, now))
        print(json.dumps(_summary(report)))
    return 0


def _check_times(args: argparse.Namespace) -> None:
    """Operator mistakes in the replay range: one line, exit 2, before connecting."""
    if args.command not in ("once", "replay"):
        return
    if args.command == "replay" and args.end <= args.start:
        raise Fatal("--to must be after --from", exit_code=2)
    for t in (getattr(args, "as_of", None), getattr(args, "end", None)):
        if t is not None and t > utc_now():
            raise Fatal(f"{t.isoformat()} is in the future: as-of and replay triage the past", exit_code=2)


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    env = os.environ if environ is None else environ
    if argv and argv[0] == "audit-verify":
        from triage.clinical.audit_cli import audit_verify_main

        return audit_verify_main(argv[1:], env)
    if argv and argv[0] == "audit-anchor":
        from triage.clinical.audit_anchor import audit_anchor_main

        return audit_anchor_main(argv[1:], env)
    return exit_on_fatal(PROG, lambda: _main(argv, env))


def _summary(report: PassReport) -> dict[str, object]:
    out = asdict(report)
    out["flag_ids"] = sorted(set(report.flag_ids))
    return out


if __name__ == "__main__":
    raise SystemExit(main())
