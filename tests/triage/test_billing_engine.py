"""The pure engine on plain facts: S1, promoted minutes, G9, 99091's months, dated gates, payers."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from tests.triage.billing_facts import (
    DR,
    FIRST,
    NURSE,
    POLICIES,
    bill,
    call,
    codes,
    days,
    minutes,
    patient,
    practitioners,
)
from triage.billing import engine, rules
from triage.billing.facts import Consent, Location, Order, PayerPeriod, PriorAuth
from triage.valid_reading import DEVICE_STATUS, Validity


def _mgmt(pm: engine.PatientMonth) -> dict[str, int]:
    return {k: v for k, v in codes(pm).items() if k in rules.MANAGEMENT_CODES}


def test_setup_goes_to_the_first_qualifying_period() -> None:
    # period 0 (Jan 5..Feb 3) has one day only; period 1 (Feb 4..Mar 5) has five
    f = patient(readings=days(FIRST, 1) + days(date(2026, 2, 10), 5, first_id=50))
    assert codes(bill(f, 2026, 2)) == {}  # period 0 ends Feb 3: one day, nothing
    march = bill(f, 2026, 3)
    assert codes(march) == {"99445": 1, "99453": 1}
    [setup] = [d for d in march.decisions if d.code == "99453"]
    assert setup.rule == "S1" and setup.evidence["period"] == "2026-02-04..2026-03-05"


def test_setup_once_even_when_a_later_period_qualifies() -> None:
    f = patient(readings=days(FIRST, 20) + days(date(2026, 2, 4), 20, first_id=50))
    assert codes(bill(f, 2026, 2)) == {"99454": 1, "99453": 1}  # period 0 ends Feb 3
    march = bill(f, 2026, 3)
    assert codes(march) == {"99454": 1}
    [setup] = [d for d in march.decisions if d.code == "99453"]
    assert not setup.emitted and "period 0" in setup.reason


def test_problem_readings_are_not_billing_days() -> None:
    bad = Validity(False, DEVICE_STATUS, "device reported body_movement")
    f = patient(readings=days(FIRST, 15) + days(date(2026, 1, 20), 10, first_id=100, validity=bad))
    pm = bill(f, 2026, 2)
    assert codes(pm) == {"99445": 1, "99453": 1}
    assert pm.device_periods[0].excluded == {DEVICE_STATUS: 10}


def test_minutes_on_a_promoted_flag_count_in_the_month_they_were_spent() -> None:
    f = patient(
        time_logs=(minutes(date(2026, 2, 27), 15, log_id=1), minutes(date(2026, 3, 2), 12, log_id=2)),
        communications=(call(date(2026, 2, 27)), call(date(2026, 3, 2), cid=2)),
    )
    assert bill(f, 2026, 2).mgmt_minutes == 15
    assert codes(bill(f, 2026, 3)).get("99470") == 1  # 12 minutes spent in March


def test_minutes_counted_elsewhere_or_unpromoted_are_left_out_with_the_reason() -> None:
    f = patient(
        time_logs=(
            minutes(date(2026, 2, 10), 20, log_id=1),
            minutes(date(2026, 2, 11), 25, log_id=2, elsewhere="CCM"),
            minutes(date(2026, 2, 12), 30, log_id=3, promoted=False, user=NURSE, qhp=False),
        ),
        communications=(call(date(2026, 2, 10)),),
    )
    pm = bill(f)
    assert codes(pm)["99457"] == 1 and "99458" not in codes(pm)
    [d] = [d for d in pm.decisions if d.code == "99457"]
    assert d.evidence["minutes_not_counted"] == 55
    assert d.evidence["not_counted_reasons"] == ["counted for CCM", "flag not promoted"]


def test_asynchronous_portal_messages_and_voicemail_are_not_interactive() -> None:
    for mode, rt, tw in (("portal_message", False, True), ("voicemail", False, False)):
        f = patient(
            time_logs=(minutes(date(2026, 2, 10), 25),),
            communications=(call(date(2026, 2, 10), mode=mode, realtime=rt, two_way=tw),),
        )
        [d] = [d for d in bill(f).decisions if d.code == "99457"]
        assert not d.emitted and d.rule == "M0"


def test_99091_is_withheld_when_management_is_billed_in_any_month_the_period_touches() -> None:
    # first day Jan 31: period 0 = Jan 31..Mar 1 touches January, February and March
    first = date(2026, 1, 31)
    logs = (minutes(date(2026, 2, 10), 35, log_id=1),)
    quiet = patient(readings=days(first, 20), time_logs=logs)
    assert codes(bill(quiet, 2026, 3)).get("99091") == 1  # no interactive call: no 99457 in Feb
    busy = replace(quiet, communications=(call(date(2026, 2, 10)),))
    march = bill(busy, 2026, 3)  # the period ends in March; 99457 was billed in February
    [q] = [d for d in march.decisions if d.code == "99091"]
    assert not q.emitted and q.rule == "Q2"


def test_licensure_follows_where_the_patient_was_on_the_date_of_service() -> None:
    moved = (Location("NY", None, date(2026, 2, 14)), Location("NJ", date(2026, 2, 15)))
    base = patient(
        state="NJ",
        locations=moved,
        time_logs=(minutes(date(2026, 2, 10), 25),),
        communications=(call(date(2026, 2, 10)),),
    )
    assert _mgmt(bill(base)) == {"99457": 1}  # Feb 10: in NY, licensed there
    late = replace(
        base, time_logs=(minutes(date(2026, 2, 20), 25),), communications=(call(date(2026, 2, 20)),)
    )
    [d] = [d for d in bill(late).decisions if d.code == "99457"]
    assert not d.emitted and "G14" in d.rule and "NJ on 2026-02-20" in d.reason
    both = replace(late, practitioners=practitioners("NY", "NJ"))
    assert _mgmt(bill(both)) == {"99457": 1}
    assert bill(both).state == "NJ"


def test_order_gates_on_the_date_of_service() -> None:
    mgmt = {"time_logs": (minutes(date(2026, 2, 10), 25),), "communications": (call(date(2026, 2, 10)),)}
    cases = {
        "none": (),
        "late": (Order(1, DR, date(2026, 2, 20), ("I10",)),),
        "malformed": (Order(1, DR, date(2026, 1, 1), ("XYZ",)),),
        "ended": (Order(1, DR, date(2026, 1, 1), ("I10",), end_date=date(2026, 2, 1)),),
        "no_diagnosis": (Order(1, DR, date(2026, 1, 1), ()),),
    }
    for name, orders in cases.items():
        [d] = [d for d in bill(patient(orders=orders, **mgmt)).decisions if d.code == "99457"]
        assert not d.emitted and "G3" in d.rule, name
    assert _mgmt(bill(patient(**mgmt))) == {"99457": 1}


def test_consent_scope_and_revocation() -> None:
    mgmt = {"time_logs": (minutes(date(2026, 2, 10), 25),), "communications": (call(date(2026, 2, 10)),)}
    wrong_scope = patient(consents=(Consent(1, date(2025, 12, 1), scope=("treatment",)),), **mgmt)
    revoked = patient(consents=(Consent(1, date(2025, 12, 1), revoked_on=date(2026, 2, 5)),), **mgmt)
    for f in (wrong_scope, revoked):
        [d] = [d for d in bill(f).decisions if d.code == "99457"]
        assert not d.emitted and "G2" in d.rule


def test_a_payer_profile_changes_thresholds_and_requires_prior_authorisation() -> None:
    md = replace(
        rules.MEDICARE_CY2026,
        payer="medicaid_md",
        max_99458_units=1,
        requires_prior_auth=True,
        label="Maryland Medicaid (example)",
    )
    f = patient(
        payers=(PayerPeriod("medicaid_md", date(2026, 1, 1)),),
        time_logs=(minutes(date(2026, 2, 10), 70),),
        communications=(call(date(2026, 2, 10)),),
    )
    pm = engine.bill_month(f, 2026, 2, [*POLICIES, md])
    assert codes(pm) == {} and pm.payer == "medicaid_md" and pm.policy_label == "Maryland Medicaid (example)"
    assert all("PA" in d.rule for d in pm.decisions)
    ok = replace(f, prior_auths=(PriorAuth("medicaid_md", date(2026, 1, 1), date(2026, 6, 30)),))
    pm = engine.bill_month(ok, 2026, 2, [*POLICIES, md])
    assert _mgmt(pm) == {"99457": 1, "99458": 1}
    assert {d.evidence["profile"] for d in pm.decisions} == {"Maryland Medicaid (example)"}


def test_the_payer_can_change_between_periods() -> None:
    f = patient(
        payers=(
            PayerPeriod("medicare", date(2025, 1, 1), date(2026, 2, 28)),
            PayerPeriod("acme", date(2026, 3, 1)),
        )
    )
    acme = replace(rules.MEDICARE_CY2026, payer="acme", label="Acme")
    assert engine.bill_month(f, 2026, 2, [*POLICIES, acme]).payer == "medicare"
    assert engine.bill_month(f, 2026, 3, [*POLICIES, acme]).payer == "acme"


def test_a_payer_without_a_profile_withholds_everything_with_the_reason() -> None:
    f = patient(
        payers=(PayerPeriod("acme", date(2026, 1, 1)),),
        time_logs=(minutes(date(2026, 2, 10), 25),),
        communications=(call(date(2026, 2, 10)),),
    )
    pm = bill(f)
    assert codes(pm) == {} and pm.payer == "acme"
    blocked = [d for d in pm.decisions if "would otherwise" in d.reason]
    assert blocked and all("PROFILE" in d.rule.split("+") for d in blocked)
