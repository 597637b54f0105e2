"""The dated facts through the real database: recorded, audited, and read back by the engine."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

from tests.triage.rpm_seed import World, add_reading, make_world, new_flag, promoted_flag, reviewed_flag
from triage.billing import compute, drive, records, rules
from triage.clinical import locations, people, promotion, review

NY = ZoneInfo("America/New_York")
FIRST = date(2026, 1, 5)


def _at(d: date, hour: int = 10) -> datetime:
    return datetime(d.year, d.month, d.day, hour, tzinfo=NY)


def _month(db: psycopg.Connection[Any], w: World, month: int = 2) -> compute.PatientMonth:
    [pm] = compute.compute_month(db, 2026, month, patient_id=w.patient_id)
    return pm


def _mgmt(pm: compute.PatientMonth) -> dict[str, int]:
    return rules.emitted_codes(d for d in pm.decisions if d.code in rules.MANAGEMENT_CODES)


def _audited(db: psycopg.Connection[Any], action: str, patient_id: int | None) -> int:
    row = db.execute(
        "SELECT count(*) FROM audit_log WHERE action = %s AND patient_id IS NOT DISTINCT FROM %s",
        (action, patient_id),
    ).fetchone()
    assert row is not None
    return int(row[0])


def _readings(db: psycopg.Connection[Any], w: World, n: int = 60) -> None:
    for i in range(n):
        add_reading(db, w.patient_id, "bp-1", _at(FIRST + timedelta(days=i), 9))


def test_a_move_mid_month_is_billed_with_the_state_on_the_date_of_service(
    db: psycopg.Connection[Any],
) -> None:
    w = make_world(db)  # NY, billing clinician licensed in NY only
    _readings(db, w)
    locations.record_location(
        db,
        w.patient_id,
        state="NJ",
        effective_from=date(2026, 2, 15),
        source="patient_reported",
        actor="nurse",
    )
    assert locations.state_on(db, w.patient_id, date(2026, 2, 14)) == "NY"
    assert locations.state_on(db, w.patient_id, date(2026, 2, 15)) == "NJ"
    assert [(r.state, r.effective_to) for r in locations.location_history(db, w.patient_id)] == [
        ("NY", date(2026, 2, 14)),
        ("NJ", None),
    ]
    assert _audited(db, "patient.location", w.patient_id) == 1
    flag = promoted_flag(db, w, dos=date(2026, 2, 10), minutes=25, interactive=True)
    assert _mgmt(_month(db, w)) == {"99457": 1}
    # minutes spent after the move, on the same promoted flag: the date of service moves to NJ
    review.log_time(db, flag, w.nurse, 5, logged_at=_at(date(2026, 2, 20)))
    [d] = [d for d in _month(db, w).decisions if d.code == "99457"]
    assert not d.emitted and "G14" in d.rule and "NJ" in d.reason
    # a clinician reviewing after the move must be licensed in NJ: promotion refuses, and so does the DB
    late = reviewed_flag(db, w, dos=date(2026, 2, 21), minutes=5)
    with pytest.raises(promotion.PromotionRefused, match="NJ"):
        promotion.promote(db, late, w.clinician)


def test_minutes_logged_on_a_promoted_flag_count(db: psycopg.Connection[Any]) -> None:
    w = make_world(db)
    _readings(db, w)
    flag = promoted_flag(db, w, dos=date(2026, 2, 3), minutes=5, interactive=True)
    review.log_time(db, flag, w.nurse, 7, logged_at=_at(date(2026, 2, 5)))
    review.log_time(db, flag, w.clinician, 12, logged_at=_at(date(2026, 3, 2)))
    review.record_communication(db, flag, w.clinician, at=_at(date(2026, 3, 2)), mode="video")
    assert _month(db, w).mgmt_minutes == 12 and _mgmt(_month(db, w)) == {"99470": 1}
    assert _month(db, w, 3).mgmt_minutes == 12 and _mgmt(_month(db, w, 3)) == {"99470": 1}


def test_counted_elsewhere_marks_are_excluded_and_audited(db: psycopg.Connection[Any]) -> None:
    w = make_world(db)
    _readings(db, w)
    flag = promoted_flag(db, w, dos=date(2026, 2, 3), minutes=20, interactive=True)
    log = review.log_time(db, flag, w.nurse, 25, logged_at=_at(date(2026, 2, 6)))
    assert _mgmt(_month(db, w)) == {"99457": 1, "99458": 1}
    records.mark_counted_elsewhere(db, log, program="CCM", marked_by=w.billing)
    pm = _month(db, w)
    assert _mgmt(pm) == {"99457": 1}
    [d] = [d for d in pm.decisions if d.code == "99457"]
    assert d.evidence["not_counted_reasons"] == ["counted for CCM"]
    assert _audited(db, "time_log.counted_elsewhere", w.patient_id) == 1
    with pytest.raises(records.InvalidBillingFact):
        records.mark_counted_elsewhere(db, log, program="RPM", marked_by=w.billing)


@pytest.mark.parametrize(
    "mode,realtime,two_way,interactive",
    [
        ("phone", None, None, True),
        ("video", None, None, True),
        ("portal_live_chat", None, None, True),
        ("portal_message", None, None, False),
        ("voicemail", None, None, False),
        ("phone", False, True, False),  # a phone message left, not a conversation
    ],
)
def test_communication_kinds(
    db: psycopg.Connection[Any], mode: str, realtime: bool | None, two_way: bool | None, interactive: bool
) -> None:
    w = make_world(db)
    _readings(db, w)
    flag = promoted_flag(db, w, dos=date(2026, 2, 3), minutes=25)
    cid = review.record_communication(
        db, flag, w.nurse, at=_at(date(2026, 2, 4)), mode=mode, realtime=realtime, two_way=two_way
    )
    assert _month(db, w).interactive is interactive
    assert (cid in _month(db, w).communication_ids) is interactive
    assert _audited(db, "flag.communication", w.patient_id) == 1


def test_impossible_communication_claims_are_refused(db: psycopg.Connection[Any]) -> None:
    w = make_world(db)
    flag = new_flag(db, w.patient_id)
    cases: list[tuple[str, dict[str, Any]]] = [
        ("voicemail", {"realtime": True}),
        ("portal_message", {"two_way_realtime": True}),
    ]
    for mode, kw in cases:
        with pytest.raises(review.ReviewRejected):
            review.record_communication(db, flag, w.nurse, at=_at(date(2026, 2, 4)), mode=mode, **kw)


def test_orders_are_dated_and_validated(db: psycopg.Connection[Any]) -> None:
    w = make_world(db)
    _readings(db, w)
    bare = people.create_patient(db, mrn=f"MRN-bare-{w.mrn}", display_name="Bare", state="NY")
    people.enrol(
        db,
        bare,
        ordering_user_id=w.clinician,
        icd10_codes=[],
        start_date=date(2026, 1, 1),
        established_visit_date=date(2025, 11, 1),
        education_documented_on=date(2026, 1, 1),
    )
    people.record_consent(
        db, bare, consented_at=_at(date(2025, 12, 1)), method="verbal", recorded_by=w.nurse, version="v1"
    )
    for i in range(20):
        add_reading(db, bare, "bp-bare", _at(FIRST + timedelta(days=i)))
    [pm] = compute.compute_month(db, 2026, 2, patient_id=bare)
    assert not pm.emitted and all("G3" in d.rule for d in pm.decisions)
    with pytest.raises(records.InvalidBillingFact, match="icd10"):
        records.record_order(
            db,
            bare,
            ordering_user_id=w.clinician,
            order_date=date(2026, 1, 1),
            icd10_codes=["not-a-code"],
            medical_necessity="HTN",
        )
    with pytest.raises(records.InvalidBillingFact, match="physician"):
        records.record_order(
            db,
            bare,
            ordering_user_id=w.nurse,
            order_date=date(2026, 1, 1),
            icd10_codes=["I10"],
            medical_necessity="HTN",
        )
    oid = records.record_order(
        db,
        bare,
        ordering_user_id=w.clinician,
        order_date=date(2026, 1, 1),
        icd10_codes=["i10"],
        medical_necessity="uncontrolled HTN",
        recorded_by=w.admin,
    )
    [pm] = compute.compute_month(db, 2026, 2, patient_id=bare)
    assert rules.emitted_codes(pm.decisions) == {"99454": 1, "99453": 1} and pm.icd10_codes == ("I10",)
    records.end_order(db, oid, end_date=date(2026, 1, 20), recorded_by=w.admin)
    [pm] = compute.compute_month(db, 2026, 2, patient_id=bare)
    assert not pm.emitted and "G3" in pm.decisions[0].rule
    assert _audited(db, "patient.order", bare) == 1 and _audited(db, "patient.order_end", bare) == 1


def test_payer_profiles_payer_periods_and_prior_authorisation(db: psycopg.Connection[Any]) -> None:
    w = make_world(db)
    _readings(db, w, 90)
    payer = f"medicaid_t{w.patient_id}"
    records.define_payer_profile(
        db,
        payer,
        effective_from=date(2026, 1, 1),
        overrides={"REQUIRES_PRIOR_AUTH": True, "MAX_99458_UNITS": 1, "LABEL": "Test Medicaid"},
    )
    records.set_payer(db, w.patient_id, payer=payer, effective_from=date(2026, 3, 1), recorded_by=w.billing)
    flag = promoted_flag(db, w, dos=date(2026, 3, 3), minutes=70, interactive=True)
    assert flag
    feb, march = _month(db, w, 2), _month(db, w, 3)
    assert feb.payer == "medicare" and march.payer == payer and march.policy_label == "Test Medicaid"
    blocked = [d for d in march.decisions if "would otherwise" in d.reason]
    assert not march.emitted and blocked and all("PA" in d.rule.split("+") for d in blocked)
    records.record_prior_auth(
        db,
        w.patient_id,
        payer=payer,
        valid_from=date(2026, 3, 1),
        valid_to=date(2026, 5, 31),
        reference="PA-123",
        recorded_by=w.billing,
    )
    assert _mgmt(_month(db, w, 3)) == {"99457": 1, "99458": 1}  # capped at 1 by this payer
    assert _audited(db, "patient.payer", w.patient_id) == 1
    assert _audited(db, "patient.prior_auth", w.patient_id) == 1


def test_licence_history_is_kept(db: psycopg.Connection[Any]) -> None:
    w = make_world(db)
    _readings(db, w)
    row = db.execute(
        "SELECT license_id FROM clinician_licenses WHERE user_id = %s", (w.clinician,)
    ).fetchone()
    assert row is not None
    promoted_flag(db, w, dos=date(2026, 2, 10), minutes=25, interactive=True)
    records.end_licence(db, int(row[0]), valid_to=date(2026, 2, 5), reason="lapsed", recorded_by=w.admin)
    [d] = [d for d in _month(db, w).decisions if d.code == "99457"]
    assert not d.emitted and "G14" in d.rule
    kept = db.execute(
        "SELECT valid_to, ended_reason FROM clinician_licenses WHERE license_id = %s", (row[0],)
    ).fetchone()
    assert kept == (date(2026, 2, 5), "lapsed")


def test_weight_and_spo2_days_count_and_status_problems_do_not(db: psycopg.Connection[Any]) -> None:
    w = make_world(db)
    people.assign_device(db, f"scale-{w.mrn}", w.patient_id, at=_at(date(2026, 1, 1), 0), assigned_by="nurse")
    for i in range(10):
        drive.add_reading(db, f"scale-{w.mrn}", _at(FIRST + timedelta(days=i)), kind="weight")
    for i in range(10, 16):  # a problem the scale reported: recorded, never a billing day
        drive.add_reading(
            db,
            f"scale-{w.mrn}",
            _at(FIRST + timedelta(days=i)),
            kind="weight",
            device_status=["measurement_unsuccessful"],
        )
    [period] = _month(db, w).device_periods
    assert period.days_with_data == 10 and period.excluded == {"device_status": 6}
