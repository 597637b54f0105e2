"""The crisis protocol as a workflow that ends: where a bp_crisis flag stands, what is next, its outcome.

A crisis flag used to say "waiting for the re-measurement" forever when the next reading came after
the 15-minute window, and even after promotion. Here the step is derived from the facts, in this
order: a documented outcome, a finished flag, a symptom check saying 911, the re-measurement (the
rule's verdict inside the window, else the patient's later valid readings), the symptom check.

    awaiting_remeasure ─┬─▶ ask_symptoms ─┬─▶ call_911 ───────── called_911 ─┐
    (or overdue)        │                 ├─▶ contact_clinician ─ clinician_contacted ─┤
                        │                 └─▶ close_loop ─────── loop_closed (flag closed)
                        └─ not_reached (any open step): try again, then escalate ──────┘

Outcomes are the only events a person fires here; :data:`OUTCOME_MOVES` is the one table saying
which outcome each step allows and :data:`FLAG_EVENT` what each does to the flag (escalate to the
clinician, close with disposition ``acted``, or just a note). Pure: :func:`remeasure`,
:func:`workflow`, :func:`check_outcome`, :func:`flag_event_for`. SQL: :func:`later_bp_readings` (asks
``triage.readings_store``), :func:`record_outcome` (evidence, lifecycle event and audit row in one
transaction).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Final

import psycopg

from triage import flags_store, lifecycle, readings_store
from triage.clinical import audit, flag_rows
from triage.clinical.symptoms import CRISIS_RULES, RemeasureStatus, remeasure_status
from triage.errors import IllegalTransition, RoleNotAllowed, TerminalTriageError
from triage.thresholds import BP_CRISIS_DIASTOLIC, BP_CRISIS_SYSTOLIC

# Steps (derived, never stored).
AWAITING_REMEASURE: Final = "awaiting_remeasure"
REMEASURE_OVERDUE: Final = "remeasure_overdue"
ASK_SYMPTOMS: Final = "ask_symptoms"
CALL_911: Final = "call_911"
CONTACT_CLINICIAN: Final = "contact_clinician"
CLOSE_LOOP: Final = "close_loop"
ENDED: Final = "ended"
# Outcomes (documented by a nurse or clinician; a step of their own once recorded).
CALLED_911: Final = "called_911"
CLINICIAN_CONTACTED: Final = "clinician_contacted"
NOT_REACHED: Final = "not_reached"
LOOP_CLOSED: Final = "loop_closed"
OUTCOMES: Final = (CALLED_911, CLINICIAN_CONTACTED, NOT_REACHED, LOOP_CLOSED)
STEPS: Final = (AWAITING_REMEASURE, REMEASURE_OVERDUE, ASK_SYMPTOMS, CALL_911, CONTACT_CLINICIAN,
                CLOSE_LOOP, *OUTCOMES, ENDED)
RECORDERS: Final = frozenset({"nurse", "clinician"})
EVENT: Final = "crisis_outcome"  # the audit action is flag.crisis_outcome

OUTCOME_LABELS: Final[dict[str, str]] = {
    CALLED_911: "911 called",
    CLINICIAN_CONTACTED: "Clinician contacted, plan agreed",
    NOT_REACHED: "Patient not reached",
    LOOP_CLOSED: "Loop closed with the patient",
}

_ALL_BUT_CLOSE = frozenset({CALLED_911, CLINICIAN_CONTACTED, NOT_REACHED})
# {step: outcomes allowed}: the one table. An emergency allows only "911 called" (or not reached);
# the loop closes only once the re-measure is normal and no symptom was reported, or after 911 /
# the clinician.
OUTCOME_MOVES: Final[dict[str, frozenset[str]]] = {
    AWAITING_REMEASURE: _ALL_BUT_CLOSE,
    REMEASURE_OVERDUE: _ALL_BUT_CLOSE,
    ASK_SYMPTOMS: _ALL_BUT_CLOSE,
    CALL_911: frozenset({CALLED_911, NOT_REACHED}),
    CONTACT_CLINICIAN: _ALL_BUT_CLOSE,
    CLOSE_LOOP: frozenset(OUTCOMES),
    NOT_REACHED: frozenset(OUTCOMES) - {LOOP_CLOSED},
    CALLED_911: frozenset({CLINICIAN_CONTACTED, LOOP_CLOSED}),
    CLINICIAN_CONTACTED: frozenset({CALLED_911, LOOP_CLOSED}),
    LOOP_CLOSED: frozenset(),
    ENDED: frozenset(),
}

NEXT: Final[dict[str, str]] = {
    AWAITING_REMEASURE: "Ask about symptoms now, and ask the patient to sit quietly, wait 1-5 minutes and"
    " re-measure.",
    REMEASURE_OVERDUE: "No re-measurement yet: call the patient, ask about symptoms and ask them to"
    " re-measure now.",
    ASK_SYMPTOMS: "Ask about symptoms now (chest pain, shortness of breath, back pain, numbness or weakness,"
    " change in vision, difficulty speaking, confusion).",
    CALL_911: "The patient should call 911 now (or call for them). Then record \u201c911 called\u201d.",
    CONTACT_CLINICIAN: "Still at crisis level without symptoms: contact the clinician today about the"
    " medication plan, then record \u201cclinician contacted\u201d.",
    CLOSE_LOOP: "Re-measured below the crisis line and no symptoms: tell the patient the result and when to"
    " call 911, then record \u201cloop closed\u201d.",
    CALLED_911: "Clinician: follow up on the emergency visit, then review the flag. Record"
    " \u201cloop closed\u201d once the patient is back in touch.",
    CLINICIAN_CONTACTED: "Clinician: review the flag and the plan. Record \u201cloop closed\u201d once the"
    " patient has the plan.",
    NOT_REACHED: "Try again within 15 minutes; if the patient is still not reached, escalate to the"
    " clinician.",
    LOOP_CLOSED: "Nothing more: the loop is closed.",
    ENDED: "Nothing more: this flag is finished.",
}


class InvalidOutcome(TerminalTriageError):
    """The outcome is unknown, or does not fit where the crisis stands."""

    def __init__(self, outcome: str, step: str, reason: str) -> None:
        super().__init__(f"crisis outcome {outcome!r} at step {step!r}: {reason}")
        self.outcome = outcome
        self.step = step
        self.reason = reason


@dataclass(frozen=True)
class LaterReading:
    measured_at: datetime
    systolic_mmhg: float
    diastolic_mmhg: float

    @property
    def at_crisis_level(self) -> bool:
        return (self.systolic_mmhg >= BP_CRISIS_SYSTOLIC.value
                or self.diastolic_mmhg >= BP_CRISIS_DIASTOLIC.value)

    @property
    def text(self) -> str:
        return f"{self.systolic_mmhg:g}/{self.diastolic_mmhg:g} mmHg"


def remeasure(
    evidence: Mapping[str, Any], *, crisis_at: datetime | None, later: Sequence[LaterReading], now: datetime
) -> RemeasureStatus:
    """The rule's re-measure verdict; past the window, the patient's later valid readings decide.

    ``late_normal``/``late_high``: no re-measure came inside the window, but readings did later; the
    newest says where the patient is now (a dozen later normal readings are not "waiting").
    """
    base = remeasure_status(evidence, crisis_at=crisis_at, now=now)
    if base.status in ("confirmed", "cleared") or not later:
        return base
    newest = max(later, key=lambda r: r.measured_at)
    high = sum(r.at_crisis_level for r in later)
    count = f"{len(later)} later reading{'s' if len(later) != 1 else ''}"
    if newest.at_crisis_level:
        text = f"{count}, the newest {newest.text}: still at crisis level."
        status = "late_high"
    else:
        text = f"{count}, the newest {newest.text}: below the crisis line"
        text += f" ({high} at crisis level)." if high else "."
        status = "late_normal"
    item = {"systolic_mmhg": newest.systolic_mmhg, "diastolic_mmhg": newest.diastolic_mmhg,
            "measured_at": newest.measured_at.isoformat()}
    return replace(base, status=status, arrived=True, remeasure_reading=item, instruction=text)


@dataclass(frozen=True)
class Workflow:
    step: str
    next_step: str
    outcomes: tuple[str, ...]  # the outcomes a person may record now, in OUTCOMES order
    latest_outcome: Mapping[str, Any] | None

    @property
    def done(self) -> bool:
        return not self.outcomes


def _derived_step(flag_state: str, remeasure_status: str, symptom_outcome: str | None) -> str:
    if flag_state in lifecycle.TERMINAL_STATES:
        return ENDED
    if symptom_outcome == "hypertensive_emergency":
        return CALL_911
    if remeasure_status in ("pending", "overdue"):
        return AWAITING_REMEASURE if remeasure_status == "pending" else REMEASURE_OVERDUE
    if symptom_outcome is None:
        return ASK_SYMPTOMS
    return CONTACT_CLINICIAN if remeasure_status in ("confirmed", "late_high") else CLOSE_LOOP


def workflow(flag_state: str, remeasure_status: str, evidence: Mapping[str, Any]) -> Workflow:
    """Where a crisis flag stands and what a person does next, from the flag's state and evidence."""
    check = evidence.get("symptom_check")
    symptom_outcome = str(check["outcome"]) if isinstance(check, Mapping) and check.get("outcome") else None
    history = [o for o in evidence.get("crisis_outcomes") or [] if isinstance(o, Mapping)]
    latest = history[-1] if history else None
    if latest is not None and str(latest.get("outcome")) in OUTCOMES:
        step = str(latest["outcome"])
    else:
        step = _derived_step(flag_state, remeasure_status, symptom_outcome)
    allowed = OUTCOME_MOVES[step] if flag_state not in lifecycle.TERMINAL_STATES else frozenset()
    text = NEXT[step]
    if flag_state in lifecycle.TERMINAL_STATES and step != LOOP_CLOSED:
        text = f"Nothing more: the flag is {flag_state}."
    elif step in (AWAITING_REMEASURE, REMEASURE_OVERDUE) and symptom_outcome is not None:
        text = "No symptoms reported. Ask the patient to sit quietly, wait 1-5 minutes and re-measure."
    return Workflow(step, text, tuple(o for o in OUTCOMES if o in allowed), latest)


