"""records_store: each write returns what it changed, or None when nothing matched."""

from __future__ import annotations

from datetime import date
from typing import Any

import psycopg

from tests.triage.rpm_seed import make_world
from triage.billing import records_store


def test_writes_return_their_rows_and_none_on_no_match(db: psycopg.Connection[Any]) -> None:
    w = make_world(db)
    oid = records_store.insert_order(
        db, w.patient_id, w.clinician, date(2026, 1, 2), None, ["I10"], "htn", None
    )
    assert records_store.end_order(db, oid, date(2026, 1, 1)) is None  # before the order date
    assert records_store.end_order(db, oid, date(2026, 3, 1)) == w.patient_id
    assert records_store.mark_counted_elsewhere(db, 999_999, "CCM", w.clinician) is None
    assert records_store.end_licence(db, 999_999, date(2026, 1, 1), "lapsed") is None
    first = records_store.insert_payer(db, w.patient_id, "medicare", date(2026, 1, 1), None, None, None)
    records_store.insert_payer(db, w.patient_id, "acme", date(2026, 3, 1), None, "M-1", None)
    rows = db.execute(
        "SELECT payer, effective_to FROM patient_payers WHERE patient_id = %s ORDER BY effective_from",
        (w.patient_id,),
    ).fetchall()
    assert first > 0 and rows == [("medicare", date(2026, 2, 28)), ("acme", None)]
