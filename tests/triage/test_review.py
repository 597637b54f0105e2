"""Clinician review: only a clinician reviews; a review stores its minutes and communication."""

from __future__ import annotations

from datetime import date
from typing import Any

import psycopg
import pytest

from tests.triage.rpm_seed import make_world, new_flag
from triage.clinical import audit, review
from triage.errors import RoleNotAllowed, UnknownRole

DOS = date(2026, 2, 10)


def _review(db: psycopg.Connection[Any], flag: int, user: int, **kw: Any) -> int:
    args: dict[str, Any] = {
        "determination": "BP above goal",
        "icd10_codes": ["i10"],
        "action": "call patient",
        "minutes": 12,
        "interactive": True,
        "interactive_mode": "video",
        "place_of_service": "11",
        "date_of_service": DOS,
    }
    args.update(kw)
    return review.record_review(db, flag, user, **args)


def test_clinician_review_records_everything(db: psycopg.Connection[Any]) -> None:
    w = make_world(db)
    flag = new_flag(db, w.patient_id)
    rid = _review(db, flag, w.clinician, source_ip="192.0.2.7")
    assert db.execute("SELECT state FROM flags WHERE flag_id = %s", (flag,)).fetchone() == ("reviewed",)
    assert db.execute(
        "SELECT icd10_codes, minutes, interactive_mode FROM reviews WHERE review_id = %s", (rid,)
    ).fetchone() == (["I10"], 12, "video")
    assert db.execute("SELECT role, minutes FROM time_logs WHERE flag_id = %s", (flag,)).fetchall() == [
        ("clinician", 12)
    ]
    assert db.execute(
        "SELECT mode, two_way_realtime FROM communications WHERE flag_id = %s", (flag,)
    ).fetchall() == [("video", True)]
    entry = audit.patient_access_report(db, w.patient_id)[-1]
    assert (entry.action, entry.detail["review_id"], entry.source_ip) == ("flag.review", rid, "192.0.2.7")
    assert audit.verify_chain(db).ok


@pytest.mark.parametrize(
    "who,exc", [("nurse", RoleNotAllowed), ("admin", RoleNotAllowed), ("billing", UnknownRole)]
)
def test_non_clinicians_cannot_review(db: psycopg.Connection[Any], who: str, exc: type[Exception]) -> None:
    w = make_world(db)
    flag = new_flag(db, w.patient_id)
    with pytest.raises(exc):
        _review(db, flag, getattr(w, who))
    assert db.execute("SELECT count(*) FROM reviews").fetchone() == (0,)
    assert db.execute("SELECT state FROM flags WHERE flag_id = %s", (flag,)).fetchone() == ("open",)


def test_database_refuses_a_review_row_by_a_nurse(db: psycopg.Connection[Any]) -> None:
    w = make_world(db)
    flag = new_flag(db, w.patient_id)
    with pytest.raises(psycopg.errors.IntegrityConstraintViolation, match="not a clinician"):
        db.execute(
            "INSERT INTO reviews (flag_id, reviewer_user_id, date_of_service, determination, icd10_codes,"
            " action_taken, minutes, interactive, place_of_service)"
            " VALUES (%s, %s, %s, 'x', '{I10}', 'y', 0, false, '11')",
            (flag, w.nurse, DOS),
        )


def test_reviews_are_immutable(db: psycopg.Connection[Any]) -> None:
    w = make_world(db)
    rid = _review(db, new_flag(db, w.patient_id), w.clinician)
    with pytest.raises(psycopg.errors.IntegrityConstraintViolation, match="immutable"):
        db.execute("UPDATE reviews SET date_of_service = '2026-01-01' WHERE review_id = %s", (rid,))


@pytest.mark.parametrize(
    "kw,field",
    [
        ({"icd10_codes": ["hypertension"]}, "icd10_codes"),
        ({"icd10_codes": []}, "icd10_codes"),
        ({"determination": "  "}, "determination"),
        ({"interactive_mode": "voicemail"}, "interactive_mode"),
        ({"interactive": False}, "interactive_mode"),
        ({"place_of_service": "office"}, "place_of_service"),
        ({"minutes": -1}, "minutes"),
    ],
)
def test_invalid_review_content_is_rejected(
    db: psycopg.Connection[Any], kw: dict[str, Any], field: str
) -> None:
    w = make_world(db)
    flag = new_flag(db, w.patient_id)
    with pytest.raises(review.ReviewRejected) as info:
        _review(db, flag, w.clinician, **kw)
    assert info.value.field == field
    assert db.execute("SELECT state FROM flags WHERE flag_id = %s", (flag,)).fetchone() == ("open",)


def test_nurse_logs_time_and_one_way_contact(db: psycopg.Connection[Any]) -> None:
    w = make_world(db)
    flag = new_flag(db, w.patient_id)
    review.log_time(db, flag, w.nurse, 7, note="called, left voicemail")
    from datetime import UTC, datetime

    review.record_communication(
        db, flag, w.nurse, at=datetime(2026, 2, 10, 15, tzinfo=UTC), mode="voicemail", two_way_realtime=False
    )
    with pytest.raises(review.ReviewRejected, match="real-time"):
        review.record_communication(
            db, flag, w.nurse, at=datetime(2026, 2, 10, 15, tzinfo=UTC), mode="sms", two_way_realtime=True
        )
    assert db.execute("SELECT role, minutes FROM time_logs WHERE flag_id = %s", (flag,)).fetchall() == [
        ("nurse", 7)
    ]