def check_outcome(outcome: str, wf: Workflow) -> None:
    """Refuse an outcome that is unknown or does not fit the step (typed, with the reason)."""
    if outcome not in OUTCOMES:
        raise InvalidOutcome(outcome, wf.step, f"must be one of {', '.join(OUTCOMES)}")
    if outcome not in wf.outcomes:
        if wf.step == CALL_911:
            reason = "symptoms were reported: the patient must call 911 first"
        elif not wf.outcomes:
            reason = "the crisis workflow has ended"
        else:
            reason = f"now only {', '.join(wf.outcomes)}"
        raise InvalidOutcome(outcome, wf.step, reason)


def flag_event_for(outcome: str, flag_state: str, role: str) -> tuple[str, str | None]:
    """The lifecycle event an outcome fires, with its disposition.

    A nurse's 911 call or clinician contact escalates an open or acknowledged flag to the clinician;
    a closed loop closes a flag nobody has reviewed yet (disposition ``acted``); anything else is a
    note, so a reviewed flag keeps its way to promotion.
    """
    if outcome in (CALLED_911, CLINICIAN_CONTACTED) and role == "nurse" and flag_state in (
        lifecycle.OPEN, lifecycle.ACKNOWLEDGED
    ):
        return "escalate", None
    if outcome == LOOP_CLOSED and flag_state in (lifecycle.OPEN, lifecycle.ACKNOWLEDGED, lifecycle.ESCALATED):
        return "close", "acted"
    return "annotate", None


