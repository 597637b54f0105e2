"""The crisis workflow (pure): the re-measure read from later readings, the step, the outcome table."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from triage.clinical import crisis
from triage.clinical.crisis import InvalidOutcome, LaterReading

T0 = datetime(2026, 3, 10, 14, 0, tzinfo=UTC)
OUTCOMES = ["called_911", "clinician_contacted", "not_reached", "loop_closed"]
EMERGENCY = {"symptom_check": {"outcome": "hypertensive_emergency"}}
CALM = {"symptom_check": {"outcome": "severe_asymptomatic_hypertension"}}


def _later(*values: tuple[float, float], start: timedelta = timedelta(hours=1)) -> list[LaterReading]:
    return [LaterReading(T0 + start + timedelta(hours=i), s, d) for i, (s, d) in enumerate(values)]


def test_a_dozen_later_normal_readings_are_not_waiting() -> None:
    later = _later(*[(128.0, 82.0)] * 12)
    rm = crisis.remeasure({"confirmation": "pending"}, crisis_at=T0, later=later, now=T0 + timedelta(days=1))
    assert rm.status == "late_normal" and rm.arrived
    assert rm.instruction == "12 later readings, the newest 128/82 mmHg: below the crisis line."
    assert rm.remeasure_reading is not None and rm.remeasure_reading["systolic_mmhg"] == 128.0


def test_later_readings_newest_decides_and_counts_the_high_ones() -> None:
    later = _later((190.0, 100.0), (150.0, 95.0))
    rm = crisis.remeasure({}, crisis_at=T0, later=later, now=T0 + timedelta(hours=5))
    assert (rm.status, rm.instruction) == (
        "late_normal", "2 later readings, the newest 150/95 mmHg: below the crisis line (1 at crisis level).")
    high = crisis.remeasure({}, crisis_at=T0, later=_later((120.0, 121.0)), now=T0 + timedelta(hours=5))
    assert high.status == "late_high" and "still at crisis level" in high.instruction


def test_the_rules_verdict_inside_the_window_wins_over_later_readings() -> None:
    evidence = {"confirmation": "confirmed", "items": [{"systolic_mmhg": 186, "diastolic_mmhg": 124},
                                                       {"systolic_mmhg": 190, "diastolic_mmhg": 125}]}
    rm = crisis.remeasure(evidence, crisis_at=T0, later=_later((120.0, 80.0)), now=T0 + timedelta(hours=3))
    assert rm.status == "confirmed" and "190/125 mmHg" in rm.instruction


@pytest.mark.parametrize(("now", "later", "status"), [
    (T0 + timedelta(minutes=5), [], "pending"),
    (T0 + timedelta(minutes=16), [], "overdue"),
])
def test_without_later_readings_the_window_decides(
    now: datetime, later: list[LaterReading], status: str
) -> None:
    assert crisis.remeasure({}, crisis_at=T0, later=later, now=now).status == status


@pytest.mark.parametrize(("state", "remeasure", "evidence", "step"), [
    ("open", "pending", {}, "awaiting_remeasure"),
    ("open", "overdue", {}, "remeasure_overdue"),
    ("open", "overdue", CALM, "remeasure_overdue"),
    ("open", "late_normal", {}, "ask_symptoms"),
    ("acknowledged", "confirmed", {}, "ask_symptoms"),
    ("open", "pending", EMERGENCY, "call_911"),
    ("escalated", "cleared", EMERGENCY, "call_911"),
    ("open", "confirmed", CALM, "contact_clinician"),
    ("open", "late_high", CALM, "contact_clinician"),
    ("open", "cleared", CALM, "close_loop"),
    ("open", "late_normal", CALM, "close_loop"),
    ("promoted", "pending", {}, "ended"),
    ("closed", "overdue", EMERGENCY, "ended"),
    ("open", "pending", {**EMERGENCY, "crisis_outcomes": [{"outcome": "called_911"}]}, "called_911"),
    ("escalated", "late_normal",
     {"crisis_outcomes": [{"outcome": "not_reached"}, {"outcome": "clinician_contacted"}]},
     "clinician_contacted"),
])
def test_step_from_the_facts(state: str, remeasure: str, evidence: dict[str, Any], step: str) -> None:
    wf = crisis.workflow(state, remeasure, evidence)
    assert wf.step == step
    assert wf.next_step and "waiting" not in wf.next_step.lower()


def test_a_promoted_flag_says_nothing_more_and_allows_no_outcome() -> None:
    wf = crisis.workflow("promoted", "overdue", CALM)
    assert (wf.step, wf.outcomes, wf.done) == ("ended", (), True)
    assert wf.next_step == "Nothing more: the flag is promoted."


# Written out by hand: which outcome each step allows.
ALLOWED: dict[str, set[str]] = {
    "awaiting_remeasure": {"called_911", "clinician_contacted", "not_reached"},
    "remeasure_overdue": {"called_911", "clinician_contacted", "not_reached"},
    "ask_symptoms": {"called_911", "clinician_contacted", "not_reached"},
    "call_911": {"called_911", "not_reached"},
    "contact_clinician": {"called_911", "clinician_contacted", "not_reached"},
    "close_loop": set(OUTCOMES),
    "not_reached": {"called_911", "clinician_contacted", "not_reached"},
    "called_911": {"clinician_contacted", "loop_closed"},
    "clinician_contacted": {"called_911", "loop_closed"},
    "loop_closed": set(),
    "ended": set(),
}


@pytest.mark.parametrize(("step", "outcome"), list(itertools.product(ALLOWED, [*OUTCOMES, "called_912"])))
def test_every_step_outcome_pair(step: str, outcome: str) -> None:
    wf = crisis.Workflow(step, crisis.NEXT[step], tuple(sorted(crisis.OUTCOME_MOVES[step])), None)
    if outcome in ALLOWED[step]:
        crisis.check_outcome(outcome, wf)
    else:
        with pytest.raises(InvalidOutcome) as err:
            crisis.check_outcome(outcome, wf)
        assert err.value.outcome == outcome and err.value.step == step
    assert set(crisis.OUTCOME_MOVES) == set(crisis.STEPS)


def test_loop_closed_after_symptoms_names_the_reason() -> None:
    wf = crisis.workflow("open", "cleared", EMERGENCY)
    with pytest.raises(InvalidOutcome, match="must call 911 first"):
        crisis.check_outcome("loop_closed", wf)


@pytest.mark.parametrize(("outcome", "state", "role", "expected"), [
    ("called_911", "open", "nurse", ("escalate", None)),
    ("called_911", "acknowledged", "nurse", ("escalate", None)),
    ("called_911", "escalated", "nurse", ("annotate", None)),
    ("called_911", "open", "clinician", ("annotate", None)),
    ("clinician_contacted", "open", "nurse", ("escalate", None)),
    ("not_reached", "open", "nurse", ("annotate", None)),
    ("loop_closed", "open", "nurse", ("close", "acted")),
    ("loop_closed", "escalated", "clinician", ("close", "acted")),
    ("loop_closed", "reviewed", "clinician", ("annotate", None)),
])
def test_what_each_outcome_does_to_the_flag(
    outcome: str, state: str, role: str, expected: tuple[str, str | None]
) -> None:
    assert crisis.flag_event_for(outcome, state, role) == expected
