"""Value rules at their boundaries: BP crisis/stage 2/hypotension, glucose levels, HI/LO, quality."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest

from tests.triage.builders import NOW, Readings, rules_of
from triage.rules import (
    bp_crisis,
    bp_hypotension,
    bp_stage2_sustained,
    evaluate_readings,
    glucose_hyper,
    glucose_hypo,
    glucose_ketone_check,
    glucose_meter_out_of_range,
    pulse_out_of_range,
)

MIN = timedelta(minutes=1)


@pytest.mark.parametrize(
    ("sbp", "dbp", "crisis"),
    [(179, 119, False), (180, 100, True), (179, 120, True), (150, 119, False), (181, 121, True)],
)
def test_crisis_threshold(sbp: float, dbp: float, crisis: bool) -> None:
    r = Readings()
    r.bp(sbp, dbp)
    out = bp_crisis(r.frame(), now=NOW)
    assert rules_of(out) == ([("bp_crisis", "critical")] if crisis else [])
    if crisis:
        assert out.loc[0, "confirmation"] == "pending"
        assert "re-measure" in str(out.loc[0, "reason"])


@pytest.mark.parametrize(
    ("second", "gap", "expected", "ids"),
    [
        ((184, 100), 3 * MIN, "confirmed", [1, 2]),
        ((150, 90), 3 * MIN, "cleared", [1, 2]),
        (
            (184, 100),
            16 * MIN,
            "pending",
            [1],
        ),  # outside the re-measure window: a new reading, not a re-measure
        ((184, 100), timedelta(seconds=10), "pending", [1]),  # a duplicate cannot confirm
    ],
)
def test_crisis_remeasure(second: tuple[float, float], gap: timedelta, expected: str, ids: list[int]) -> None:
    r = Readings()
    r.bp(186, 100, ago=gap)
    r.bp(*second)
    out = bp_crisis(r.frame(), now=NOW)
    first = out.iloc[0]
    assert first["confirmation"] == expected
    assert first["reading_ids"] == ids
    assert first["severity"] == "critical"


def test_crisis_remeasure_is_not_a_second_trigger() -> None:
    r = Readings()
    r.bp(186, 100, ago=4 * MIN)
    r.bp(185, 100)
    out = bp_crisis(r.frame(), now=NOW)
    assert len(out) == 1 and out.loc[0, "confirmation"] == "confirmed"


@pytest.mark.parametrize(
    ("values", "flag"),
    [
        ([(140, 80), (141, 70), (150, 85)], True),
        ([(139, 89), (139, 89), (139, 89)], False),
        ([(130, 90), (130, 90), (130, 91)], True),
        ([(150, 85), (150, 85)], False),  # only two
        ([(150, 85), (120, 70), (150, 85), (150, 85)], False),  # interrupted
    ],
)
def test_stage2_persistence(values: list[tuple[float, float]], flag: bool) -> None:
    r = Readings()
    for i, (s, d) in enumerate(values):
        r.bp(s, d, ago=timedelta(hours=12 * (len(values) - i)))
    out = bp_stage2_sustained(r.frame(), now=NOW)
    assert (len(out) > 0) == flag
    if flag:
        assert len(out.iloc[-1]["reading_ids"]) == 3


def test_stage2_needs_the_three_within_seven_days() -> None:
    r = Readings()
    r.bp(150, 85, ago=timedelta(days=8))
    r.bp(150, 85, ago=timedelta(days=2))
    r.bp(150, 85)
    assert bp_stage2_sustained(r.frame(), now=NOW).empty


def test_stage2_duplicates_do_not_count_twice() -> None:
    r = Readings()
    r.bp(150, 85, ago=timedelta(days=1))
    r.bp(150, 85, ago=timedelta(days=1) - timedelta(seconds=5))
    r.bp(150, 85)
    assert bp_stage2_sustained(r.frame(), now=NOW).empty


@pytest.mark.parametrize(("sbp", "dbp", "flag"), [(90, 60, False), (89, 70, True), (100, 59, True)])
def test_hypotension(sbp: float, dbp: float, flag: bool) -> None:
    r = Readings()
    r.bp(sbp, dbp)
    assert rules_of(bp_hypotension(r.frame(), now=NOW)) == ([("bp_hypotension", "high")] if flag else [])


def test_pulse_needs_confirmation() -> None:
    r = Readings()
    r.bp(120, 80, pulse=130, ago=10 * MIN)
    assert pulse_out_of_range(r.frame(), now=NOW).empty
    r.bp(120, 80, pulse=125)
    assert rules_of(pulse_out_of_range(r.frame(), now=NOW)) == [("pulse_out_of_range", "moderate")]


@pytest.mark.parametrize(
    ("mg_dl", "expected"),
    [
        (70, []),
        (69, [("glucose_hypo_l1", "high")]),
        (54, [("glucose_hypo_l1", "high")]),
        (53, [("glucose_hypo_l2", "critical")]),
    ],
)
def test_hypoglycaemia_levels(mg_dl: float, expected: list[tuple[str, str]]) -> None:
    r = Readings()
    r.glucose(mg_dl)
    assert rules_of(glucose_hypo(r.frame(), now=NOW)) == expected


@pytest.mark.parametrize(("mg_dl", "flag"), [(250, False), (251, True)])
def test_hyperglycaemia_level2(mg_dl: float, flag: bool) -> None:
    r = Readings()
    r.glucose(mg_dl)
    assert rules_of(glucose_hyper(r.frame(), now=NOW)) == ([("glucose_hyper_l2", "moderate")] if flag else [])


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([240], []),
        ([241], [("glucose_ketone_check", "info")]),
        ([251, 251], [("glucose_ketone_check", "high"), ("glucose_ketone_check", "info")]),
        ([250, 251], [("glucose_ketone_check", "info"), ("glucose_ketone_check", "info")]),
    ],
)
def test_ketone_check(values: list[float], expected: list[tuple[str, str]]) -> None:
    r = Readings()
    for i, v in enumerate(values):
        r.glucose(v, ago=timedelta(hours=6 * (len(values) - i)))
    assert rules_of(glucose_ketone_check(r.frame(), now=NOW)) == expected


def test_ketone_pair_must_be_within_24h() -> None:
    r = Readings()
    r.glucose(260, ago=timedelta(hours=30))
    r.glucose(260)
    assert "high" not in set(glucose_ketone_check(r.frame(), now=NOW)["severity"])


@pytest.mark.parametrize(
    ("measurement", "quality", "expected"),
    [
        ("out_of_range_low", "failed", [("glucose_meter_lo", "critical")]),
        ("out_of_range_high", "failed", [("glucose_meter_hi", "critical")]),
        ("out_of_range_low", "quarantined", []),
        ("failed", "failed", []),
    ],
)
def test_meter_hi_lo(measurement: str, quality: str, expected: list[tuple[str, str]]) -> None:
    r = Readings()
    r.glucose(None, measurement=measurement, quality=quality)
    assert rules_of(glucose_meter_out_of_range(r.frame(), now=NOW)) == expected


@pytest.mark.parametrize("quality", ["quarantined", "failed"])
def test_quarantined_and_failed_values_never_alert(quality: str) -> None:
    r = Readings()
    r.bp(220, 130, quality=quality, ago=4 * MIN)
    r.bp(221, 131, quality=quality)
    r.glucose(30, quality=quality)
    r.glucose(400, quality=quality, ago=timedelta(hours=2))
    assert evaluate_readings(r.frame(), now=NOW).candidates.empty


def test_movement_error_values_never_alert() -> None:
    r = Readings()
    r.bp(200, 125, device_status=["body_movement"])
    assert evaluate_readings(r.frame(), now=NOW).candidates.empty


def test_readings_after_now_are_ignored() -> None:
    r = Readings()
    r.glucose(40, at=NOW + timedelta(minutes=5))
    assert evaluate_readings(r.frame(), now=NOW).candidates.empty


def test_rules_do_not_mutate_their_input() -> None:
    r = Readings()
    r.bp(186, 100, ago=3 * MIN)
    r.bp(150, 90)
    df = r.frame()
    before = df.copy()
    evaluate_readings(df, now=NOW)
    pd.testing.assert_frame_equal(df, before)


def test_patients_are_kept_apart() -> None:
    r = Readings()
    r.bp(186, 100, ago=3 * MIN, patient_id=1)
    r.bp(186, 100, ago=2 * MIN, patient_id=2)
    out = bp_crisis(r.frame(), now=NOW)
    assert sorted(out["confirmation"]) == ["pending", "pending"]
    assert sorted(out["subject_key"]) == ["patient:1", "patient:2"]
