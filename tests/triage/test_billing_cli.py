"""``rpmflow-triage billing``: every decision as JSON/CSV, claim lines, FHIR; one-line errors."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

from simulators.embedded_postgres import DatabaseUrls
from tests.triage.rpm_seed import add_reading, make_world, promoted_flag
from triage import cli

NY = ZoneInfo("America/New_York")


def _run(database_url: str, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(["billing", *args], environ={"RPMFLOW_DATABASE_URL": database_url})
    out, err = capsys.readouterr()
    return code, out, err


def test_billing_command_formats(
    db: psycopg.Connection[Any], database_urls: DatabaseUrls, capsys: pytest.CaptureFixture[str]
) -> None:
    w = make_world(db)
    for i in range(40):
        add_reading(db, w.patient_id, "bp-1", datetime(2026, 1, 5, 9, tzinfo=NY) + timedelta(days=i))
    promoted_flag(db, w, dos=date(2026, 2, 10), minutes=25, interactive=True)
    code, out, _ = _run(database_urls.triage, capsys, "--month", "2026-02", "--patient", w.mrn)
    [month] = json.loads(out)
    assert code == 0 and month["codes"] == {"99454": 1, "99453": 1, "99457": 1}
    assert month["payer_profile"] == "medicare@2026-01-01"
    assert all(d["reason"] and d["rule"] for d in month["decisions"])
    code, out, _ = _run(
        database_urls.triage, capsys, "--month", "2026-02", "--patient", str(w.patient_id), "--format", "csv"
    )
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and {r["cpt"] for r in rows if r["emitted"] == "yes"} == {"99454", "99453", "99457"}
    month = ("--month", "2026-02", "--patient", w.mrn)
    code, out, _ = _run(database_urls.triage, capsys, *month, "--format", "claims")
    assert code == 0 and out.startswith("patient_mrn,") and "payer_profile,rule,reason" in out.splitlines()[0]
    code, out, _ = _run(database_urls.triage, capsys, *month, "--format", "fhir")
    assert code == 0 and json.loads(out)["resourceType"] == "Bundle"
    code, out, err = _run(database_urls.triage, capsys, *month, "--store")
    assert code == 0 and "stored as billing run" in err
    run_id = int(err.split()[-1])
    stored = db.execute(
        "SELECT code, emitted, rule, payer_profile FROM billing_decisions WHERE run_id = %s ORDER BY seq",
        (run_id,),
    ).fetchall()
    assert {c for c, e, _, _ in stored if e} == {"99454", "99453", "99457"}
    assert all(r and p == "medicare@2026-01-01" for _, _, r, p in stored)
    with pytest.raises(psycopg.errors.IntegrityConstraintViolation):
        db.execute("DELETE FROM billing_decisions WHERE run_id = %s", (run_id,))


@pytest.mark.parametrize(
    "args,message",
    [
        (("--month", "2026-13"), "--month '2026-13'"),
        (("--month", "March"), "expected YYYY-MM"),
        (("--month", "2026-02", "--patient", "no-such-mrn"), "no patient"),
        (("--month", "2026-02", "--as-of", "yesterday"), "--as-of"),
    ],
)
def test_operator_mistakes_are_one_line(
    database_urls: DatabaseUrls, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], message: str
) -> None:
    code, out, err = _run(database_urls.triage, capsys, *args)
    assert code == 2 and out == "" and message in err and len(err.strip().splitlines()) == 1
