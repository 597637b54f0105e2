"""SQL facts → decisions: local dates, the two clocks, promoted-only minutes, export."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

from tests.triage.rpm_seed import World, add_reading, make_world, new_flag, promoted_flag, reviewed_flag
from triage.billing import compute, export, records
from triage.billing.forecast import forecast_current
from triage.clinical import assignments, people, review

NY = ZoneInfo("America/New_York")
FIRST = date(2026, 1, 5)  # first monitoring day: period 0 is Jan 5 .. Feb 3, period 1 Feb 4 .. Mar 5


def _local(d: date, hour: int = 9, minute: int = 0, tz: ZoneInfo = NY) -> datetime:
    return datetime(d.year, d.month, d.day, hour, minute, tzinfo=tz)


def _days(db: psycopg.Connection[Any], w: World, n: int, start: date = FIRST, device: str = "bp-1") -> None:
    for i in range(n):
        add_reading(db, w.patient_id, device, _local(start + timedelta(days=i)))


def _codes(pm: compute.PatientMonth) -> dict[str, int]:
    out: dict[str, int] = {}
    for d in pm.emitted:
        out[d.code] = out.get(d.code, 0) + d.units
    return out


def _one(db: psycopg.Connection[Any], w: World, year: int = 2026, month: int = 2) -> compute.PatientMonth:
    [pm] = compute.compute_month(db, year, month, patient_id=w.patient_id)
    return pm


@pytest.mark.parametrize(
    "n,expected",
    [(1, {}), (2, {"99445": 1, "99453": 1}), (15, {"99445": 1, "99453": 1}), (16, {"99454": 1, "99453": 1})],
)
def test_day_thresholds_in_the_first_period(
    db: psycopg.Connection[Any], n: int, expected: dict[str, int]
) -> None:
    w = make_world(db)
    _days(db, w, n)
    add_reading(db, w.patient_id, "bp-1", _local(FIRST, 10))  # a second reading on day 1 collapses
    pm = _one(db, w)
    assert _codes(pm) == expected
    [period] = pm.device_periods
    assert (period.start, period.end, period.days_with_data) == (FIRST, date(2026, 2, 3), n)
    for d in pm.decisions:
        assert d.reason and d.evidence["period"] == "2026-01-05..2026-02-03"


def test_period_edges_roll_every_30_days(db: psycopg.Connection[Any]) -> None:
    w = make_world(db)
    _days(db, w, 16)
    add_reading(db, w.patient_id, "bp-1", _local(date(2026, 2, 3), 23, 59))  # day 30 of period 0
    add_reading(db, w.patient_id, "bp-1", _local(date(2026, 2, 4), 0, 1))  # day 1 of period 1
    feb = _one(db, w)
    assert [p.days_with_data for p in feb.device_periods] == [17]
    march = _one(db, w, 2026, 3)
    [p1] = march.device_periods
    assert (p1.index, p1.start, p1.end, p1.days_with_data) == (1, date(2026, 2, 4), date(2026, 3, 5), 1)
    assert _codes(march) == {}  # one day: no device code, and no second 99453
    assert any(d.code == "99453" and d.rule == "S2" for d in march.withheld)


def test_days_are_counted_in_the_patient_zone(db: psycopg.Connection[Any]) -> None:
    la = ZoneInfo("America/Los_Angeles")
    w = make_world(db, state="CA", tz="America/Los_Angeles")
    add_reading(db, w.patient_id, "bp-1", _local(FIRST, 9, tz=la))
    # 23:30 in Los Angeles is already the next day in UTC: it still belongs to the local date.
    late = _local(FIRST + timedelta(days=1), 23, 30, tz=la)
    assert late.astimezone(UTC).date() == FIRST + timedelta(days=2)
    add_reading(db, w.patient_id, "bp-1", late)
    add_reading(db, w.patient_id, "bp-1", _local(FIRST + timedelta(days=1), 7, tz=la))
    [period] = _one(db, w).device_periods
    assert sorted(period.readings_by_date) == ["2026-01-05", "2026-01-06"]


def test_switching_devices_still_gives_one_device_code(db: psycopg.Connection[Any]) -> None:
    w = make_world(db)
    people.assign_device(db, "bp-old", w.patient_id, at=_local(FIRST, 0), assigned_by="nurse")
    people.assign_device(
        db, "bp-new", w.patient_id, at=_local(FIRST + timedelta(days=10), 0), assigned_by="nurse"
    )
    _days(db, w, 11, device="bp-old")
    _days(db, w, 10, start=FIRST + timedelta(days=8), device="bp-new")  # overlapping days collapse
    pm = _one(db, w)
    assert _codes(pm) == {"99454": 1, "99453": 1}
    assert pm.device_periods[0].days_with_data == 18
    assert [h[0] for h in assignments.device_history(db, "bp-old")] == [w.patient_id]


def test_invalid_manual_and_non_fda_readings_do_not_count(db: psycopg.Connection[Any]) -> None:
    w = make_world(db)
    _days(db, w, 2)
    for i in range(3, 25):
        add_reading(db, w.patient_id, "bp-1", _local(FIRST + timedelta(days=i)), transmission="manual")
    add_reading(db, w.patient_id, "bp-1", _local(FIRST + timedelta(days=26)), quality="failed")
    add_reading(db, w.patient_id, "bp-1", _local(FIRST + timedelta(days=27)), quality="quarantined")
    db.execute("INSERT INTO devices (device_id, kind, fda_cleared) VALUES ('toy', 'blood_pressure', false)")
    add_reading(db, w.patient_id, "toy", _local(FIRST + timedelta(days=28)))
    [period] = _one(db, w).device_periods
    assert period.days_with_data == 2
    assert period.excluded == {"manual": 22, "failed": 1, "quarantined": 1, "not_fda_cleared": 1}


def test_only_typed_in_values_bill_nothing(db: psycopg.Connection[Any]) -> None:
    w = make_world(db)
    add_reading(db, w.patient_id, "bp-1", _local(date(2026, 1, 2)))  # starts the episode's clock
    for i in range(20):
        add_reading(
            db, w.patient_id, "bp-1", _local(date(2026, 2, 1) + timedelta(days=i)), transmission="manual"
        )
    promoted_flag(db, w, dos=date(2026, 2, 10), minutes=25, interactive=True)
    pm = _one(db, w)
    assert _codes(pm) == {}
    assert any("G5" in d.rule for d in pm.withheld)


@pytest.mark.parametrize(
    "minutes,expected",
    [
        (9, {}),
        (10, {"99470": 1}),
        (19, {"99470": 1}),
        (20, {"99457": 1}),
        (39, {"99457": 1}),
        (40, {"99457": 1, "99458": 1}),
        (59, {"99457": 1, "99458": 1}),
        (60, {"99457": 1, "99458": 2}),
        (95, {"99457": 1, "99458": 2}),
    ],
)
def test_minute_thresholds_from_promoted_flags(
    db: psycopg.Connection[Any], minutes: int, expected: dict[str, int]
) -> None:
    w = make_world(db)
    add_reading(db, w.patient_id, "bp-1", _local(date(2026, 2, 2)))
    promoted_flag(db, w, dos=date(2026, 2, 10), minutes=minutes, interactive=True)
    pm = _one(db, w)
    assert pm.mgmt_minutes == minutes
    assert {k: v for k, v in _codes(pm).items() if k not in ("99445", "99453")} == expected


def test_minutes_on_unpromoted_or_dismissed_flags_never_count(db: psycopg.Connection[Any]) -> None:
    w = make_world(db)
    add_reading(db, w.patient_id, "bp-1", _local(date(2026, 2, 2)))
    open_flag = new_flag(db, w.patient_id)
    review.log_time(db, open_flag, w.nurse, 30, logged_at=_local(date(2026, 2, 3)))
    reviewed_flag(db, w, dos=date(2026, 2, 4), minutes=30, interactive=True)  # reviewed, never promoted
    promoted = new_flag(db, w.patient_id)
    review.log_time(
        db, promoted, w.nurse, 8, logged_at=_local(date(2026, 2, 5))
    )  # nurse time, later promoted
    review.record_review(
        db,
        promoted,
        w.clinician,
        determination="d",
        icd10_codes=["I10"],
        action="a",
        minutes=5,
        interactive=True,
        interactive_mode="video",
        place_of_service="11",
        date_of_service=date(2026, 2, 6),
    )
    from triage.clinical import promotion

    promotion.promote(db, promoted, w.clinician)
    pm = _one(db, w)
    assert pm.mgmt_minutes == 13
    [d] = [d for d in pm.decisions if d.code == "99470"]
    assert d.emitted and d.evidence["minutes_not_counted"] == 60
    assert d.evidence["not_counted_reasons"] == ["flag not promoted"]
    assert d.date_of_service == date(2026, 2, 6)


def test_interactive_must_be_on_a_promoted_event_in_the_month(db: psycopg.Connection[Any]) -> None:
    w = make_world(db)
    add_reading(db, w.patient_id, "bp-1", _local(date(2026, 2, 2)))
    promoted_flag(db, w, dos=date(2026, 1, 30), minutes=0, interactive=True)  # January call
    promoted_flag(db, w, dos=date(2026, 2, 10), minutes=25, interactive=False)
    reviewed_flag(db, w, dos=date(2026, 2, 11), interactive=True)  # call on an unpromoted flag
    pm = _one(db, w)
    assert not pm.interactive and "99457" not in _codes(pm)
    assert any(d.rule == "M0" for d in pm.withheld)


def test_two_clinicians_in_one_month_add_up(db: psycopg.Connection[Any]) -> None:
    w = make_world(db)
    add_reading(db, w.patient_id, "bp-1", _local(date(2026, 2, 2)))
    promoted_flag(db, w, dos=date(2026, 2, 10), minutes=12, interactive=True)
    promoted_flag(db, w, dos=date(2026, 2, 20), minutes=12, reviewer=w.clinician2)
    pm = _one(db, w)
    assert pm.mgmt_minutes == 24 and _codes(pm).get("99457") == 1
    [d] = [d for d in pm.emitted if d.code == "99457"]
    assert len(d.evidence["performers"]) == 2


def test_setup_once_per_episode_even_after_device_swap(db: psycopg.Connection[Any]) -> None:
    w = make_world(db)
    _days(db, w, 16)
    _days(db, w, 16, start=date(2026, 2, 4), device="bp-2")
    episode = db.execute(
        "SELECT episode_id FROM enrolments WHERE enrolment_id = %s", (w.enrolment_id,)
    ).fetchone()
    assert episode is not None
    people.enrol(
        db,
        w.patient_id,
        ordering_user_id=w.clinician,
        icd10_codes=["I10"],
        start_date=date(2026, 2, 4),
        established_visit_date=date(2025, 11, 1),
        education_documented_on=date(2026, 2, 4),
        episode_id=episode[0],
    )
    assert _codes(_one(db, w)) == {"99454": 1, "99453": 1}
    assert _codes(_one(db, w, 2026, 3)) == {"99454": 1}


def test_gates_from_the_database(db: psycopg.Connection[Any]) -> None:
    w = make_world(db, established=None)
    _days(db, w, 16)
    pm = _one(db, w)
    assert _codes(pm) == {} and all("G1" in d.rule for d in pm.withheld if "would otherwise" in d.reason)
    w2 = make_world(db)
    _days(db, w2, 16)
    records.record_claim_history(
        db,
        w2.patient_id,
        service_from=date(2026, 1, 20),
        service_to=date(2026, 1, 20),
        program="RPM",
        cpt="99454",
        billing_npi="1999999999",
    )
    pm2 = _one(db, w2)
    assert _codes(pm2) == {} and any("1999999999" in d.reason for d in pm2.withheld)


def test_exports_are_lossless(db: psycopg.Connection[Any]) -> None:
    w = make_world(db)
    _days(db, w, 16)
    add_reading(db, w.patient_id, "bp-1", _local(date(2026, 2, 1)))  # on active RPM in February (X1)
    promoted_flag(db, w, dos=date(2026, 2, 1), minutes=20, interactive=True)
    results = compute.compute_month(db, 2026, 2)
    text = export.export_csv(results)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert {r["cpt"] for r in rows if r["patient_mrn"] == w.mrn} == {"99454", "99453", "99457"}
    assert all(
        r["place_of_service"] == "11" and r["icd10"] == "I10" and len(r["rendering_npi"]) == 10
        for r in rows
        if r["patient_mrn"] == w.mrn
    )
    bundle = export.export_fhir(db, [r for r in results if r.patient_id == w.patient_id])
    res = [e["resource"] for e in bundle["entry"]]
    obs = [r for r in res if r["resourceType"] == "Observation"]
    panel = [o for o in obs if o["code"]["coding"][0]["code"] == "85354-9"]
    assert len(panel) == 17
    comp = panel[0]["component"]
    assert [c["code"]["coding"][0]["code"] for c in comp] == ["8480-6", "8462-4"]
    assert comp[0]["valueQuantity"] == {
        "value": 128.0,
        "unit": "mm[Hg]",
        "system": export.UCUM,
        "code": "mm[Hg]",
    }
    hr = [o for o in obs if o["code"]["coding"][0]["code"] == "8867-4"]
    assert hr[0]["valueQuantity"]["value"] == 0.0 and hr[0]["valueQuantity"]["code"] == "/min"  # zero kept
    assert panel[0]["effectiveDateTime"].endswith("-05:00")
    assert panel[0]["_effectiveDateTime"]["extension"][0]["valueCode"] == "America/New_York"
    charges = [r for r in res if r["resourceType"] == "ChargeItem"]
    assert {c["code"]["coding"][0]["code"] for c in charges if c["status"] == "billable"} == {
        "99454",
        "99453",
        "99457",
    }


def test_glucose_observation_and_forecast(db: psycopg.Connection[Any]) -> None:
    w = make_world(db)
    for i in range(16):
        add_reading(db, w.patient_id, "gl-1", _local(FIRST + timedelta(days=i)), kind="glucose", glucose=0.0)
    bundle = export.export_fhir(db, compute.compute_month(db, 2026, 2, patient_id=w.patient_id))
    gl = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation"]
    assert gl[0]["code"]["coding"][0]["code"] == "2339-0"
    assert gl[0]["valueQuantity"]["value"] == 0.0 and gl[0]["valueQuantity"]["unit"] == "mg/dL"
    f = forecast_current(db, w.patient_id, date(2026, 1, 20))
    assert f is not None and f.days_with_data == 16 and f.on_track_99454
