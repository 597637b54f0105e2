"""``rpmflow-triage audit-verify``: check the audit chain (and its anchors) from the command line.

Apart from audit.py, which holds the chain itself (append, verify, the access report), so the
command line's parsing and printing read on their own.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

import psycopg

from triage.clinical import audit_key
from triage.clinical.audit import chain_status, verify_chain


def audit_verify_main(argv: Sequence[str] | None = None) -> int:
    """``rpmflow-triage audit-verify``: exit 0 when the chain is intact, 1 when tampered."""
    parser = argparse.ArgumentParser(prog="rpmflow-triage audit-verify", description=verify_chain.__doc__)
    parser.add_argument("--database-url", default=None, help="default: $RPMFLOW_DATABASE_URL")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--anchor-file", default=None,
                        help="append-only anchor file written by `audit-anchor`: every anchored head must"
                             " still be in the chain (detects a deleted or re-chained tail)")
    args = parser.parse_args(argv)
    url = args.database_url or os.environ.get("RPMFLOW_DATABASE_URL")
    if not url:
        parser.error("no database: pass --database-url or set RPMFLOW_DATABASE_URL")
    try:
        key = audit_key.current_key()
    except audit_key.AuditKeyError as exc:
        print(f"rpmflow-triage audit-verify: {exc}", file=sys.stderr)
        return 2
    with psycopg.connect(url, autocommit=True) as conn:
        report = chain_status(conn)
        if args.anchor_file:
            from triage.clinical.audit_anchor import check_anchors

            report.problems.extend(check_anchors(conn, args.anchor_file, key, report))
    if args.json:
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
    return 0 if report.ok else 1
