"""Properties of the pure engine over generated facts (hypothesis): exclusivity, the 99458 cap,
no code past a failed gate, and monotonicity in minutes and days."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.triage.billing_facts import DR, NURSE, bill, call, days, minutes, patient
from triage.billing import engine, rules
from triage.billing.facts import Claim, Consent, Enrolment, Location, Order, PatientFacts

START = date(2026, 1, 30)  # period 0 = Jan 30 .. Feb 28: it ends in February, the month billed
FEB = [date(2026, 2, 1) + timedelta(days=i) for i in range(28)]

logs_st = st.lists(
    st.tuples(st.sampled_from(FEB), st.integers(1, 45), st.booleans(), st.sampled_from([None, None, "CCM"])),
    max_size=6,
)


def _facts(n_days: int, logs: list[tuple[date, int, bool, str | None]], interactive: bool) -> PatientFacts:
    return patient(
        readings=days(START, n_days),
        time_logs=tuple(
            minutes(d, m, log_id=i, user=DR if qhp else NURSE, qhp=qhp, elsewhere=e)
            for i, (d, m, qhp, e) in enumerate(logs, 1)
        ),
        communications=(call(FEB[3]),) if interactive else (),
    )


def _per_period(pm: engine.PatientMonth) -> list[dict[str, int]]:
    return [rules.emitted_codes(p.decisions) for p in pm.device_periods]


def _month_codes(pm: engine.PatientMonth) -> dict[str, int]:
    return rules.emitted_codes(d for d in pm.decisions if d.code in rules.MANAGEMENT_CODES)


def _mgmt_level(pm: engine.PatientMonth) -> int:
    c = _month_codes(pm)
    return c.get("99470", 0) + 2 * c.get("99457", 0) + c.get("99458", 0)


def _device_level(pm: engine.PatientMonth) -> int:
    return sum(c.get("99445", 0) + 2 * c.get("99454", 0) for c in _per_period(pm))


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 30), logs_st, st.booleans())
def test_exclusive_codes_and_the_cap(
    n: int, logs: list[tuple[date, int, bool, str | None]], inter: bool
) -> None:
    pm = bill(_facts(n, logs, inter))
    for c in _per_period(pm):
        assert not ("99445" in c and "99454" in c)
    m = _month_codes(pm)
    assert not ("99470" in m and ("99457" in m or "99458" in m))
    assert m.get("99458", 0) <= rules.MEDICARE_CY2026.max_99458_units
    assert "99458" not in m or "99457" in m
    if "99091" in rules.emitted_codes(pm.decisions):
        assert not m  # never with the 99457 family in an overlapping period
    for d in pm.decisions:
        assert d.rule and d.reason and d.emitted == (d.units > 0)


def _gate_broken(f: PatientFacts, which: str) -> PatientFacts:
    enr = f.enrolments[0]
    return {
        "G1": lambda: replace(f, enrolments=(replace(enr, established=None),)),
        "G2": lambda: replace(f, consents=(Consent(1, date(2026, 3, 1)),)),
        "G2-scope": lambda: replace(f, consents=(Consent(1, date(2025, 1, 1), scope=("treatment",)),)),
        "G3": lambda: replace(f, orders=(Order(1, DR, date(2026, 3, 1), ("I10",)),)),
        "G7": lambda: replace(
            f, claims=(Claim(date(2026, 1, 1), date(2026, 3, 31), "RPM", "99454", "9999999999"),)
        ),
        "G8": lambda: replace(
            f, claims=(Claim(date(2026, 1, 1), date(2026, 3, 31), "RTM", "98977", "9999999999"),)
        ),
        "G14": lambda: replace(f, locations=(Location("CA", None),)),
        "G1-enrolment": lambda: replace(
            f, enrolments=(replace(enr, start=date(2026, 1, 1), established=date(2026, 1, 2)),)
        ),
    }[which]()


@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, 30),
    logs_st,
    st.booleans(),
    st.sampled_from(["G1", "G2", "G2-scope", "G3", "G7", "G8", "G14", "G1-enrolment"]),
)
def test_no_code_when_any_gate_fails(
    n: int, logs: list[tuple[date, int, bool, str | None]], inter: bool, gate: str
) -> None:
    pm = bill(_gate_broken(_facts(n, logs, inter), gate))
    assert not pm.emitted, [(d.code, d.rule) for d in pm.emitted]
    gate_id = gate.split("-")[0]
    withheld_by_gate = [d for d in pm.decisions if gate_id in d.rule.split("+")]
    assert all(not d.emitted for d in withheld_by_gate)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 29), st.integers(1, 30), logs_st, st.booleans())
def test_monotone_in_days(
    n: int, more: int, logs: list[tuple[date, int, bool, str | None]], inter: bool
) -> None:
    fewer = bill(_facts(n, logs, inter))
    most = bill(_facts(min(30, n + more), logs, inter))
    assert _device_level(most) >= _device_level(fewer)
    assert _mgmt_level(most) >= _mgmt_level(fewer)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 30), logs_st, st.sampled_from(FEB), st.integers(1, 60), st.booleans())
def test_monotone_in_minutes(
    n: int, logs: list[tuple[date, int, bool, str | None]], on: date, extra: int, inter: bool
) -> None:
    base = bill(_facts(n, logs, inter))
    more = bill(_facts(n, [*logs, (on, extra, False, None)], inter))
    assert _mgmt_level(more) >= _mgmt_level(base)
    assert more.mgmt_minutes >= base.mgmt_minutes


def test_a_new_enrolment_in_the_same_episode_keeps_one_setup() -> None:
    f = patient(
        enrolments=(
            Enrolment(1, DR, date(2026, 1, 1), date(2026, 2, 10), date(2025, 11, 1), date(2026, 1, 1), 7),
            Enrolment(2, DR, date(2026, 2, 11), None, date(2025, 11, 1), date(2026, 2, 11), 7),
        )
    )
    setups = [d for m in (1, 2, 3, 4) for d in bill(f, 2026, m).emitted if d.code == "99453"]
    assert len(setups) == 1
