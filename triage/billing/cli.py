"""``rpmflow-triage billing --month YYYY-MM [--patient ID|MRN] [--as-of DATE] --format …``:
the monthly computation from the command line (every code considered, emitted or withheld, with
its rule, reason and the payer profile that decided). Operator mistakes end in one line, exit 2.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from typing import Any

import psycopg

from gateway.runtime.fatal import Fatal
from triage.billing import compute, export
from triage.clinical import people_store

FORMATS = ("json", "csv", "claims", "fhir")


def add_parser(sub: Any) -> argparse.ArgumentParser:
    b: argparse.ArgumentParser = sub.add_parser(
        "billing",
        help="compute a month's RPM billing decisions (every code, emitted or withheld)",
        description="Compute a month's RPM billing decisions: every code considered, with why.",
    )
    b.add_argument("--month", required=True, help="calendar month, YYYY-MM")
    b.add_argument("--patient", help="one patient: patient id or MRN (default: every enrolled patient)")
    b.add_argument("--as-of", help="YYYY-MM-DD: withhold device periods not complete on this date")
    b.add_argument(
        "--format",
        choices=FORMATS,
        default="json",
        help="json: every decision; csv: every decision as CSV; claims: claim lines; fhir: R4 Bundle",
    )
    b.add_argument(
        "--store", action="store_true", help="also keep the result (billing_runs / billing_decisions)"
    )
    return b


def _bad(message: str) -> Fatal:
    return Fatal(message, exit_code=2)


def parse_month(text: str) -> tuple[int, int]:
    try:
        year, month = (int(x) for x in text.split("-"))
        date(year, month, 1)
    except ValueError:
        raise _bad(f"--month {text!r}: expected YYYY-MM") from None
    return year, month


def parse_as_of(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise _bad(f"--as-of {text!r}: expected YYYY-MM-DD") from None


def patient_id(conn: psycopg.Connection[Any], text: str | None) -> int | None:
    if text is None:
        return None
    pid = people_store.patient_id_by_mrn_or_id(conn, text)
    if pid is None:
        raise _bad(f"--patient {text!r}: no patient with that id or MRN")
    return pid


def billing_main(conn: psycopg.Connection[Any], args: argparse.Namespace) -> int:
    year, month = parse_month(args.month)
    as_of = parse_as_of(args.as_of)
    pid = patient_id(conn, args.patient)
    results = compute.compute_month(conn, year, month, patient_id=pid, as_of=as_of)
    if args.store:
        run_id = compute.store_month(
            conn, results, year=year, month=month, computed_by="rpmflow-triage billing", as_of=as_of
        )
        print(f"rpmflow-triage: stored as billing run {run_id}", file=sys.stderr)
    if args.format == "csv":
        sys.stdout.write(export.export_decisions_csv(results))
    elif args.format == "claims":
        sys.stdout.write(export.export_csv(results))
    elif args.format == "fhir":
        print(export.dumps(export.export_fhir(conn, results)))
    else:
        print(export.dumps(export.month_report(results)))
    return 0
