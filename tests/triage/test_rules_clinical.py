"""Clinical boundaries of DOMAIN Part C, table-driven: crisis protocol, stage 2, hypotension,
glucose levels, meter ceiling, occasions vs duplicates, and what never counts."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest

from tests.triage.builders import NOW, Readings, rules_of
from triage.limits import Limits
from triage.rules import (
    adherence_period,
    bp_crisis,
    bp_hypotension,
    bp_stage2_sustained,
    evaluate_readings,
    glucose_hyper,
    glucose_hypo,
    glucose_ketone_check,
)

MIN = timedelta(minutes=1)
SEC = timedelta(seconds=1)


@pytest.mark.parametrize(
    ("second", "gap", "confirmation", "ids"),
    [
        ((180, 100), 3 * MIN, "confirmed", [1, 2]),  # SBP still at the line
        ((170, 120), 3 * MIN, "confirmed", [1, 2]),  # DBP still at the line
        ((179, 119), 3 * MIN, "cleared", [1, 2]),  # just below both
        ((185, 100), 30 * SEC, "confirmed", [1, 2]),  # the shortest re-measure gap
        ((185, 100), 29 * SEC, "pending", [1]),  # too soon to be a re-measure
        ((185, 100), 15 * MIN, "confirmed", [1, 2]),  # the longest
        ((150, 90), 15 * MIN + SEC, "pending", [1]),  # too late: not this crisis' re-measure
    ],
)
def test_crisis_remeasure_boundaries(
    second: tuple[float, float], gap: timedelta, confirmation: str, ids: list[int]
) -> None:
    r = Readings()
    r.bp(186, 100, ago=gap)
    r.bp(*second)
    first = bp_crisis(r.frame(), now=NOW).iloc[0]
    assert (first["severity"], first["confirmation"], first["reading_ids"]) == ("critical", confirmation, ids)


@pytest.mark.parametrize("quality", ["quarantined", "failed"])
def test_unusable_reading_neither_confirms_nor_clears_a_crisis(quality: str) -> None:
    r = Readings()
    r.bp(186, 100, ago=5 * MIN)
    r.bp(150, 90, ago=3 * MIN, quality=quality)
    r.bp(None, None, ago=2 * MIN, quality="failed", measurement="failed")
    r.bp(188, 102)
    out = bp_crisis(r.frame(), now=NOW)
    assert list(out["confirmation"]) == ["confirmed"] and out.iloc[0]["reading_ids"] == [1, 4]


def test_confirmed_crisis_is_never_snoozed_or_overridden() -> None:
    r = Readings()
    r.bp(186, 100, ago=3 * MIN)
    r.bp(184, 100)
    snooze = pd.DataFrame(
        {
            "patient_id": [1],
            "rule_id": ["bp_crisis"],
            "until": [NOW + timedelta(days=1)],
            "reason": ["new ACE inhibitor"],
            "set_by": ["dr.a"],
        }
    )
    limits = Limits(
        pd.DataFrame({"patient_id": [1], "threshold_key": ["bp_crisis_systolic"], "value_canonical": [200.0]})
    )
    ev = evaluate_readings(r.frame(), now=NOW, limits=limits, snoozes=snooze)
    crisis = ev.candidates[ev.candidates["rule_id"] == "bp_crisis"]
    assert list(crisis["confirmation"]) == ["confirmed"]
    assert ev.suppressed.empty


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        # A different value inside 30 s is a real reading: never eaten by the duplicate collapse.
        (("g", 80), ("g", 45), [("glucose_hypo_l2", "critical")]),
        (("bp", 170), ("bp", 185), [("bp_crisis", "critical")]),
        # The same value delivered twice is one reading: one candidate.
        (("g", 45), ("g", 45), [("glucose_hypo_l2", "critical")]),
    ],
)
def test_duplicates_versus_real_readings_within_30s(
    first: tuple[str, float], second: tuple[str, float], expected: list[tuple[str, str]]
) -> None:
    r = Readings()
    for (kind, v), ago in ((first, 10 * SEC), (second, timedelta(0))):
        if kind == "g":
            r.glucose(v, ago=ago)
        else:
            r.bp(v, 100, ago=ago)
    out = evaluate_readings(r.frame(), now=NOW).candidates
    assert rules_of(out) == expected


@pytest.mark.parametrize(
    ("values", "flag"),
    [
        ([(130, 92)] * 3, True),  # DBP category is the higher one: stage 2
        ([(150, 70)] * 3, True),  # SBP category is the higher one
        ([(140, 89)] * 3, True),  # at the SBP line
        ([(139, 90)] * 3, True),  # at the DBP line
        ([(139, 89)] * 3, False),  # stage 1 both
    ],
)
def test_stage2_by_the_higher_category(values: list[tuple[float, float]], flag: bool) -> None:
    r = Readings()
    for i, (s, d) in enumerate(values):
        r.bp(s, d, ago=timedelta(hours=12 * (len(values) - i)))
    assert (len(bp_stage2_sustained(r.frame(), now=NOW)) > 0) == flag


def test_stage2_readings_seconds_apart_are_one_occasion() -> None:
    r = Readings()
    r.bp(150, 85, ago=timedelta(days=1))
    r.bp(152, 86, ago=timedelta(days=1) - 10 * SEC)
    r.bp(150, 85)
    assert bp_stage2_sustained(r.frame(), now=NOW).empty


@pytest.mark.parametrize(
    ("sbp", "dbp", "flag"), [(90, 60, False), (89, 60, True), (90, 59, True), (89, 59, True)]
)
def test_hypotension_boundaries(sbp: float, dbp: float, flag: bool) -> None:
    r = Readings()
    r.bp(sbp, dbp)
    assert (len(bp_hypotension(r.frame(), now=NOW)) > 0) == flag


def test_hypotension_reason_names_the_patient_line() -> None:
    r = Readings()
    r.bp(98, 70)
    limits = Limits(
        pd.DataFrame(
            {"patient_id": [1], "threshold_key": ["bp_hypotension_systolic"], "value_canonical": [100.0]}
        )
    )
    out = bp_hypotension(r.frame(), now=NOW, limits=limits)
    assert "below 100/60" in out.iloc[0]["reason"]


@pytest.mark.parametrize(
    ("mg_dl", "expected"),
    [
        (70, []),
        (69.9, [("glucose_hypo_l1", "high")]),
        (54, [("glucose_hypo_l1", "high")]),
        (53.9, [("glucose_hypo_l2", "critical")]),
        (20, [("glucose_hypo_l2", "critical")]),
        (250, []),
        (250.5, [("glucose_hyper_l2", "moderate")]),
        (600, [("glucose_hyper_l2", "moderate")]),
        (601, [("glucose_hyper_l2", "critical")]),  # above the meter ceiling: as urgent as HI
    ],
)
def test_glucose_levels(mg_dl: float, expected: list[tuple[str, str]]) -> None:
    r = Readings()
    r.glucose(mg_dl)
    df = r.frame()
    assert rules_of(pd.concat([glucose_hypo(df, now=NOW), glucose_hyper(df, now=NOW)])) == expected


def test_ketone_pair_needs_two_occasions() -> None:
    r = Readings()
    r.glucose(262, ago=20 * SEC)
    r.glucose(265)  # a re-read 20 s later: one occasion
    assert "high" not in set(glucose_ketone_check(r.frame(), now=NOW)["severity"])
    r2 = Readings()
    r2.glucose(262, ago=timedelta(hours=3))
    r2.glucose(265)
    assert "high" in set(glucose_ketone_check(r2.frame(), now=NOW)["severity"])


def test_technique_errors_are_not_measuring_days() -> None:
    tz = "America/New_York"
    enrolled = pd.Timestamp("2026-03-01").tz_localize(tz)
    r = Readings()
    for d in range(0, 16, 2):  # 8 good days
        r.bp(125, 80, at=(enrolled + timedelta(days=d, hours=9)).tz_convert("UTC").to_pydatetime())
    for d in range(1, 17, 2):  # 8 more days, every reading with a loose cuff
        r.bp(
            125,
            80,
            device_status=["cuff_too_loose"],
            at=(enrolled + timedelta(days=d, hours=9)).tz_convert("UTC").to_pydatetime(),
        )
    patients = pd.DataFrame(
        {"patient_id": [1], "timezone": [tz], "enrolled_at": [enrolled.tz_convert("UTC")]}
    )
    now = (enrolled + timedelta(days=20, hours=8)).tz_convert("UTC").to_pydatetime()
    out = adherence_period(r.frame(), now=now, patients=patients)
    assert rules_of(out) == [("adherence_period", "moderate")] and out.iloc[0]["value"] == 8
