"""The billing engine's core: one patient's facts + the payer profiles → the month's decisions.

A pure function (:func:`bill_month`) of :class:`~triage.billing.facts.PatientFacts`: no database
and no clock, so every D3 row, boundary and property is tested on plain data. The two clocks of
DOMAIN D3 stay apart:

* **device periods** (99445/99454, 99453, 99091): rolling 30-day windows from the episode's first
  valid day; the periods *ending* in the month are billed with it. 99453 goes to the episode's
  first *qualifying* period (S1), i.e. the first one in which it would be emitted;
* **the calendar month** (99470/99457/99458): minutes on promoted flags, spent in the month, not
  counted elsewhere (G9), with a real-time two-way communication on a promoted flag (G12, D0).

Each gate (D2) is evaluated from the dated histories on the unit's date of service; the payer
profile in force on that date (Medicare FFS CY2026 by default) sets thresholds and extra gates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Any

from triage.billing.facts import Enrolment, PatientFacts, TimeLog
from triage.billing.gates import DEFAULT_PAYER, enrolment_for, gates, month_bounds, months_touched, payer_for
from triage.billing.policy import MEDICARE_CY2026, InvalidPolicy, Policy, select_policy
from triage.billing.rules import Decision, evaluate_device_period, evaluate_month


@dataclass(frozen=True)
class DevicePeriod:
    episode_id: int
    index: int  # 0: first period of the episode
    start: date
    end: date
    days_with_data: int
    readings_by_date: dict[str, list[int]]  # ISO local date -> reading ids that qualified it
    excluded: dict[str, int]  # why other readings did not count
    qhp_minutes: int
    decisions: tuple[Decision, ...]


@dataclass(frozen=True)
class PatientMonth:
    patient_id: int
    mrn: str
    year: int
    month: int
    timezone: str
    state: str
    payer: str
    policy_version: str
    billing_user_id: int | None
    billing_npi: str | None
    place_of_service: str
    icd10_codes: tuple[str, ...]
    mgmt_minutes: int
    interactive: bool
    time_logs: tuple[dict[str, Any], ...]
    communication_ids: tuple[int, ...]
    device_periods: tuple[DevicePeriod, ...]
    decisions: tuple[Decision, ...] = field(default_factory=tuple)
    policy_label: str = ""

    @property
    def emitted(self) -> list[Decision]:
        return [d for d in self.decisions if d.emitted]

    @property
    def withheld(self) -> list[Decision]:
        return [d for d in self.decisions if not d.emitted]


def _with(d: Decision, dos: date, **evidence: Any) -> Decision:
    return replace(d, evidence={**d.evidence, **evidence}, date_of_service=dos)


def _log_dict(t: TimeLog) -> dict[str, Any]:
    return {
        "time_log_id": t.time_log_id,
        "flag_id": t.flag_id,
        "user": t.username,
        "role": t.role,
        "qhp": t.qhp,
        "minutes": t.minutes,
        "date": t.local_date.isoformat(),
        "counted_elsewhere": t.counted_elsewhere,
    }


class Engine:
    """Decisions for one patient; memoises month results (99091 looks at every month it touches)."""

    def __init__(self, facts: PatientFacts, policies: Sequence[Policy]) -> None:
        self.f = facts
        self.policies = list(policies)
        self._months: dict[tuple[int, int], list[Decision]] = {}

    def policy(self, enr: Enrolment | None, on: date) -> Policy:
        """The payer's profile in force on ``on``; without one, a stand-in that withholds every
        code (gate PROFILE) so an unknown payer never bills on Medicare's rules or crashes a run."""
        payer = payer_for(self.f, enr, on)
        try:
            return select_policy(self.policies, payer, on)
        except InvalidPolicy:
            base = max(
                self.policies, key=lambda p: (p.payer == DEFAULT_PAYER, p.effective_from), default=None
            )
            return replace(
                base or MEDICARE_CY2026,
                payer=payer,
                effective_from=on,
                effective_to=on,
                label=f"no {payer} profile",
                missing=True,
            )

    # -- calendar month --------------------------------------------------------------------
    def month_logs(self, start: date, end: date) -> tuple[list[TimeLog], list[TimeLog]]:
        logs = [t for t in self.f.time_logs if start <= t.local_date <= end]
        return [t for t in logs if t.counts], [t for t in logs if not t.counts]

    def interactive_ids(self, start: date, end: date) -> list[int]:
        return [
            c.communication_id
            for c in sorted(self.f.communications, key=lambda c: (c.local_date, c.communication_id))
            if c.interactive and start <= c.local_date <= end
        ]

    def month(self, year: int, month: int) -> list[Decision]:
        key = (year, month)
        if key not in self._months:
            self._months[key] = self._month(year, month)
        return self._months[key]

    def _month(self, year: int, month: int) -> list[Decision]:
        m_start, m_end = month_bounds(year, month)
        counted, not_counted = self.month_logs(m_start, m_end)
        minutes = sum(t.minutes for t in counted)
        comm_ids = self.interactive_ids(m_start, m_end)
        service = sorted(t.local_date for t in counted)
        svc_start, svc_end = (service[0], service[-1]) if service else (m_start, m_end)
        enr = enrolment_for(self.f, svc_start, svc_end)
        policy = self.policy(enr, svc_end)
        days, excluded = self.f.valid_days(m_start, m_end)
        g = gates(
            self.f,
            enr,
            start=svc_start,
            end=svc_end,
            counted_days=len(days),
            excluded=excluded,
            policy=policy,
            unit=(m_start, m_end),
        )
        return [
            _with(
                d,
                svc_end,
                time_log_ids=[t.time_log_id for t in counted],
                communication_ids=comm_ids,
                performers=sorted({f"{t.username} ({t.role})" for t in counted}),
                minutes_not_counted=sum(t.minutes for t in not_counted),
                not_counted_reasons=sorted({t.why_not or "" for t in not_counted}),
                states=self.f.states_between(svc_start, svc_end),
                profile=policy.label or policy.version,
            )
            for d in evaluate_month(mgmt_minutes=minutes, interactive=bool(comm_ids), gates=g, policy=policy)
        ]

    def management_billed_in(self, start: date, end: date) -> bool:
        """Q2: any 99470/99457/99458 emitted in a month the range touches."""
        return any(
            d.emitted and d.code in ("99470", "99457", "99458")
            for y, m in months_touched(start, end)
            for d in self.month(y, m)
        )

    # -- device periods --------------------------------------------------------------------
    def episodes(self) -> dict[int, list[Enrolment]]:
        out: dict[int, list[Enrolment]] = {}
        for e in sorted(self.f.enrolments, key=lambda e: (e.start, e.enrolment_id)):
            out.setdefault(e.episode_id, []).append(e)
        return out

    def episode_periods(self, episode_id: int, rows: list[Enrolment], until: date) -> list[DevicePeriod]:
        """Every period of the episode that starts by ``until``, each evaluated in order (S1 needs
        to know whether an earlier period already emitted 99453)."""
        ep_start = min(e.start for e in rows)
        ep_end = None if any(e.end is None for e in rows) else max(e.end for e in rows if e.end is not None)
        first = self.f.first_valid_day(ep_start, ep_end)
        out: list[DevicePeriod] = []
        if first is None:
            return out
        setup_claimed = any(c.cpt == "99453" and c.service_from >= ep_start for c in self.f.claims)
        setup_in: int | None = None
        k = 0
        while True:
            length = self.policy(rows[-1], first).device_period_days
            start = first + timedelta(days=k * length)
            end = start + timedelta(days=length - 1)
            if start > until or (ep_end is not None and start > ep_end):
                return out
            p = self.period(episode_id, rows, k, start, end, ep_end, setup_claimed, setup_in)
            if setup_in is None and any(d.code == "99453" and d.emitted for d in p.decisions):
                setup_in = k
            out.append(p)
            k += 1

    def period(
        self,
        episode_id: int,
        rows: list[Enrolment],
        k: int,
        start: date,
        end: date,
        ep_end: date | None,
        setup_claimed: bool,
        setup_in: int | None,
    ) -> DevicePeriod:
        enr = enrolment_for(self.f, start, end) or rows[-1]
        policy = self.policy(enr, end)
        by_date, excluded = self.f.valid_days(start, min(end, ep_end) if ep_end else end)
        qhp_logs = [t for t in self.f.time_logs if t.counts and t.qhp and start <= t.local_date <= end]
        qhp_minutes = sum(t.minutes for t in qhp_logs)
        mgmt_billed = qhp_minutes >= policy.min_99091 and self.management_billed_in(start, end)
        education = any(e.education is not None and e.education <= end for e in rows)
        g = gates(
            self.f, enr, start=start, end=end, counted_days=len(by_date), excluded=excluded, policy=policy
        )
        decisions = evaluate_device_period(
            days_with_data=len(by_date),
            first_period=setup_in is None,
            education_documented=education,
            setup_already_billed=setup_claimed,
            qhp_minutes=qhp_minutes,
            performer_is_qhp=qhp_minutes > 0,
            management_billed=mgmt_billed,
            gates=g,
            policy=policy,
        )
        if setup_in is not None:
            decisions = [
                replace(d, reason=f"99453 already emitted in period {setup_in} of this episode")
                if d.code == "99453" and not d.emitted
                else d
                for d in decisions
            ]
        evidence = {
            "period": f"{start.isoformat()}..{end.isoformat()}",
            "episode_id": episode_id,
            "qualifying_dates": sorted(by_date),
            "excluded_readings": excluded,
            "states": self.f.states_between(start, end),
            "profile": policy.label or policy.version,
        }
        out = tuple(_with(d, end, **evidence) for d in decisions)
        return DevicePeriod(episode_id, k, start, end, len(by_date), by_date, excluded, qhp_minutes, out)


