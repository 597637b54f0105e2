"""D2 for one billing unit, read from a patient's dated facts, with the month and enrolment lookups.

Apart from engine.py (which turns gates into decisions per device period and month) so each gate's
evidence reads on its own; pure like the engine: no database, no clock.
"""

from __future__ import annotations

import calendar
from datetime import date

from triage.billing.facts import Enrolment, PatientFacts, Practitioner
from triage.billing.policy import Policy
from triage.billing.rules import GateFacts

DEFAULT_PAYER = "medicare"


def month_bounds(year: int, month: int) -> tuple[date, date]:
    return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])


def months_touched(start: date, end: date) -> list[tuple[int, int]]:
    """Every (year, month) a date range touches, in order (a 30-day period can touch three)."""
    out: list[tuple[int, int]] = []
    y, m = start.year, start.month
    while (y, m) <= (end.year, end.month):
        out.append((y, m))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def enrolment_for(f: PatientFacts, start: date, end: date) -> Enrolment | None:
    active = [e for e in f.enrolments if e.active_on(end)]
    if not active:
        active = [e for e in f.enrolments if e.start <= end and (e.end is None or e.end >= start)]
    return active[-1] if active else None


def payer_for(f: PatientFacts, enr: Enrolment | None, on: date) -> str:
    return f.payer_on(on, enr.payer if enr is not None else DEFAULT_PAYER)


def gates(
    f: PatientFacts,
    enr: Enrolment | None,
    *,
    start: date,
    end: date,
    counted_days: int,
    excluded: dict[str, int],
    policy: Policy,
    unit: tuple[date, date] | None = None,
) -> GateFacts:
    """D2 for one unit whose service runs ``start..end`` (``end`` = the date of service).

    ``unit`` is the whole billing unit (the calendar month for management codes) that G7/G8
    compare other claims with; by default the service span. Each step adds its evidence to
    ``notes`` in gate order.
    """
    notes: dict[str, str] = {}
    established = enr is not None and enr.established is not None and enr.established <= enr.start
    consent = any(c.covers(start, end) for c in f.consents)
    if not consent:
        notes["G2"] = f"needed on or before {start.isoformat()}, unrevoked through {end.isoformat()}"
    order, why_no_order = f.order_problem(end)
    if why_no_order:
        notes["G3"] = f"on {end.isoformat()}: {why_no_order}"
    billing = None if enr is None else f.practitioners.get(enr.ordering_user_id)
    licensed = _licensed(f, billing, end, notes)
    other, rtm = _claims_elsewhere(f, None if billing is None else billing.npi, unit or (start, end), notes)
    if counted_days == 0 and excluded.get("manual"):
        notes["G5"] = f"{excluded['manual']} typed-in readings excluded"
    prior_auth = _prior_auth(f, policy, end, notes)
    waived = policy.waived_gates
    return GateFacts(
        established=established or "G1" in waived,
        consent_on_file=consent or "G2" in waived,
        order_with_icd10=order is not None or "G3" in waived,
        fda_device=not (counted_days == 0 and excluded.get("not_fda_cleared", 0) > 0),
        auto_transmitted=counted_days > 0,
        other_practitioner_billed=other and "G7" not in waived,
        rtm_billed=rtm,
        licensed=licensed or "G14" in waived,
        prior_auth=prior_auth,
        profile_known=not policy.missing,
        notes=notes,
    )


def _licensed(f: PatientFacts, billing: Practitioner | None, end: date, notes: dict[str, str]) -> bool:
    """G14: the billing practitioner is licensed where the patient is on the date of service."""
    state = f.state_on(end)
    licensed = billing is not None and billing.licensed(state, end)
    if not licensed:
        notes["G14"] = f"patient located in {state} on {end.isoformat()}"
    return licensed


def _claims_elsewhere(
    f: PatientFacts, npi: str | None, unit: tuple[date, date], notes: dict[str, str]
) -> tuple[bool, bool]:
    """G7 and G8: RPM billed by another NPI, or RTM billed, in claims overlapping the unit."""
    u_start, u_end = unit
    overlapping = [c for c in f.claims if c.service_from <= u_end and c.service_to >= u_start]
    other = [c for c in overlapping if c.program == "RPM" and c.billing_npi != npi]
    rtm = [c for c in overlapping if c.program == "RTM"]
    if other:
        notes["G7"] = ", ".join(
            f"{c.cpt} by NPI {c.billing_npi} {c.service_from}..{c.service_to}" for c in other
        )
    if rtm:
        notes["G8"] = ", ".join(f"{c.cpt} {c.service_from}..{c.service_to}" for c in rtm)
    return bool(other), bool(rtm)


def _prior_auth(f: PatientFacts, policy: Policy, end: date, notes: dict[str, str]) -> bool:
    """PA: a payer that requires prior authorisation has one covering the date of service."""
    payer = policy.payer
    prior_auth = not policy.requires_prior_auth or any(
        a.payer == payer and a.valid_from <= end <= a.valid_to for a in f.prior_auths
    )
    if not prior_auth:
        notes["PA"] = f"{payer} requires it ({policy.version}); none covers {end.isoformat()}"
    return prior_auth
