"""Issue 14: a cell a spreadsheet would run as a formula is neutralised in the claim CSV."""

from __future__ import annotations

import csv
import io
from datetime import date

import pytest

from triage.billing import compute, export
from triage.billing.rules import Decision


def _month(mrn: str) -> compute.PatientMonth:
    return compute.PatientMonth(
        patient_id=1, mrn=mrn, year=2026, month=2, timezone="America/New_York", state="NY",
        payer="medicare", policy_version="medicare@2026-01-01", billing_user_id=7,
        billing_npi="0123456789", place_of_service="02", icd10_codes=("I10",), mgmt_minutes=0,
        interactive=False, time_logs=(), communication_ids=(), device_periods=(),
        decisions=(Decision("99457", 1, True, "M3", "25 min", {}, date(2026, 2, 27)),),
    )


@pytest.mark.parametrize("mrn", ['=HYPERLINK("http://x","y")', "+1+1", "-2+3", "@SUM(A1)", "\tTAB", "\rCR"])
def test_formula_starts_are_prefixed_with_a_quote(mrn: str) -> None:
    text = export.export_csv([_month(mrn)])
    line = text.split("\n", 1)[1]
    assert line.startswith(("'", "\"'"))  # quoted when the cell holds a TAB or CR
    assert export.neutralise(mrn) == "'" + mrn
    assert ",1,02," in line  # numbers are left alone


def test_ordinary_cells_are_untouched() -> None:
    rows = list(csv.reader(io.StringIO(export.export_csv([_month("000123")]))))
    assert rows[1][:3] == ["000123", "2026-02-27", "99457"]
    assert export.neutralise(-5) == -5
