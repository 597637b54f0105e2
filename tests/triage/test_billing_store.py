"""billing_store on a real database: payer profiles round-trip, local dates in the patient's zone."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from tests.triage.rpm_seed import add_reading, make_world, promoted_flag
from triage.billing import billing_store

LA = ZoneInfo("America/Los_Angeles")


def test_policy_rows_are_replaced_per_payer_and_start(db: psycopg.Connection[Any]) -> None:
    start = date(2026, 7, 1)
    billing_store.replace_policy(db, "acme", start, None, {"MIN_99457": "20", "LABEL": "a"})
    billing_store.replace_policy(db, "acme", start, date(2026, 12, 31), {"MIN_99457": "25"})
    rows = [r for r in billing_store.policy_rows(db) if r[0] == "acme"]
    assert rows == [("acme", start, date(2026, 12, 31), "MIN_99457", "25")]


def test_local_dates_follow_the_patient_zone(db: psycopg.Connection[Any]) -> None:
    w = make_world(db, state="CA", tz="America/Los_Angeles")
    late = datetime(2026, 2, 3, 23, 30, tzinfo=LA)  # Feb 4 in UTC
    rid = add_reading(db, w.patient_id, "bp-la", late)
    add_reading(db, w.patient_id, "bp-la", datetime(2026, 2, 5, 0, 30, tzinfo=LA))  # after `until`
    rows = billing_store.reading_rows(db, w.patient_id, w.tz, date(2026, 2, 4))
    assert [(r[0], r[3]) for r in rows] == [(rid, date(2026, 2, 3))]
    promoted_flag(db, w, dos=date(2026, 2, 3), minutes=20, interactive=True)
    [log] = billing_store.time_log_rows(db, w.patient_id, w.tz)
    assert log[3] == 20 and log[8] is True  # minutes, promoted
    histories = billing_store.history_rows(db, w.patient_id, w.tz)
    assert list(histories) == [
        "enrolments",
        "orders",
        "consents",
        "locations",
        "payers",
        "prior_auths",
        "claims",
    ]
    [consent] = histories["consents"]
    assert consent[1] == date(2025, 12, 15)  # 10:00 UTC is still Dec 15 in Los Angeles
    assert [e[0] for e in histories["enrolments"]] == [w.enrolment_id]
    assert w.patient_id in billing_store.patient_ids_for_month(db, date(2026, 2, 1), date(2026, 2, 28))
