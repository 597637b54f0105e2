"""``rpmflow-triage audit-verify``: check the audit chain (and its anchors) from the command line.

Apart from audit.py, which holds the chain itself (append, verify, the access report), so the
command line's parsing and printing read on their own.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence

from gateway.runtime import settings as rs
from gateway.runtime.fatal import exit_on_fatal
from triage.clinical import audit_key
from triage.clinical.audit import ChainReport, chain_status, verify_chain
from triage.database import connect
from triage.settings import DatabaseSettings

PROG = "rpmflow-triage"  # the console script's name, as its other commands' one-line errors start


def audit_verify_main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """``rpmflow-triage audit-verify``: exit 0 when the chain is intact, 1 when tampered; a bad
    setting or an unreachable database is one line (exit 2 or 3) like every other command."""
    return exit_on_fatal(PROG, lambda: _verify(argv, os.environ if environ is None else environ))


def _verify(argv: Sequence[str] | None, environ: Mapping[str, str]) -> int:
    parser = argparse.ArgumentParser(prog="rpmflow-triage audit-verify", description=verify_chain.__doc__)
    rs.add_flags(parser, DatabaseSettings)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--anchor-file", default=None,
                        help="append-only anchor file written by `audit-anchor`: every anchored head must"
                             " still be in the chain (detects a deleted or re-chained tail)")
    args = parser.parse_args(argv)
    settings = rs.load(DatabaseSettings, environ, args)
    try:
        key = audit_key.current_key()
    except audit_key.AuditKeyError as exc:
        print(f"rpmflow-triage audit-verify: {exc}", file=sys.stderr)
        return 2
    with connect(settings.database_url) as conn:
        report = chain_status(conn)
        if args.anchor_file:
            from triage.clinical.audit_anchor import check_anchors

            report.problems.extend(check_anchors(conn, args.anchor_file, key, report))
    _print(report, as_json=args.json)
    return 0 if report.ok else 1


def _print(report: ChainReport, *, as_json: bool) -> None:
    if as_json:
        print(
            json.dumps(
                {
                    "ok": report.ok,
                    "rows_checked": report.rows_checked,
                    "head_seq": report.head_seq,
                    "head_hash": report.head_hash,
                    "problems": [
                        {"seq": p.seq, "kind": p.kind, "message": p.message} for p in report.problems
                    ],
                }
            )
        )
    else:
        status = "intact" if report.ok else f"TAMPERED ({len(report.problems)} problems)"
        print(
            f"audit chain {status}: {report.rows_checked} rows, head seq {report.head_seq} {report.head_hash}"
        )
        for p in report.problems:
            print(f"  seq {p.seq} [{p.kind}] {p.message}", file=sys.stderr)
