"""The reviews, time logs and communications store, run as the dashboard role that writes them."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import psycopg

from tests.triage.rpm_seed import make_world, new_flag
from triage.clinical import reviews_store

Conn = psycopg.Connection[Any]


def test_reviews_minutes_and_contacts(db: Conn, as_dashboard: Conn) -> None:
    w = make_world(db)
    fid = new_flag(db, w.patient_id)
    db.execute("UPDATE flags SET state = 'reviewed' WHERE flag_id = %s", (fid,))
    assert reviews_store.latest_review(as_dashboard, fid) is None
    at = datetime(2026, 3, 2, 15, tzinfo=UTC)

    def review(minutes: int) -> int:
        new = reviews_store.NewReview(fid, w.clinician, date(2026, 3, 2), "stable", ["I10"], "continue",
                                      minutes, True, "phone", "11")
        return reviews_store.insert_review(as_dashboard, new)[0]

    first, second = review(5), review(12)
    latest = reviews_store.latest_review(as_dashboard, fid)
    assert latest is not None
    assert (latest.review_id, latest.reviewer_id, latest.icd10_codes, latest.minutes) == (
        second, w.clinician, ("I10",), 12)
    assert latest.reviewer_role == "clinician" and latest.place_of_service == "11" and latest.interactive
    shown = reviews_store.reviews_of_flags(as_dashboard, [fid])
    assert [r["review_id"] for r in shown] == [first, second] and shown[0]["reviewer"] == "drlee"

    reviews_store.insert_review_minutes(as_dashboard, fid, w.clinician, 12, at, second)
    logged = reviews_store.insert_time_log(as_dashboard, fid, w.nurse, "nurse", 7, None, "call")
    logs = db.execute("SELECT time_log_id, role, minutes, note, logged_at = %s FROM time_logs"
                      " WHERE flag_id = %s ORDER BY time_log_id", (at, fid)).fetchall()
    assert [r[1:] for r in logs] == [("clinician", 12, f"review {second}", True), ("nurse", 7, "call", False)]
    assert logs[1][0] == logged

    reviews_store.insert_review_contact(as_dashboard, w.patient_id, at, "phone", w.clinician, fid, second)
    voicemail = reviews_store.insert_communication(as_dashboard, reviews_store.NewCommunication(
        w.patient_id, at, "voicemail", False, False, w.nurse, fid, "left a message"))
    rows = db.execute("SELECT communication_id, mode, two_way_realtime, note FROM communications"
                      " WHERE flag_id = %s ORDER BY communication_id", (fid,)).fetchall()
    assert [r[1:] for r in rows] == [("phone", True, f"review {second}"),
                                     ("voicemail", False, "left a message")]
    assert rows[1][0] == voicemail
