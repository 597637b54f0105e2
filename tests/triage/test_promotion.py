"""Promotion: the one path to a billable event, refused with a clear reason, enforced by the DB."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import psycopg
import pytest

from tests.triage.rpm_seed import make_world, new_flag, reviewed_flag
from triage.clinical import audit, people, promotion
from triage.flags_store import apply_event

DOS = date(2026, 2, 10)


def test_promotion_creates_one_billable_event(db: psycopg.Connection[Any]) -> None:
    w = make_world(db)
    flag = reviewed_flag(db, w, dos=DOS, minutes=15, interactive=True)
    event_id = promotion.promote(db, flag, w.clinician, source_ip="192.0.2.1")
    assert db.execute("SELECT state FROM flags WHERE flag_id = %s", (flag,)).fetchone() == ("promoted",)
    row = db.execute(
        "SELECT flag_id, date_of_service, place_of_service, icd10_codes, minutes, interactive,"
        " rendering_npi = (SELECT npi FROM users WHERE user_id = %s)"
        " FROM billable_events WHERE billable_event_id = %s",
        (w.clinician, event_id),
    ).fetchone()
    assert row == (flag, DOS, "11", ["I10"], 15, True, True)
    assert audit.patient_access_report(db, w.patient_id)[-1].action == "flag.promote"
    assert audit.verify_chain(db).ok


def _refused(db: psycopg.Connection[Any], flag: int, actor: int) -> promotion.PromotionRefused:
    with pytest.raises(promotion.PromotionRefused) as info:
        promotion.promote(db, flag, actor)
    assert (
        db.execute("SELECT count(*) FROM billable_events WHERE flag_id = %s", (flag,)).fetchone() == (0,)
        or info.value.refusals[0].code == "already_promoted"
    )
    return info.value


def test_refused_reviewer_not_licensed_in_state(db: psycopg.Connection[Any]) -> None:
    w = make_world(db)
    flag = reviewed_flag(db, w, dos=DOS, reviewer=w.out_of_state)
    err = _refused(db, flag, w.out_of_state)
    assert err.reasons == [f"reviewer drnj-{w.mrn[4:]} is not licensed in NY on 2026-02-10"]


def test_refused_licence_expired(db: psycopg.Connection[Any]) -> None:
    w = make_world(db)
    flag = reviewed_flag(db, w, dos=DOS, reviewer=w.expired)
    err = _refused(db, flag, w.clinician)
    assert err.reasons == [
        f"reviewer drold-{w.mrn[4:]}'s licence in NY expired on 2025-12-31 (date of service 2026-02-10)"
    ]


def test_refused_consent_after_date_of_service(db: psycopg.Connection[Any]) -> None:
    w = make_world(db, consent_at=datetime(2026, 2, 11, 14, tzinfo=UTC))
    err = _refused(db, reviewed_flag(db, w, dos=DOS), w.clinician)
    assert err.reasons == ["consent recorded on 2026-02-11, after the date of service 2026-02-10"]


def test_consent_is_dated_in_the_patient_zone(db: psycopg.Connection[Any]) -> None:
    # 02:00 UTC on the 11th is 21:00 on the 10th in New York: consent was on file that day.
    w = make_world(db, consent_at=datetime(2026, 2, 11, 2, tzinfo=UTC))
    promotion.promote(db, reviewed_flag(db, w, dos=DOS), w.clinician)


def test_refused_no_consent(db: psycopg.Connection[Any]) -> None:
    w = make_world(db, consent_at=None)
    err = _refused(db, reviewed_flag(db, w, dos=DOS), w.clinician)
    assert err.reasons == [f"no consent on file for patient {w.mrn}"]


def test_refused_consent_revoked(db: psycopg.Connection[Any]) -> None:
    w = make_world(db)
    cid = db.execute("SELECT consent_id FROM consents WHERE patient_id = %s", (w.patient_id,)).fetchone()
    assert cid is not None
    people.revoke_consent(db, cid[0], revoked_at=datetime(2026, 2, 1, 15, tzinfo=UTC))
    err = _refused(db, reviewed_flag(db, w, dos=DOS), w.clinician)
    assert err.reasons == ["consent was revoked on 2026-02-01, on/before the date of service 2026-02-10"]


def test_refused_not_enrolled(db: psycopg.Connection[Any]) -> None:
    w = make_world(db, enrol_start=date(2026, 3, 1))
    err = _refused(db, reviewed_flag(db, w, dos=DOS), w.clinician)
    assert err.reasons == [f"patient {w.mrn} is not enrolled in RPM on 2026-02-10"]


def test_refused_flag_not_reviewed(db: psycopg.Connection[Any]) -> None:
    w = make_world(db)
    flag = new_flag(db, w.patient_id)
    err = _refused(db, flag, w.clinician)
    assert err.reasons == [f"flag {flag} has not been reviewed by a clinician"]


def test_refused_dismissed_after_review(db: psycopg.Connection[Any]) -> None:
    w = make_world(db)
    flag = reviewed_flag(db, w, dos=DOS)
    apply_event(db, flag, "dismiss", "drlee", "clinician")
    err = _refused(db, flag, w.clinician)
    assert err.reasons == [f"flag {flag} is dismissed, not reviewed"]


@pytest.mark.parametrize("who", ["nurse", "billing", "admin"])
def test_refused_actor_not_clinician(db: psycopg.Connection[Any], who: str) -> None:
    w = make_world(db)
    flag = reviewed_flag(db, w, dos=DOS)
    err = _refused(db, flag, getattr(w, who))
    assert [r.code for r in err.refusals] == ["actor_not_clinician"]
    assert "is not a clinician" in err.reasons[0] and "only a clinician promotes" in err.reasons[0]


def test_refused_already_promoted(db: psycopg.Connection[Any]) -> None:
    w = make_world(db)
    flag = reviewed_flag(db, w, dos=DOS)
    event_id = promotion.promote(db, flag, w.clinician)
    err = _refused(db, flag, w.clinician2)
    assert err.reasons == [f"flag {flag} is already promoted (billable event {event_id})"]
    refusals = [
        e for e in audit.patient_access_report(db, w.patient_id) if e.action == "flag.promotion_refused"
    ]
    assert refusals[-1].detail["reasons"] == ["already_promoted"]


def test_refused_unknown_flag(db: psycopg.Connection[Any]) -> None:
    w = make_world(db)
    assert _refused(db, 999999, w.clinician).reasons == ["flag 999999 does not exist"]


def test_several_reasons_are_reported_together() -> None:
    facts = promotion.PromotionFacts(
        flag_id=1,
        flag_state="reviewed",
        patient_mrn="M",
        patient_state="TX",
        actor_username="n",
        actor_role="nurse",
        review_id=3,
        reviewer_username="r",
        reviewer_role="clinician",
        reviewer_npi=None,
        date_of_service=DOS,
        icd10_codes=("I10",),
        licences=(promotion.Licence("TX", date(2026, 3, 1), date(2027, 1, 1)),),
    )
    codes = [r.code for r in promotion.check_promotion(facts)]
    assert codes == ["actor_not_clinician", "no_npi", "licence_not_yet_valid", "no_consent", "not_enrolled"]


# -- the database gate, by raw SQL ---------------------------------------------------------------


def _raw_event(db: psycopg.Connection[Any], flag: int, review_id: int | None, patient_id: int) -> None:
    db.execute(
        "INSERT INTO billable_events (flag_id, review_id, patient_id, date_of_service, rendering_npi,"
        " place_of_service, icd10_codes, minutes, interactive)"
        " VALUES (%s, %s, %s, %s, '1234567893', '11', '{I10}', 20, true)",
        (flag, review_id, patient_id, DOS),
    )


def test_db_refuses_billable_event_without_review(db: psycopg.Connection[Any]) -> None:
    w = make_world(db)
    flag = new_flag(db, w.patient_id)
    with pytest.raises(psycopg.errors.IntegrityConstraintViolation):
        _raw_event(db, flag, None, w.patient_id)
    with pytest.raises(psycopg.IntegrityError, match="no review"):
        _raw_event(db, flag, 987654, w.patient_id)


def test_db_refuses_promoted_state_without_review(db: psycopg.Connection[Any]) -> None:
    w = make_world(db)
    flag = new_flag(db, w.patient_id)
    with pytest.raises(psycopg.errors.IntegrityConstraintViolation, match="has no review"):
        db.execute("UPDATE flags SET state = 'promoted' WHERE flag_id = %s", (flag,))
    with pytest.raises(psycopg.errors.IntegrityConstraintViolation, match="may not be promoted"):
        db.execute(
            "INSERT INTO flags (patient_id, subject_key, rule_id, severity, state, reason)"
            " VALUES (%s, 'patient:x', 'r', 'high', 'promoted', 'x')",
            (w.patient_id,),
        )


def test_db_refuses_event_for_reviewed_but_unpromoted_flag(db: psycopg.Connection[Any]) -> None:
    w = make_world(db)
    flag = reviewed_flag(db, w, dos=DOS)
    rid = db.execute("SELECT review_id FROM reviews WHERE flag_id = %s", (flag,)).fetchone()
    assert rid is not None
    with pytest.raises(psycopg.errors.IntegrityConstraintViolation, match="not promoted"):
        _raw_event(db, flag, rid[0], w.patient_id)


@pytest.mark.parametrize("case", ["unlicensed", "no_consent", "not_enrolled"])
def test_db_refuses_promotion_with_unqualified_review(db: psycopg.Connection[Any], case: str) -> None:
    options: dict[str, dict[str, Any]] = {
        "no_consent": {"consent_at": None},
        "not_enrolled": {"enrol_start": date(2026, 6, 1)},
    }
    kw = options.get(case, {})
    w = make_world(db, **kw)
    flag = reviewed_flag(db, w, dos=DOS, reviewer=w.out_of_state if case == "unlicensed" else None)
    expected = {
        "unlicensed": "not licensed in NY",
        "no_consent": "no consent on file",
        "not_enrolled": "not enrolled",
    }[case]
    with pytest.raises(psycopg.errors.IntegrityConstraintViolation, match=expected):
        db.execute("UPDATE flags SET state = 'promoted' WHERE flag_id = %s", (flag,))


def test_billable_events_are_immutable(db: psycopg.Connection[Any]) -> None:
    w = make_world(db)
    event_id = promotion.promote(db, reviewed_flag(db, w, dos=DOS), w.clinician)
    for sql in (
        "UPDATE billable_events SET minutes = 99 WHERE billable_event_id = %s",
        "DELETE FROM billable_events WHERE billable_event_id = %s",
    ):
        with pytest.raises(psycopg.errors.IntegrityConstraintViolation, match="immutable"):
            db.execute(sql, (event_id,))
