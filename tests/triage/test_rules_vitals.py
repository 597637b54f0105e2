"""Weight gain, SpO2 and pulse persistence rules on hand-built frames (issue 16)."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from tests.triage.builders import NOW, Readings, rules_of
from triage.limits import Limits
from triage.rules import (
    SAFETY_FLOOR_RULES,
    apply_snoozes,
    evaluate_readings,
    pulse_out_of_range,
    spo2_critical,
    spo2_low,
    weight_gain,
)

MIN = timedelta(minutes=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def _limits(key: str, value: float) -> Limits:
    return Limits(pd.DataFrame({"patient_id": [1], "threshold_key": [key], "value_canonical": [value]}))


@pytest.mark.parametrize(("today", "flag"), [(80.8, False), (80.9, True), (81.5, True)])
def test_weight_gain_in_a_day(today: float, flag: bool) -> None:
    r = Readings()
    r.weight(80.0, ago=DAY)
    r.weight(today)
    got = weight_gain(r.frame(), now=NOW)
    assert rules_of(got) == ([("weight_gain", "high")] if flag else [])
    if flag:
        assert got["reading_ids"].iloc[0] == [1, 2]
        assert "in a day from 80.0 kg" in got["reason"].iloc[0]
        assert got["baseline"].iloc[0] == 80.0


def test_weight_gain_in_a_week_against_the_lowest_weighing() -> None:
    r = Readings()
    for d, kg in ((6, 80.0), (5, 80.6), (4, 81.0), (3, 81.4), (2, 81.7), (1, 81.9)):
        r.weight(kg, ago=d * DAY)
    r.weight(82.3)  # 0.4 kg over yesterday, 2.3 kg over the week's lowest (6 days ago)
    got = weight_gain(r.frame(), now=NOW)
    last = got[got["last_reading_at"] == pd.Timestamp(NOW)]
    assert len(last) == 1
    assert "in a week from 80.0 kg" in last["reason"].iloc[0]
    assert last["reading_ids"].iloc[0] == [1, 7]


def test_weight_same_day_reweighing_is_not_a_day_gain() -> None:
    r = Readings()
    r.weight(80.0, ago=2 * HOUR)  # before breakfast, then dressed: within 12 h, not "a day"
    r.weight(81.2)
    assert weight_gain(r.frame(), now=NOW).empty


def test_weight_gain_threshold_override_in_pounds_converts() -> None:
    from triage.overrides import to_canonical

    kg = to_canonical("weight_gain_day", 3.0, "lb")
    assert kg == pytest.approx(1.36077711)
    r = Readings()
    r.weight(80.0, ago=DAY)
    r.weight(81.0)
    assert weight_gain(r.frame(), now=NOW, limits=_limits("weight_gain_day", kg)).empty
    assert not weight_gain(r.frame(), now=NOW).empty


def test_weight_unsuccessful_or_quarantined_never_alerts() -> None:
    r = Readings()
    r.weight(80.0, ago=DAY)
    r.weight(327.675, device_status=["measurement_unsuccessful"])
    r.weight(85.0, quality="quarantined")
    assert weight_gain(r.frame(), now=NOW).empty


def test_weight_patients_are_kept_apart() -> None:
    r = Readings()
    r.weight(60.0, ago=DAY, patient_id=2)
    r.weight(80.0, ago=DAY)
    r.weight(80.2)
    r.weight(61.0, patient_id=2)
    got = weight_gain(r.frame(), now=NOW)
    assert list(got["patient_id"]) == [2]


def test_spo2_low_needs_two_occasions_within_an_hour() -> None:
    r = Readings()
    r.spo2(89, ago=2 * HOUR)
    r.spo2(89, ago=10 * MIN)  # 110 min after the first: not sustained
    assert spo2_low(r.frame(), now=NOW).empty
    r.spo2(88)
    got = spo2_low(r.frame(), now=NOW)
    assert rules_of(got) == [("spo2_low", "high")]
    assert got["reading_ids"].iloc[0] == [2, 3]


def test_spo2_low_copd_care_plan_line_88() -> None:
    r = Readings()
    r.spo2(89, ago=20 * MIN)
    r.spo2(89)
    assert not spo2_low(r.frame(), now=NOW).empty
    assert spo2_low(r.frame(), now=NOW, limits=_limits("spo2_low", 88)).empty


def test_spo2_continuous_minutes_count_as_occasions() -> None:
    r = Readings()
    r.spo2(87, minimum=84, ago=MIN)
    r.spo2(86, minimum=83)
    got = spo2_low(r.frame(), now=NOW)
    assert "minute median, min 83 %" in got["reason"].iloc[0]


@pytest.mark.parametrize(("pct", "flag"), [(85, False), (84, True), (70, True)])
def test_spo2_critical_floor(pct: float, flag: bool) -> None:
    r = Readings()
    r.spo2(pct)
    assert rules_of(spo2_critical(r.frame(), now=NOW)) == ([("spo2_critical", "critical")] if flag else [])


def test_spo2_critical_floor_can_only_be_raised_and_is_never_snoozed() -> None:
    r = Readings()
    r.spo2(84)
    assert not spo2_critical(r.frame(), now=NOW, limits=_limits("spo2_critical", 80)).empty
    assert not spo2_critical(r.frame(), now=NOW.replace(), limits=_limits("spo2_critical", 90)).empty
    assert "spo2_critical" in SAFETY_FLOOR_RULES
    cands = evaluate_readings(r.frame(), now=NOW).candidates
    snoozes = pd.DataFrame(
        {
            "patient_id": [1],
            "rule_id": ["spo2_critical"],
            "until": [NOW + DAY],
            "reason": ["x"],
            "set_by": ["dr"],
        }
    )
    kept, muted = apply_snoozes(cands, snoozes)
    assert "spo2_critical" in set(kept["rule_id"]) and muted.empty


def test_spo2_device_problem_never_alerts() -> None:
    r = Readings()
    r.spo2(70, device_status=["sensor_displaced"])
    r.spo2(71, ago=-MIN, device_status=["questionable_measurement_detected"])
    assert evaluate_readings(r.frame(), now=NOW + HOUR).candidates.empty


def test_pulse_persistent_across_sessions_one_reading_a_day() -> None:
    r = Readings()
    for hours, pulse in ((46, 128), (30, 145), (20, 133), (0, 139)):
        r.bp(130, 80, pulse=pulse, ago=hours * HOUR)
    got = pulse_out_of_range(r.frame(), now=NOW)
    assert set(got["rule_id"]) == {"pulse_out_of_range"}
    assert [1, 2, 3] in list(got["reading_ids"])
    assert "on 3 consecutive readings" in got["reason"].iloc[0]


def test_pulse_persistence_needs_consecutive_occasions_in_three_days() -> None:
    r = Readings()
    r.bp(130, 80, pulse=130, ago=5 * DAY)
    r.bp(130, 80, pulse=130, ago=2 * DAY)
    r.bp(130, 80, pulse=80, ago=DAY)
    r.bp(130, 80, pulse=130)
    assert pulse_out_of_range(r.frame(), now=NOW).empty


def test_pulse_from_the_oximeter_counts() -> None:
    r = Readings()
    r.spo2(97, pulse=44, ago=10 * MIN)
    r.spo2(97, pulse=45)
    assert rules_of(pulse_out_of_range(r.frame(), now=NOW)) == [("pulse_out_of_range", "moderate")]


def _steady(r: Readings, sbp: float, dbp: float, days: int = 27) -> None:
    """One reading a day at the patient's treated level, ending 3 days before NOW."""
    for d in range(days, 2, -1):
        r.bp(sbp, dbp, ago=d * DAY)