def later_bp_readings(conn: psycopg.Connection[Any], patient_id: int, after: datetime,
                      limit: int = 50) -> list[LaterReading]:
    """The patient's valid BP readings after the crisis reading (newest ``limit``)."""
    rows = readings_store.valid_bp_after(conn, patient_id, after, limit)
    return [LaterReading(at, sys, dia) for at, sys, dia in rows]


def crisis_at(flag: Mapping[str, Any]) -> datetime:
    at = flag.get("first_reading_at") or flag.get("last_reading_at") or flag["opened_at"]
    assert isinstance(at, datetime)
    return at


def current(conn: psycopg.Connection[Any], flag: Mapping[str, Any], *, now: datetime
            ) -> tuple[RemeasureStatus, Workflow]:
    """Re-measure status and workflow of a loaded bp_crisis flag row (``flags.*``)."""
    evidence = flag.get("evidence") or {}
    at = crisis_at(flag)
    later: list[LaterReading] = []
    if flag.get("patient_id") is not None:
        later = later_bp_readings(conn, int(flag["patient_id"]), at)
    rm = remeasure(evidence, crisis_at=at, later=later, now=now)
    return rm, workflow(str(flag["state"]), rm.status, evidence)


@dataclass(frozen=True)
class RecordedOutcome:
    flag_id: int
    outcome: str
    event: str
    state: str
    step: str
    next_step: str


