"""Stable-high and new patients: review intervals counted from the patient's own start (plain values)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd

from tests.triage.builders import NOW, Readings
from triage.rules import bp_stage2_sustained, evaluate_readings

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)


def _steady(
    r: Readings, start: datetime, days: int, sbp: float = 145, dbp: float = 92, patient: int = 1
) -> None:
    """Two readings a day (07:00 and 19:00 after ``start``) at a steady treated level."""
    for d in range(days):
        for h in (0, 12):
            at = start + d * DAY + h * HOUR
            if at <= NOW:
                r.bp(sbp, dbp, at=at, patient_id=patient)


def _keys(c: pd.DataFrame, patient: int = 1) -> set[str]:
    mine = c[(c["patient_id"] == patient) & (c["rule_id"] == "bp_stage2_sustained")]
    return {str(k) for k in mine["episode_key"]}


def test_review_periods_count_from_the_patients_first_reading() -> None:
    start = NOW - 70 * DAY  # 2025-12-30 18:00 UTC: no calendar boundary is 30 days from it
    r = Readings()
    _steady(r, start, 71)
    got = bp_stage2_sustained(r.frame(), now=NOW)
    assert set(got["dedup"]) == {"episode"}  # steady: never worse than its own baseline
    # warm-up (first 5 days) and the first care-plan period are one episode; then one per 30 days
    assert _keys(got) == {"review:2025-12-30", "review:2026-01-29", "review:2026-02-28"}


def test_each_patient_has_its_own_periods() -> None:
    r = Readings()
    _steady(r, NOW - 50 * DAY, 51, patient=1)
    _steady(r, NOW - 40 * DAY, 41, patient=2)
    got = bp_stage2_sustained(r.frame(), now=NOW)
    assert _keys(got, 1) == {"review:2026-01-19", "review:2026-02-18"}
    assert _keys(got, 2) == {"review:2026-01-29", "review:2026-02-28"}


def test_a_window_of_the_history_with_the_start_passed_in_keeps_the_keys() -> None:
    """The jobs see the last 35 days: with the loader's start the keys are the full history's."""
    start = NOW - 80 * DAY
    r = Readings()
    _steady(r, start, 81)
    full = r.frame()
    window = full[full["measured_at"] > pd.Timestamp(NOW - 35 * DAY)].reset_index(drop=True)
    whole = bp_stage2_sustained(full, now=NOW)
    starts = pd.Series([pd.Timestamp(start)], index=[1])
    seen = bp_stage2_sustained(window, now=NOW, starts=starts)
    # runs with the 28-day baseline in the window too (the jobs raise only the newest ones)
    built = pd.Timestamp(NOW - 29 * DAY)
    whole, seen = whole[whole["first_reading_at"] > built], seen[seen["first_reading_at"] > built]
    assert len(seen) > 50
    assert list(seen["episode_key"]) == list(whole["episode_key"])
    assert _keys(seen) == {"review:2026-01-19", "review:2026-02-18"}
    # without it the window's first reading would be the start: other keys, a new flag every day
    assert _keys(bp_stage2_sustained(window, now=NOW)) != _keys(seen)


def test_worsening_and_crisis_are_never_held_for_the_review() -> None:
    r = Readings()
    _steady(r, NOW - 30 * DAY, 29)  # ends 1-2 days before NOW, in the patient's first review period
    for h in (30, 6, 0):  # 160/100 over two days: worse than 145/92 beyond noise
        r.bp(160, 100, ago=h * HOUR)
    r.bp(186, 124, ago=HOUR)
    starts = pd.Series([pd.Timestamp(NOW - 30 * DAY)], index=[1])
    c = evaluate_readings(r.frame(), now=NOW, starts=starts).candidates
    stage2 = c[(c["rule_id"] == "bp_stage2_sustained") & (c["episode_key"] == "")]
    assert len(stage2) >= 1 and set(stage2["dedup"]) == {"readings"}
    assert "worse than this patient's treated baseline" in stage2["reason"].iloc[0]
    crisis = c[c["rule_id"] == "bp_crisis"]
    assert list(crisis["severity"]) == ["critical"]
