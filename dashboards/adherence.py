"""Device-data days in the rolling 30-day period (99454 needs 16, 99445 covers 2–15). Pure.

Periods are counted from the first day of monitoring in the patient's zone: period k covers
days [start + 30k, start + 30k + 29]. The forecast says whether 16 days are still reachable,
which lets a nurse do clinical outreach early (Part H2), never a nudge for revenue.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

PERIOD_DAYS = 30
TARGET_DAYS = 16


@dataclass(frozen=True)
class Adherence:
    period_start: date
    period_end: date
    days_with_readings: int
    days_left: int  # days after today still inside the period
    target: int = TARGET_DAYS

    @property
    def reached(self) -> bool:
        return self.days_with_readings >= self.target

    @property
    def reachable(self) -> bool:
        return self.days_with_readings + self.days_left >= self.target

    @property
    def percent(self) -> int:
        return min(100, round(100 * self.days_with_readings / self.target))


def current_period(first_day: date, today: date) -> tuple[date, date]:
    if today < first_day:
        return first_day, first_day + timedelta(days=PERIOD_DAYS - 1)
    k = (today - first_day).days // PERIOD_DAYS
    start = first_day + timedelta(days=k * PERIOD_DAYS)
    return start, start + timedelta(days=PERIOD_DAYS - 1)


def adherence(first_day: date, today: date, reading_days: Iterable[date]) -> Adherence:
    start, end = current_period(first_day, today)
    n = len({d for d in reading_days if start <= d <= end and d <= today})
    return Adherence(start, end, n, max((end - max(today, start)).days, 0))
