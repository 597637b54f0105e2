"""Mid-period forecast: will this device period land in 99454, 99445 or nothing? (DOMAIN H2)

Pure over plain numbers, plus one SQL helper for the patient's current period. It is meant for
clinical adherence outreach (a patient who stopped measuring), never to solicit readings for revenue.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import psycopg

from triage.billing.gates import enrolment_for, payer_for
from triage.billing.load import load_patient_facts, load_policies
from triage.billing.policy import Policy, select_policy


@dataclass(frozen=True)
class Forecast:
    period_start: date
    period_end: date
    as_of: date
    days_with_data: int
    days_elapsed: int
    days_remaining: int
    projected_days: int  # at the rate so far
    can_reach_99454: bool  # even if every remaining day has data
    on_track_99454: bool
    days_needed_for_99454: int
    likely_code: str | None  # '99454', '99445' or None

    @property
    def reason(self) -> str:
        if self.days_with_data >= 0 and not self.can_reach_99454:
            return f"{self.days_with_data} days so far and {self.days_remaining} left: 99454 out of reach"
        if self.on_track_99454:
            return f"on track: {self.projected_days} projected days"
        return f"needs {self.days_needed_for_99454} more days with data in {self.days_remaining} days"


def forecast_period(*, days_with_data: int, period_start: date, as_of: date, policy: Policy) -> Forecast:
    """Project the period's day count linearly from the days elapsed (as_of inclusive)."""
    length = policy.device_period_days
    end = period_start + timedelta(days=length - 1)
    elapsed = max(1, min(length, (as_of - period_start).days + 1))
    remaining = length - elapsed
    projected = min(length, round(days_with_data * length / elapsed))
    hi, lo = policy.device_high_min_days, policy.device_low_min_days
    needed = max(0, hi - days_with_data)
    likely: str | None = None
    if projected >= hi:
        likely = "99454"
    elif projected >= lo and policy.has_99445:
        likely = "99445"
    return Forecast(
        period_start,
        end,
        as_of,
        days_with_data,
        elapsed,
        remaining,
        projected,
        days_with_data + remaining >= hi,
        projected >= hi,
        needed,
        likely,
    )


def forecast_current(conn: psycopg.Connection[Any], patient_id: int, as_of: date) -> Forecast | None:
    """The forecast for the device period containing ``as_of`` (None: not monitoring)."""
    facts = load_patient_facts(conn, patient_id, as_of)
    if facts is None:
        return None
    enr = enrolment_for(facts, as_of, as_of)
    if enr is None:
        return None
    policy = select_policy(load_policies(conn), payer_for(facts, enr, as_of), as_of)
    episode = [e for e in facts.enrolments if e.episode_id == enr.episode_id]
    first = facts.first_valid_day(min(e.start for e in episode), None)
    if first is None or first > as_of:
        return None
    k = (as_of - first).days // policy.device_period_days
    start = first + timedelta(days=k * policy.device_period_days)
    days, _ = facts.valid_days(start, as_of)
    return forecast_period(days_with_data=len(days), period_start=start, as_of=as_of, policy=policy)
