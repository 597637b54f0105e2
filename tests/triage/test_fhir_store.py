"""fhir_store: the month's valid readings in the patient's zone, plus the evidence named by id."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from tests.triage.rpm_seed import add_reading, make_world
from triage.billing import fhir_store

NY = ZoneInfo("America/New_York")


def test_month_readings_are_valid_local_and_extra_ids_join(db: psycopg.Connection[Any]) -> None:
    w = make_world(db)
    jan = add_reading(db, w.patient_id, "bp-1", datetime(2026, 1, 31, 23, 30, tzinfo=NY))  # Feb 1 UTC
    feb = add_reading(db, w.patient_id, "bp-1", datetime(2026, 2, 1, 0, 30, tzinfo=NY))
    add_reading(db, w.patient_id, "bp-1", datetime(2026, 2, 2, 9, tzinfo=NY), quality="quarantined")
    month = (date(2026, 2, 1), date(2026, 2, 28))
    assert [r[0] for r in fhir_store.reading_rows(db, w.patient_id, w.tz, month, [])] == [feb]
    rows = fhir_store.reading_rows(db, w.patient_id, w.tz, month, [jan])
    assert [r[0] for r in rows] == [jan, feb] and len(rows[0]) == 15
    assert fhir_store.device_rows(db, ["bp-1", "nope"])[0][:2] == ("bp-1", "blood_pressure")
    assert [r[0] for r in fhir_store.consent_rows(db, w.patient_id)] != []
