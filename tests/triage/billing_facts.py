"""Plain-data builders for the pure billing engine: a patient whose every gate passes, then
whatever a test changes. No database."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

from triage.billing import engine, rules
from triage.billing.facts import (
    Communication,
    Consent,
    DayReading,
    Enrolment,
    Licence,
    Order,
    PatientFacts,
    Practitioner,
    TimeLog,
)
from triage.valid_reading import VALID, Validity

DR = 10  # billing practitioner (clinician, QHP)
NURSE = 20
POLICIES = [rules.MEDICARE_CY2026, rules.MEDICARE_CY2025]
FIRST = date(2026, 1, 5)  # first monitoring day: periods Jan 5..Feb 3, Feb 4..Mar 5, Mar 6..Apr 4


def practitioners(*states: str) -> dict[int, Practitioner]:
    lic = tuple(Licence(s, date(2024, 1, 1), date(2028, 12, 31)) for s in states or ("NY",))
    return {
        DR: Practitioner(DR, "drlee", "clinician", "1234567893", True, lic),
        NURSE: Practitioner(NURSE, "nurse", "nurse", None, False, ()),
    }


def patient(**kw: object) -> PatientFacts:
    base = PatientFacts(
        patient_id=1,
        mrn="MRN-1",
        timezone="America/New_York",
        state="NY",
        enrolments=(Enrolment(1, DR, date(2026, 1, 1), None, date(2025, 11, 1), date(2026, 1, 1), 1),),
        orders=(Order(1, DR, date(2026, 1, 1), ("I10",), medical_necessity="hypertension"),),
        consents=(Consent(1, date(2025, 12, 15)),),
        practitioners=practitioners(),
        readings=days(FIRST, 120),  # a valid reading every day from Jan 5 (X1: on active RPM)
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def days(start: date, n: int, *, first_id: int = 1, validity: Validity = VALID) -> tuple[DayReading, ...]:
    return tuple(DayReading(first_id + i, start + timedelta(days=i), validity) for i in range(n))


def minutes(
    on: date,
    n: int,
    *,
    log_id: int = 1,
    user: int = DR,
    qhp: bool = True,
    promoted: bool = True,
    elsewhere: str | None = None,
) -> TimeLog:
    role = "clinician" if user == DR else "nurse"
    return TimeLog(log_id, 100 + log_id, user, n, on, role, "u", qhp, promoted, elsewhere)


def call(
    on: date, *, cid: int = 1, mode: str = "phone", realtime: bool = True, two_way: bool = True
) -> Communication:
    return Communication(cid, on, mode, realtime, two_way, 101, True)


def codes(pm: engine.PatientMonth) -> dict[str, int]:
    return rules.emitted_codes(pm.decisions)


def bill(f: PatientFacts, year: int = 2026, month: int = 2) -> engine.PatientMonth:
    return engine.bill_month(f, year, month, POLICIES)
