"""The billing worklist (pure): what is earned, what is missing and by when, in work order."""

from __future__ import annotations

from datetime import date

from tests.triage.billing_facts import FIRST, NURSE, POLICIES, call, days, minutes, patient
from triage.billing.facts import Consent
from triage.billing.worklist import sort_worklist, work_item

AS_OF = date(2026, 2, 23)  # 6 days left in February after today (23..28 is 6 days)


def test_minutes_short_of_99457_say_how_many_with_a_call_and_by_when() -> None:
    f = patient(time_logs=(minutes(date(2026, 2, 10), 16, user=NURSE, qhp=False),))
    item = work_item(f, 2026, 2, POLICIES, as_of=AS_OF)
    assert (item.steps[0].code, item.steps[0].action) == ("99470", "an interactive call")  # 16 min ≥ 10
    step = next(s for s in item.steps if s.code == "99457")
    assert step.action == "4 more minutes with an interactive call"
    assert step.due == date(2026, 2, 28) and step.days_left == 6
    assert step.minutes == 4 and step.reachable and step.blocked_by is None
    assert item.mgmt_minutes == 16 and not item.interactive


def test_a_call_alone_earns_when_the_minutes_are_logged() -> None:
    f = patient(time_logs=(minutes(date(2026, 2, 10), 25, user=NURSE, qhp=False),))
    step = work_item(f, 2026, 2, POLICIES, as_of=AS_OF).steps[0]
    assert (step.code, step.action, step.minutes) == ("99457", "an interactive call", 0)


def test_after_99457_the_next_step_is_the_first_99458_unit() -> None:
    f = patient(time_logs=(minutes(date(2026, 2, 10), 31, user=NURSE, qhp=False),),
                communications=(call(date(2026, 2, 10)),))
    item = work_item(f, 2026, 2, POLICIES, as_of=AS_OF)
    assert {d.code for d in item.earned} >= {"99457"}
    step = item.steps[0]
    assert (step.code, step.action) == ("99458", "9 more minutes")


def test_a_gate_that_withholds_is_named_as_what_is_missing() -> None:
    f = patient(consents=(Consent(1, date(2026, 3, 1)),),  # consent only after the month
                time_logs=(minutes(date(2026, 2, 10), 25, user=NURSE, qhp=False),),
                communications=(call(date(2026, 2, 10)),))
    item = work_item(f, 2026, 2, POLICIES, as_of=AS_OF)
    step = item.steps[0]
    assert step.code == "99457" and step.blocked_by is not None and "G2" in step.blocked_by
    assert item.best is None or item.best.code != "99457"


def test_device_days_still_needed_in_the_running_period() -> None:
    # Period Feb 4..Mar 5: readings on 10 days of it so far, 11 days left from Feb 23 (23..Mar 5).
    f = patient(readings=days(FIRST, 30) + days(date(2026, 2, 4), 10, first_id=500))
    item = work_item(f, 2026, 2, POLICIES, as_of=AS_OF)
    step = next(s for s in item.steps if s.code in ("99454", "99445"))
    assert step.code == "99454" and step.action == "6 more days with readings (10 of 16 so far)"
    assert step.due == date(2026, 3, 5) and step.reachable
    assert item.device_days == 10 and item.device_period == (date(2026, 2, 4), date(2026, 3, 5))


def test_a_patient_with_nothing_earned_still_has_a_row_and_out_of_reach_is_said() -> None:
    f = patient(readings=days(FIRST, 30) + days(date(2026, 2, 4), 1, first_id=500))
    item = work_item(f, 2026, 2, POLICIES, as_of=date(2026, 3, 2))
    assert item.steps == () or all(s.code != "99457" for s in item.steps)  # March 2 is past February
    march = work_item(f, 2026, 3, POLICIES, as_of=date(2026, 3, 2))
    device = next(s for s in march.steps if s.code in ("99454", "99445"))
    assert device.code == "99445" and device.reachable  # 1 day, 4 left: 99454 out of reach, 99445 not
    late = work_item(f, 2026, 3, POLICIES, as_of=date(2026, 3, 5))
    dev = next(s for s in late.steps if s.code in ("99454", "99445"))
    assert dev.code == "99445" and dev.reachable  # 1 more day on the last day is still possible


def test_sorted_by_least_work_first() -> None:
    near = patient(patient_id=1, mrn="A", time_logs=(minutes(date(2026, 2, 10), 18, user=NURSE, qhp=False),))
    far = patient(patient_id=2, mrn="B", time_logs=(minutes(date(2026, 2, 10), 2, user=NURSE, qhp=False),))
    none = patient(patient_id=3, mrn="C")
    items = [work_item(f, 2026, 2, POLICIES, as_of=AS_OF) for f in (none, far, near)]
    ordered = sort_worklist(items)
    assert [i.mrn for i in ordered] == ["A", "B", "C"]
    best = [(i.best.code, i.best.action) for i in ordered if i.best is not None]
    assert best == [("99470", "an interactive call"), ("99470", "8 more minutes with an interactive call"),
                    ("99470", "10 more minutes with an interactive call")]


def test_two_management_steps_at_most_and_device_days_cost_reminder_calls() -> None:
    f = patient(readings=days(FIRST, 30) + days(date(2026, 2, 4), 15, first_id=500))
    item = work_item(f, 2026, 2, POLICIES, as_of=AS_OF)
    management = [s for s in item.steps if s.code not in ("99454", "99445")]
    assert [s.code for s in management] == ["99470", "99457"]  # not the 99458 units after them
    device = next(s for s in item.steps if s.code == "99454")
    assert (device.days, device.minutes, device.effort) == (1, 0, 5)  # 1 day = one 5-minute reminder
    assert item.best is device  # cheaper than 10 minutes with a call
