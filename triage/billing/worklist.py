"""The billing worklist: per patient and month, what is earned, what is missing, and by when.

Pure, built on the engine (:mod:`triage.billing.engine`): nothing here restates a threshold or a
gate. "What would a little work earn" is asked of the engine itself: the month is re-run with the
missing minutes (and, if none is on file, one real-time two-way call) added today, and whatever
that run emits that today's does not is the opportunity; if the engine still withholds it, its
reason (a gate: consent, order, licence...) is what is missing. Device codes come from the device
period running today: days with data so far against the policy's 2/16-day thresholds and the days
left in the period.

Meant for staff planning care time and outreach that the patient needs anyway; it never invents
minutes or readings (DOMAIN D0: time counts only on promoted flags, readings only if automatic).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date

from triage.billing.engine import Engine, PatientMonth, bill_month
from triage.billing.facts import Communication, PatientFacts, TimeLog
from triage.billing.gates import month_bounds
from triage.billing.policy import Policy
from triage.billing.rules import Decision

GATE_RULES = frozenset({"G1", "G2", "G3", "G4", "G5", "G7", "G8", "G14", "PA", "PROFILE"})
_NO_LIMIT = 10_000  # effort of a step nobody can take this month
REMINDER_MINUTES = 5  # a missing device day, counted as one short reminder call (see Step.effort)
NEXT_MANAGEMENT_STEPS = 2  # the next two management codes are shown; more time reaches the rest


@dataclass(frozen=True)
class Step:
    """One thing that would earn a code: what to do, what it earns, by when, or what blocks it."""

    code: str
    action: str  # "4 more minutes with an interactive call"
    due: date
    days_left: int
    minutes: int  # staff minutes still needed (0 for a call alone, or for device days)
    reachable: bool
    blocked_by: str | None = None  # the engine's reason when a gate withholds it anyway
    days: int = 0  # days with readings still needed (device codes)

    @property
    def effort(self) -> int:
        """Sort key in staff minutes; steps that cannot earn this period last.

        A missing device day is counted as a 5-minute reminder call to the patient (the outreach
        that a patient who stopped measuring needs anyway): a stated proxy, not a measured one.
        """
        if not self.reachable or self.blocked_by is not None:
            return _NO_LIMIT
        return self.minutes + REMINDER_MINUTES * self.days


@dataclass(frozen=True)
class WorkItem:
    patient_id: int
    mrn: str
    year: int
    month: int
    as_of: date
    earned: tuple[Decision, ...]
    withheld: tuple[Decision, ...]
    steps: tuple[Step, ...]
    mgmt_minutes: int
    interactive: bool
    device_days: int | None  # days with data in the running device period
    device_period: tuple[date, date] | None

    @property
    def effort(self) -> int:
        return min((s.effort for s in self.steps), default=_NO_LIMIT)

    @property
    def best(self) -> Step | None:
        open_steps = [s for s in self.steps if s.effort < _NO_LIMIT]
        return min(open_steps, key=lambda s: s.effort) if open_steps else None


def _gate_block(d: Decision) -> str | None:
    rules = set(d.rule.split("+"))
    return d.reason if rules and rules <= GATE_RULES else None


def _emitted(decisions: Sequence[Decision]) -> dict[str, int]:
    return {d.code: d.units for d in decisions if d.emitted}


def _targets(policy: Policy, minutes: int, interactive: bool) -> list[int]:
    """Minute totals at which a management code may start (ascending, above what is logged)."""
    marks = {policy.min_99457} | {
        policy.min_99457 + policy.step_99458 * k for k in range(1, policy.max_99458_units + 1)
    }
    if policy.has_99470:
        marks.add(policy.min_99470)
    out = sorted(t for t in marks if t > minutes)
    return ([minutes] if not interactive else []) + out


def _management_steps(eng: Engine, y: int, m: int, as_of: date) -> list[Step]:
    """Each management code the month can still reach, found by re-running the engine."""
    m_start, m_end = month_bounds(y, m)
    if as_of > m_end or as_of < m_start:
        return []
    f = eng.f
    counted, _ = eng.month_logs(m_start, m_end)
    minutes = sum(t.minutes for t in counted)
    interactive = bool(eng.interactive_ids(m_start, m_end))
    now = _emitted(eng.month(y, m))
    enr = f.enrolments[-1] if f.enrolments else None
    user = enr.ordering_user_id if enr is not None else -1
    comms = (
        f.communications
        if interactive
        else (*f.communications, Communication(-1, as_of, "phone", True, True))
    )
    steps: list[Step] = []
    for target in _targets(eng.policy(enr, as_of), minutes, interactive):
        need = target - minutes
        logs = (*f.time_logs, TimeLog(-1, -1, user, need, as_of)) if need else f.time_logs
        after = Engine(replace(f, time_logs=logs, communications=comms), eng.policies).month(y, m)
        new = {c: u for c, u in _emitted(after).items() if now.get(c, 0) < u}
        blocked = next((r for d in after if not d.emitted and (r := _gate_block(d))), None)
        if not new and blocked is None:
            continue
        call = "" if interactive else "an interactive call"
        action = f"{need} more minutes" + (f" with {call}" if call else "") if need else call
        code = "+".join(sorted(new)) or next(d.code for d in after if not d.emitted and _gate_block(d))
        steps.append(Step(code, action, m_end, (m_end - as_of).days + 1, need, True, blocked))
        if blocked is not None or len(steps) == NEXT_MANAGEMENT_STEPS:
            break  # more time is withheld by the same gate, or is the step after next
    return steps


def _device_step(eng: Engine, as_of: date) -> tuple[Step | None, int | None, tuple[date, date] | None]:
    """The device code the period running today can still reach, and its days so far."""
    for episode_id, rows in sorted(eng.episodes().items(), reverse=True):
        periods = [p for p in eng.episode_periods(episode_id, rows, as_of) if p.start <= as_of <= p.end]
        if not periods:
            continue
        p = periods[-1]
        policy = eng.policy(rows[-1], p.end)
        have = p.days_with_data
        left = (p.end - as_of).days + (0 if as_of.isoformat() in p.readings_by_date else 1)
        hi, lo = policy.device_high_min_days, policy.device_low_min_days
        span = (p.start, p.end)
        if have >= hi:
            return None, have, span
        code, target = ("99445", lo) if policy.has_99445 and have < lo and have + left < hi else ("99454", hi)
        reachable = have + left >= target
        action = (
            f"{target - have} more days with readings ({have} of {target} so far)"
            if reachable
            else f"out of reach: {have} days so far, {left} left, {target} needed"
        )
        blocked = next((r for d in p.decisions if not d.emitted and (r := _gate_block(d))), None)
        step = Step(
            code, action, p.end, (p.end - as_of).days + 1, 0, reachable, blocked, max(target - have, 0)
        )
        return step, have, span
    return None, None, None


def work_item(
    facts: PatientFacts, year: int, month: int, policies: Sequence[Policy], *, as_of: date
) -> WorkItem:
    """One patient's row of the worklist for the month, as of a local date."""
    pm: PatientMonth = bill_month(facts, year, month, policies, as_of=as_of)
    eng = Engine(facts, policies)
    device, days, period = _device_step(eng, as_of)
    steps = _management_steps(eng, year, month, as_of) + ([device] if device is not None else [])
    return WorkItem(
        patient_id=pm.patient_id,
        mrn=pm.mrn,
        year=year,
        month=month,
        as_of=as_of,
        earned=tuple(pm.emitted),
        withheld=tuple(pm.withheld),
        steps=tuple(steps),
        mgmt_minutes=pm.mgmt_minutes,
        interactive=pm.interactive,
        device_days=days,
        device_period=period,
    )


def sort_worklist(items: Sequence[WorkItem]) -> list[WorkItem]:
    """Least work to the next code first; then most already earned (closest to done); then MRN."""
    return sorted(items, key=lambda i: (i.effort, -len(i.earned), i.mrn))