def _incomplete(decisions: Sequence[Decision], end: date, as_of: date) -> tuple[Decision, ...]:
    return tuple(
        d.withheld_by(
            "PERIOD",
            f"period runs to {end.isoformat()}, not complete on {as_of.isoformat()} (would be: {d.reason})",
        )
        if d.emitted
        else d
        for d in decisions
    )


def bill_month(
    facts: PatientFacts,
    year: int,
    month: int,
    policies: Sequence[Policy],
    *,
    as_of: date | None = None,
) -> PatientMonth:
    """Every code considered for one patient and calendar month, emitted or withheld with why.

    ``as_of`` withholds device periods that have not ended by that date (a month still running).
    """
    eng = Engine(facts, policies)
    m_start, m_end = month_bounds(year, month)
    decisions = list(eng.month(year, month))
    periods: list[DevicePeriod] = []
    for episode_id, rows in sorted(eng.episodes().items()):
        for p in eng.episode_periods(episode_id, rows, m_end):
            if not m_start <= p.end <= m_end:
                continue
            if as_of is not None and p.end > as_of:
                p = replace(p, decisions=_incomplete(p.decisions, p.end, as_of))
            periods.append(p)
            decisions.extend(p.decisions)
    enr = enrolment_for(facts, m_start, m_end)
    month_policy = eng.policy(enr, m_end)
    billing = None if enr is None else facts.practitioners.get(enr.ordering_user_id)
    order, _ = facts.order_problem(m_end)
    if order is None and facts.orders:
        order = max(facts.orders, key=lambda o: (o.order_date, o.order_id))
    counted, _ = eng.month_logs(m_start, m_end)
    comm_ids = eng.interactive_ids(m_start, m_end)
    return PatientMonth(
        patient_id=facts.patient_id,
        mrn=facts.mrn,
        year=year,
        month=month,
        timezone=facts.timezone,
        state=facts.state_on(m_end),
        payer=month_policy.payer,
        policy_version=month_policy.version,
        billing_user_id=None if enr is None else enr.ordering_user_id,
        billing_npi=None if billing is None else billing.npi,
        place_of_service=month_policy.default_pos,
        icd10_codes=() if order is None else order.icd10_codes,
        mgmt_minutes=sum(t.minutes for t in counted),
        interactive=bool(comm_ids),
        time_logs=tuple(_log_dict(t) for t in counted),
        communication_ids=tuple(comm_ids),
        device_periods=tuple(periods),
        decisions=tuple(decisions),
        policy_label=month_policy.label,
    )