def record_outcome(
    conn: psycopg.Connection[Any], flag_id: int, *, actor: str, role: str, outcome: str,
    note: str | None = None, source_ip: str | None = None,
) -> RecordedOutcome:
    """Document a crisis outcome: appended to ``evidence.crisis_outcomes``, the flag moved, audited.

    One transaction: the row is locked, the workflow recomputed from the database, the outcome
    checked against :data:`OUTCOME_MOVES`, the lifecycle event fired through ``flags_store`` (the
    lifecycle still decides) and a ``flag.crisis_outcome`` audit row written.
    """
    if role not in RECORDERS:
        raise RoleNotAllowed(role, EVENT)
    text = (note or "").strip() or None
    if text is not None and (len(text) > 4000 or "\x00" in text):
        raise InvalidOutcome(outcome, "-", "the note must be under 4000 characters, without NUL")
    with conn.transaction():
        flag = flag_rows.lock_whole(conn, flag_id)
        if flag["rule_id"] not in CRISIS_RULES:
            raise InvalidOutcome(outcome, "-", f"flag {flag_id} is a {flag['rule_id']} flag, not a BP crisis")
        _, wf = current(conn, flag, now=flag["db_now"])
        check_outcome(outcome, wf)
        event, disposition = flag_event_for(outcome, str(flag["state"]), role)
        said = f"Crisis outcome: {OUTCOME_LABELS[outcome]}." + (f" Note: {text}" if text else "")
        try:
            state = flags_store.apply_event(conn, flag_id, event, actor, role, note=said,
                                            disposition=disposition)
        except IllegalTransition:  # e.g. a clinician on an escalated flag: the outcome is still a note
            event, disposition = "annotate", None
            state = flags_store.apply_event(conn, flag_id, event, actor, role, note=said)
        entry = {"outcome": outcome, "by": actor, "role": role, "note": text,
                 "at": flag["db_now"].isoformat(), "flag_event": event}
        flag_rows.append_crisis_outcome(conn, flag_id, entry)
        audit.record(conn, actor=actor, action=f"flag.{EVENT}", patient_id=flag["patient_id"],
                     detail={"flag_id": flag_id, "outcome": outcome, "event": event, "from": flag["state"],
                             "to": state, "role": role}, source_ip=source_ip)
        after = workflow(state, "", {**(flag["evidence"] or {}),
                                     "crisis_outcomes": [*(flag["evidence"] or {}).get("crisis_outcomes", []),
                                                         entry]})
    return RecordedOutcome(flag_id, outcome, event, state, after.step, after.next_step)
