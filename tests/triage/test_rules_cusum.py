"""The windowed CUSUM trend rule on plain values: steady rises flagged, steady patients not."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest

from tests.triage.builders import NOW, Readings, rules_of
from triage.limits import Limits
from triage.rules import evaluate_readings, trend_cusum

DAY = timedelta(days=1)
NOISE = (-0.3, 0.1, 0.25, -0.15, 0.0, 0.2, -0.25)  # a fixed wobble, in units of the metric's spread


def _weights(r: Readings, rise_per_day: float, rise_days: int, history: int = 35) -> None:
    for d in range(history, -1, -1):
        rise = max(0, rise_days - d) * rise_per_day
        r.weight(82.0 + rise + NOISE[d % 7], ago=d * DAY + timedelta(hours=2))


def _bp(
    r: Readings, rise_per_day: float, rise_days: int, history: int = 35, *, dia_ratio: float = 0.4
) -> None:
    """Systolic rising ``rise_per_day``, diastolic ``dia_ratio`` of it (0: isolated systolic)."""
    for d in range(history, -1, -1):
        rise = max(0, rise_days - d) * rise_per_day
        for hour, wobble in ((12, 20), (2, -20)):
            dbp = 80 + dia_ratio * rise + 10 * NOISE[(d + hour + 3) % 7]
            r.bp(128 + rise + wobble * NOISE[(d + hour) % 7], dbp, ago=d * DAY + timedelta(hours=hour))


def test_steady_weight_gain_below_the_week_line_is_flagged() -> None:
    r = Readings()
    _weights(r, 0.3, 5)  # +1.5 kg in 5 days: under the 2.3 kg/week line
    out = trend_cusum(r.frame(), now=NOW)
    assert rules_of(out.iloc[:1]) == [("trend_cusum", "moderate")]
    last = out.iloc[-1]
    assert last["episode_key"].startswith("weight_kg:") and last["dedup"] == "episode"
    assert last["unit"] == "kg" and last["value"] > last["baseline"] == pytest.approx(82.0, abs=0.3)
    assert len(last["reading_ids"]) >= 2 and last["reading_ids"][-1] == r.rows[-1]["reading_id"]
    assert "Weight rising" in last["reason"] and "usual 82.0 kg" in last["reason"]


def test_steady_patients_are_not_flagged() -> None:
    r = Readings()
    _weights(r, 0.0, 0)
    _bp(r, 0.0, 0)
    assert trend_cusum(r.frame(), now=NOW).empty


def test_steady_bp_rise_is_flagged_within_five_days() -> None:
    r = Readings()
    _bp(r, 3.0, 5)  # +15 mmHg over 5 days
    out = trend_cusum(r.frame(), now=NOW)
    assert len(out) > 0 and set(out["episode_key"].str.split(":").str[0]) == {"systolic_mmhg"}
    first = out.sort_values("last_reading_at").iloc[0]
    assert first["last_reading_at"] >= pd.Timestamp(NOW - 5 * DAY)
    assert "Systolic BP rising" in first["reason"]


def test_an_isolated_systolic_rise_is_flagged_as_soon_as_a_rise_in_both() -> None:
    # Systolic alone is scored, so diastolic rising with it or not changes nothing (a combined score
    # weighed an isolated systolic rise 1/sqrt(2 + 2 rho) as much).
    first = []
    for ratio in (0.0, 0.4):
        r = Readings()
        _bp(r, 3.0, 7, dia_ratio=ratio)  # +21 mmHg systolic over 7 days
        out = trend_cusum(r.frame(), now=NOW)
        assert len(out) > 0
        first.append(out["last_reading_at"].min())
    assert first[0] == first[1]
    assert first[0] <= pd.Timestamp(NOW - 2 * DAY)  # within 5 days of the rise's start


def test_needs_a_baseline_before_the_window() -> None:
    r = Readings()
    _weights(r, 0.3, 5, history=12)  # 12 days: no 3-week baseline ending a week before
    assert trend_cusum(r.frame(), now=NOW).empty


@pytest.mark.parametrize(("decision", "flagged"), [(3.5, True), (40.0, False)])
def test_decision_interval_is_a_per_patient_threshold(decision: float, flagged: bool) -> None:
    r = Readings()
    _weights(r, 0.3, 5)
    limits = Limits(
        pd.DataFrame({"patient_id": [1], "threshold_key": ["trend_decision"], "value_canonical": [decision]})
    )
    assert (len(trend_cusum(r.frame(), now=NOW, limits=limits)) > 0) == flagged


def test_a_larger_shift_override_makes_it_less_sensitive() -> None:
    r = Readings()
    _weights(r, 0.3, 5)
    limits = Limits(
        pd.DataFrame({"patient_id": [1], "threshold_key": ["trend_weight_shift"], "value_canonical": [4.0]})
    )
    assert trend_cusum(r.frame(), now=NOW, limits=limits).empty


@pytest.mark.parametrize("shift_days", range(0, 14, 3))
def test_one_rise_is_one_episode_wherever_the_interval_boundary_falls(shift_days: int) -> None:
    r = Readings()
    _weights(r, 0.3, 7)  # long enough for several alarm readings
    for row in r.rows:
        row["measured_at"] += shift_days * DAY
    out = trend_cusum(r.frame(), now=NOW + shift_days * DAY)
    assert len(out) >= 2 and out["episode_key"].nunique() == 1
    assert (out["dedup"] == "episode").all()


def test_value_pass_runs_it() -> None:
    r = Readings()
    _weights(r, 0.3, 5)
    ev = evaluate_readings(r.frame(), now=NOW)
    assert "trend_cusum" in set(ev.candidates["rule_id"])