def _last_run(level: tuple[float, float], run: tuple[float, float], hours: tuple[int, ...]) -> pd.DataFrame:
    """Stage-2 candidates ending at NOW: a steady ``level`` for weeks, then ``run`` at ``hours`` ago."""
    from triage.rules import bp_stage2_sustained

    r = Readings()
    _steady(r, *level)
    for h in hours:
        r.bp(*run, ago=h * HOUR)
    got = bp_stage2_sustained(r.frame(), now=NOW)
    return got[got["last_reading_at"] == pd.Timestamp(NOW)]


def test_stable_high_is_judged_against_its_treated_baseline() -> None:
    last = _last_run((145, 92), (146, 91), (48, 24, 0))
    assert len(last) == 1
    assert last["dedup"].iloc[0] == "episode"
    assert str(last["episode_key"].iloc[0]).startswith("review:")
    assert "treated baseline (28-day median 145/92" in last["reason"].iloc[0]
    assert "not worsening" in last["reason"].iloc[0]


def test_stable_high_worsening_is_raised_at_once() -> None:
    last = _last_run((145, 92), (158, 94), (48, 24, 0))
    assert list(last["dedup"]) == ["readings"]
    assert list(last["episode_key"]) == [""]
    assert "worse than this patient's treated baseline" in last["reason"].iloc[0]


