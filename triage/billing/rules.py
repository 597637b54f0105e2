"""The RPM rule table (DOMAIN D3) as pure functions over plain values.

No I/O and no clock: :mod:`triage.billing.compute` gathers the facts, this module decides. Two
clocks are kept apart: device codes (99445/99454, 99453, 99091) belong to a rolling 30-day device
period, management codes (99470/99457/99458) to a calendar month. Every code considered comes back
as a :class:`Decision`, emitted or withheld, with the rule and the reason; thresholds come from an
effective-dated :class:`~triage.billing.policy.Policy` (DOMAIN H3, in :mod:`triage.billing.policy`,
re-exported here), never from literals here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from triage.billing.policy import (
    MEDICARE_CY2025,
    MEDICARE_CY2026,
    WAIVABLE_GATES,
    InvalidPolicy,
    Policy,
    select_policy,
)

__all__ = [
    "ALL_CODES", "DEVICE_CODES", "MANAGEMENT_CODES", "MEDICARE_CY2025", "MEDICARE_CY2026", "WAIVABLE_GATES",
    "Decision", "GateFacts", "InvalidPolicy", "Policy", "UnitInputs", "apply_gates", "device_code",
    "emitted_codes", "evaluate", "evaluate_device_period", "evaluate_month", "gate_failures",
    "management_codes", "qhp_code", "select_policy", "setup_code",
]

DEVICE_CODES = ("99445", "99454")
MANAGEMENT_CODES = ("99470", "99457", "99458")
ALL_CODES = ("99453", "99445", "99454", "99470", "99457", "99458", "99091")


@dataclass(frozen=True)
class Decision:
    """One code considered for one patient-period: emitted (units ≥ 1) or withheld, and why."""

    code: str
    units: int
    emitted: bool
    rule: str
    reason: str
    evidence: Mapping[str, Any] = field(default_factory=dict)
    date_of_service: date | None = None

    def withheld_by(self, rule: str, reason: str) -> Decision:
        return replace(self, units=0, emitted=False, rule=rule, reason=reason)


def _emit(code: str, units: int, rule: str, reason: str, **evidence: Any) -> Decision:
    return Decision(code, units, True, rule, reason, evidence)


def _withhold(code: str, rule: str, reason: str, **evidence: Any) -> Decision:
    return Decision(code, 0, False, rule, reason, evidence)


@dataclass(frozen=True)
class GateFacts:
    """DOMAIN D2 gates for one unit (device period or calendar month); defaults = all pass."""

    established: bool = True  # G1 prior E/M with the billing practitioner
    consent_on_file: bool = True  # G2 consent on/before service, not revoked
    order_with_icd10: bool = True  # G3 order by physician/NPP with an ICD-10 diagnosis
    fda_device: bool = True  # G4
    auto_transmitted: bool = True  # G5 at least one automatically transmitted valid reading
    other_practitioner_billed: bool = False  # G7 another NPI billed RPM in this period
    rtm_billed: bool = False  # G8 RTM billed in this period
    licensed: bool = True  # G14 billing practitioner licensed in the patient's state on the date
    prior_auth: bool = True  # PA: payer-required prior authorisation covers the date of service
    profile_known: bool = True  # PROFILE: the patient's payer has a profile in force on the date
    notes: Mapping[str, str] = field(default_factory=dict)  # gate id -> evidence text


_GATE_TEXT = (
    ("G1", "established", True, "no prior E/M visit with the billing practitioner (new patient)"),
    ("G2", "consent_on_file", True, "no consent on file on or before the date of service"),
    ("G3", "order_with_icd10", True, "no active order with an ICD-10 diagnosis"),
    ("G4", "fda_device", True, "readings come from no FDA-cleared device"),
    (
        "G5",
        "auto_transmitted",
        True,
        "no automatically transmitted reading (typed-in values are not RPM data)",
    ),
    ("G7", "other_practitioner_billed", False, "another practitioner billed RPM for this period"),
    ("G8", "rtm_billed", False, "RTM was billed for this period (RPM and RTM are exclusive)"),
    (
        "G14",
        "licensed",
        True,
        "billing practitioner not licensed in the patient's state on the date of service",
    ),
    ("PA", "prior_auth", True, "the payer requires a prior authorisation covering the date of service"),
    ("PROFILE", "profile_known", True, "no billing profile of the patient's payer is in force on the date"),
)


def gate_failures(g: GateFacts) -> list[tuple[str, str]]:
    """(gate id, reason) for every failed gate, in table order."""
    out = []
    for gate, attr, must_be, text in _GATE_TEXT:
        if getattr(g, attr) is not must_be:
            note = g.notes.get(gate)
            out.append((gate, f"{gate}: {text}" + (f" ({note})" if note else "")))
    return out


def apply_gates(decisions: Sequence[Decision], gates: GateFacts) -> list[Decision]:
    """Withhold every would-be-emitted code when any gate fails, naming all failed gates."""
    failed = gate_failures(gates)
    if not failed:
        return list(decisions)
    rule = "+".join(g for g, _ in failed)
    reason = "; ".join(r for _, r in failed)
    return [
        d.withheld_by(rule, f"{reason} (would otherwise be: {d.reason})") if d.emitted else d
        for d in decisions
    ]


def device_code(days_with_data: int, policy: Policy) -> Decision:
    """D1–D4: one device code per 30-day period, whatever the number of devices."""
    ev = {"days_with_data": days_with_data, "policy": policy.version}
    hi, lo = policy.device_high_min_days, policy.device_low_min_days
    if days_with_data >= hi:
        return _emit("99454", 1, "D3", f"{days_with_data} days with data ≥ {hi}", **ev)
    if not policy.has_99445:
        return _withhold("99454", "D1", f"{days_with_data} days with data < {hi} (99445 not in force)", **ev)
    if days_with_data >= lo:
        return _emit("99445", 1, "D2", f"{lo} ≤ {days_with_data} days with data ≤ {hi - 1}", **ev)
    return _withhold("99445", "D1", f"{days_with_data} days with data < {lo}: no device code", **ev)


def setup_code(
    *,
    first_period: bool,
    education_documented: bool,
    already_billed: bool,
    days_with_data: int,
    policy: Policy,
) -> Decision:
    """S1/S2: 99453 once per episode, in its first qualifying device period."""
    ev = {"days_with_data": days_with_data, "first_period": first_period, "policy": policy.version}
    if not first_period:
        return _withhold("99453", "S2", "not the first device period of the episode", **ev)
    if already_billed:
        return _withhold("99453", "S2", "99453 already billed in this episode", **ev)
    if not education_documented:
        return _withhold("99453", "S1", "set-up/education not documented", **ev)
    if days_with_data < policy.setup_min_days:
        return _withhold(
            "99453", "S1", f"{days_with_data} days with data < SETUP_MIN_DAYS {policy.setup_min_days}", **ev
        )
    return _emit("99453", 1, "S1", "first device period of the episode, education documented", **ev)


def management_codes(minutes: int, interactive: bool, policy: Policy) -> list[Decision]:
    """M0–M6: 99470 alone, or 99457 (+99458 × full 20-min steps, capped); never rounded up."""
    ev = {"mgmt_minutes": minutes, "interactive": interactive, "policy": policy.version}
    first = "99470" if policy.has_99470 and minutes < policy.min_99457 else "99457"
    if not interactive:
        if minutes >= min(policy.min_99470, policy.min_99457):
            return [_withhold(first, "M0", "no real-time interactive communication this month", **ev)]
        return []
    if minutes < policy.min_99457:
        if policy.has_99470 and minutes >= policy.min_99470:
            return [_emit("99470", 1, "M2", f"{policy.min_99470} ≤ {minutes} min < {policy.min_99457}", **ev)]
        floor = policy.min_99470 if policy.has_99470 else policy.min_99457
        return [_withhold(first, "M1", f"{minutes} min < {floor}", **ev)]
    out = [_emit("99457", 1, "M3", f"{minutes} min ≥ {policy.min_99457}", **ev)]
    extra_units = (minutes - policy.min_99457) // policy.step_99458
    if extra_units == 0:
        return out
    units = min(extra_units, policy.max_99458_units)
    unbilled = minutes - policy.min_99457 - units * policy.step_99458
    rule = "M5" if extra_units >= policy.max_99458_units else "M4"
    out.append(
        _emit(
            "99458",
            units,
            rule,
            f"{units} additional full {policy.step_99458}-min step(s)"
            + (f", capped at {policy.max_99458_units}" if extra_units > units else ""),
            **ev,
            uncapped_units=extra_units,
            unbilled_minutes=unbilled,
        )
    )
    return out


def qhp_code(
    qhp_minutes: int, *, performer_is_qhp: bool, management_billed: bool, policy: Policy
) -> Decision | None:
    """Q1/Q2: 99091 for ≥ 30 physician/QHP minutes in the period, never with the 99457 family."""
    ev = {"qhp_minutes": qhp_minutes, "policy": policy.version}
    if qhp_minutes < policy.min_99091:
        return (
            None
            if qhp_minutes == 0
            else _withhold("99091", "Q1", f"{qhp_minutes} physician/QHP min < {policy.min_99091}", **ev)
        )
    if not performer_is_qhp:
        return _withhold("99091", "Q1", "performer is not a physician/QHP", **ev)
    if management_billed:
        return _withhold("99091", "Q2", "99470/99457/99458 billed in an overlapping period", **ev)
    return _emit("99091", 1, "Q1", f"{qhp_minutes} physician/QHP min ≥ {policy.min_99091}", **ev)


@dataclass(frozen=True)
class UnitInputs:
    """One device period and the calendar month it is billed with (the D3 vector shape)."""

    days_with_data: int
    mgmt_minutes: int
    interactive: bool
    qhp_minutes: int = 0
    performer_is_qhp: bool = False
    first_period: bool = False
    education_documented: bool = True
    setup_already_billed: bool = False
    gates: GateFacts = field(default_factory=GateFacts)


def evaluate_device_period(
    *,
    days_with_data: int,
    first_period: bool,
    education_documented: bool,
    setup_already_billed: bool,
    qhp_minutes: int,
    performer_is_qhp: bool,
    management_billed: bool,
    gates: GateFacts,
    policy: Policy,
) -> list[Decision]:
    """Device code, 99453 and 99091 for one 30-day period, gates applied."""
    out = [
        device_code(days_with_data, policy),
        setup_code(
            first_period=first_period,
            education_documented=education_documented,
            already_billed=setup_already_billed,
            days_with_data=days_with_data,
            policy=policy,
        ),
    ]
    q = qhp_code(
        qhp_minutes, performer_is_qhp=performer_is_qhp, management_billed=management_billed, policy=policy
    )
    if q is not None:
        out.append(q)
    return apply_gates(out, gates)


def evaluate_month(
    *, mgmt_minutes: int, interactive: bool, gates: GateFacts, policy: Policy
) -> list[Decision]:
    """Management codes for one calendar month, gates applied."""
    return apply_gates(management_codes(mgmt_minutes, interactive, policy), gates)


def evaluate(inputs: UnitInputs, policy: Policy = MEDICARE_CY2026) -> list[Decision]:
    """The whole rule table for a period and its month under the same gates (the D3 vectors)."""
    month = evaluate_month(
        mgmt_minutes=inputs.mgmt_minutes, interactive=inputs.interactive, gates=inputs.gates, policy=policy
    )
    mgmt_billed = any(d.emitted for d in management_codes(inputs.mgmt_minutes, inputs.interactive, policy))
    device = evaluate_device_period(
        days_with_data=inputs.days_with_data,
        first_period=inputs.first_period,
        education_documented=inputs.education_documented,
        setup_already_billed=inputs.setup_already_billed,
        qhp_minutes=inputs.qhp_minutes,
        performer_is_qhp=inputs.performer_is_qhp,
        management_billed=mgmt_billed,
        gates=inputs.gates,
        policy=policy,
    )
    return device + month


def emitted_codes(decisions: Iterable[Decision]) -> dict[str, int]:
    """{code: units} of what would go on the claim."""
    out: dict[str, int] = {}
    for d in decisions:
        if d.emitted:
            out[d.code] = out.get(d.code, 0) + d.units
    return out
