"""The people store's reads and writes for the dashboards' pages and the seeders, run as the dashboard."""

from __future__ import annotations

from datetime import date
from typing import Any

import psycopg

from triage.clinical import people_store

Conn = psycopg.Connection[Any]


def test_accounts_for_the_admin_and_the_seeders(db: Conn, as_dashboard: Conn) -> None:
    uid = people_store.insert_user(db, "pp-nurse", "Nurse Page", "nurse", "!", None, False)
    assert people_store.user_id_of(as_dashboard, "pp-nurse") == uid
    assert people_store.user_id_of(as_dashboard, "pp-nobody") is None
    assert people_store.user_ids(as_dashboard, ["pp-nurse", "pp-nobody"]) == {"pp-nurse": uid}
    listed = {u["username"]: u for u in people_store.user_list(as_dashboard)}
    assert listed["pp-nurse"]["licenses"] == [] and listed["pp-nurse"]["mfa_enrolled"] is False

    def unit() -> Any:
        return as_dashboard.execute(people_store.GLUCOSE_UNIT_SQL, {"user": uid}).fetchone()

    people_store.set_glucose_unit(as_dashboard, uid, "mmol/L")
    assert unit() == ("mmol/L",)
    people_store.set_glucose_unit(as_dashboard, uid, "mg/dL")
    assert unit() == ("mg/dL",)


def test_patients_for_the_pages_and_the_location_history(db: Conn, as_dashboard: Conn) -> None:
    pid = people_store.insert_patient(db, "PP-1", "Pat Page", "NY", "America/Chicago", 1950)
    missing = pid + 1000
    row = people_store.patient_row(as_dashboard, pid)
    assert row is not None
    assert (row["mrn"], row["timezone"], row["birth_year"]) == ("PP-1", "America/Chicago", 1950)
    assert people_store.patient_row(as_dashboard, missing) is None
    assert {"mrn": "PP-1", "devices": 0}.items() <= next(
        p for p in people_store.patient_list(as_dashboard) if p["patient_id"] == pid).items()
    assert people_store.patient_id_of_mrn(as_dashboard, "PP-1") == pid
    assert people_store.patient_id_of_mrn(as_dashboard, "PP-none") is None
    assert people_store.timezone_of(as_dashboard, pid) == "America/Chicago"
    assert people_store.timezone_of(as_dashboard, None, "no-such-device") is None

    with db.transaction():
        assert people_store.lock_patient(db, pid)
        assert not people_store.lock_patient(db, missing)
        db.execute("INSERT INTO patient_locations (patient_id, state, effective_from, source)"
                   " VALUES (%s, 'NJ', '2026-02-01', 'staff_verified')", (pid,))
        people_store.set_state_from_locations(db, pid, date(2026, 3, 1))
    row = people_store.patient_row(as_dashboard, pid)
    assert row is not None and row["state"] == "NJ"


def test_visible_names_the_column_it_scopes() -> None:
    cond = people_store.visible("f.patient_id")
    assert cond.count("f.patient_id") == 2 and "patients_visible_to(%(viewer)s::bigint)" in cond