def test_new_stage2_without_a_high_baseline_is_raised_per_readings() -> None:
    got = _last_run((125, 78), (146, 91), (48, 24, 0))
    assert list(got["dedup"]) == ["readings"]
    assert "Review the treatment plan." in got["reason"].iloc[0]


@pytest.mark.parametrize(
    ("run", "hours"),
    [
        ((147, 98), (48, 24, 0)),  # +6 diastolic on a 3-reading mean: noise (crossed the old 5 mmHg)
        ((160, 100), (2, 1, 0)),  # clearly worse, but on one day only: wait for a second day
    ],
)
def test_stable_high_not_worse_beyond_noise_stays_on_the_review(
    run: tuple[float, float], hours: tuple[int, ...]
) -> None:
    last = _last_run((145, 92), run, hours)
    assert list(last["dedup"]) == ["episode"]
    assert "not worsening" in last["reason"].iloc[0]


@pytest.mark.parametrize(
    ("mean", "sd", "worse"),
    [
        (155.0, 0.0, True),
        (154.0, 0.0, False),
        (155.0, 12.0, False),
        (166.0, 12.0, True),
        (155.0, float("nan"), True),
    ],
)
def test_worsening_margin_scales_with_the_patients_own_noise(mean: float, sd: float, worse: bool) -> None:
    """Floor 10 mmHg, or 3 SDs of a 3-reading mean (12 / sqrt(3) * 3 = 20.8) when that is larger."""
    from triage.rules.treated import worse_beyond_noise

    got = worse_beyond_noise(np.array([mean]), np.array([145.0]), np.array([sd]), 10.0, 3)
    assert bool(got[0]) is worse


def _new_patient(r: Readings, sbp: float, dbp: float, days: int) -> None:
    """A new patient at stage 2 from the first reading: two readings a day for ``days`` days."""
    for d in range(days - 1, -1, -1):
        for h in (12, 0):
            r.bp(sbp, dbp, ago=d * DAY + h * HOUR)


def test_new_patient_at_stage2_is_raised_once_per_warmup_review_not_after_every_close() -> None:
    from triage.rules import bp_stage2_sustained

    r = Readings()
    _new_patient(r, 146, 92, 4)
    got = bp_stage2_sustained(r.frame(), now=NOW)
    assert len(got) == 6  # every run from the third reading on, all one warm-up episode per 7 days
    assert set(got["dedup"]) == {"episode"}
    # one review period, counted from this patient's first reading (3.5 days ago), not the calendar
    first = (NOW - 3 * DAY - 12 * HOUR).date().isoformat()
    assert set(got["episode_key"]) == {f"review:{first}"}
    assert "before this patient's treated baseline is built (n=" in got["reason"].iloc[-1]


def test_new_patient_clearly_worse_than_the_readings_so_far_is_raised_at_once() -> None:
    from triage.rules import bp_stage2_sustained

    r = Readings()
    for h in (120, 108, 96, 84):
        r.bp(146, 92, ago=h * HOUR)
    for h in (48, 24, 0):
        r.bp(162, 101, ago=h * HOUR)
    got = bp_stage2_sustained(r.frame(), now=NOW)
    last = got[got["last_reading_at"] == pd.Timestamp(NOW)]
    assert list(last["dedup"]) == ["readings"]
    assert list(last["episode_key"]) == [""]
