"""The crisis protocol's human half: the symptom check on a BP-crisis flag, and the re-measure status.

A reading >= 180/120 is half the story (DOMAIN C1, H8). With a symptom of target-organ damage it is
a hypertensive emergency: the patient calls 911 now and does not wait for a re-measurement. With no
symptom it is severe asymptomatic hypertension: the clinician is contacted promptly. The re-measure
(after 1-5 min) is judged by the rule ``triage.rules.blood_pressure.bp_crisis``, which writes
``evidence.confirmation``; this module only reads it.

Pure: :func:`assess`, :func:`check_asked_at`, :func:`remeasure_status`. SQL: :func:`record_symptom_check`
(append-only ``flag_symptom_checks`` row of migration 0021, latest outcome in
``flags.evidence['symptom_check']``, an ``annotate`` event through ``flags_store.apply_event`` so the
lifecycle stays the one authority, and an audit row, all in one transaction) and
:func:`symptom_checks`. Severity is never touched: a crisis flag stays critical either way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

import psycopg
from psycopg.rows import dict_row

from triage import flags_store
from triage.clinical import audit, flag_rows
from triage.errors import RoleNotAllowed, TerminalTriageError
from triage.thresholds import CRISIS_REMEASURE_WINDOW

CRISIS_RULES: Final = frozenset({"bp_crisis"})
ASKERS: Final = frozenset({"nurse", "clinician"})
EVENT: Final = "symptom_check"  # the audit action is flag.symptom_check

# Target-organ-damage symptoms of the AHA crisis page, in the order the form lists them.
TARGET_ORGAN_SYMPTOMS: Final[dict[str, str]] = {
    "chest_pain": "chest pain",
    "shortness_of_breath": "shortness of breath",
    "back_pain": "back pain",
    "numbness_weakness": "numbness or weakness",
    "vision_change": "change in vision",
    "difficulty_speaking": "difficulty speaking",
    "confusion": "confusion",
}
NONE: Final = "none"
LABELS: Final[dict[str, str]] = {**TARGET_ORGAN_SYMPTOMS, NONE: "none of these"}
CHOICES: Final = tuple(LABELS)

HYPERTENSIVE_EMERGENCY: Final = "hypertensive_emergency"
SEVERE_ASYMPTOMATIC: Final = "severe_asymptomatic_hypertension"
OUTCOMES: Final = (HYPERTENSIVE_EMERGENCY, SEVERE_ASYMPTOMATIC)

CALL_911: Final = "Patient should call 911 now."
INSTRUCTIONS: Final[dict[str, str]] = {
    HYPERTENSIVE_EMERGENCY: CALL_911 + " Symptoms of target-organ damage with BP at crisis level are a"
    " hypertensive emergency: do not wait for a re-measurement.",
    SEVERE_ASYMPTOMATIC: "Severe asymptomatic hypertension: contact the clinician promptly (same day) about"
    " the medication plan. The patient calls 911 if any of these symptoms start.",
}

NOTE_MAX = 4000
FUTURE_SLACK = timedelta(minutes=5)  # clock skew between the asker's device and the database
PAST_LIMIT = timedelta(days=1)  # a check for this crisis is asked after it, not long before


class InvalidSymptomCheck(TerminalTriageError):
    """The symptom check itself is wrong (unknown or contradictory symptoms, a bad time or note)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"symptom check: {field} {reason}")
        self.field = field
        self.reason = reason


class NotACrisisFlag(TerminalTriageError):
    """Symptom checks belong to blood-pressure crisis flags only."""

    def __init__(self, flag_id: int, rule_id: str) -> None:
        super().__init__(f"flag {flag_id} is a {rule_id} flag: symptom checks are for bp_crisis flags")
        self.flag_id = flag_id
        self.rule_id = rule_id


@dataclass(frozen=True)
class Assessment:
    symptoms: tuple[str, ...]  # canonical order, no duplicates
    outcome: str
    instruction: str

    @property
    def call_911(self) -> bool:
        return self.outcome == HYPERTENSIVE_EMERGENCY


def assess(symptoms: Iterable[str]) -> Assessment:
    """Outcome of a symptom check: any target-organ symptom is an emergency; ``none`` alone is not.

    An empty answer or ``none`` ticked together with a symptom is refused rather than guessed:
    the person asking must say what the patient said.
    """
    given = set(symptoms)
    if not given:
        raise InvalidSymptomCheck("symptoms", f"are required: tick each one the patient reports, or {NONE!r}")
    unknown = sorted(given - set(CHOICES))
    if unknown:
        raise InvalidSymptomCheck("symptoms", f"not on the list: {', '.join(map(repr, unknown))}")
    if NONE in given and len(given) > 1:
        raise InvalidSymptomCheck("symptoms", f"{NONE!r} cannot be combined with a symptom")
    ordered = tuple(s for s in CHOICES if s in given)
    outcome = SEVERE_ASYMPTOMATIC if ordered == (NONE,) else HYPERTENSIVE_EMERGENCY
    return Assessment(ordered, outcome, INSTRUCTIONS[outcome])


def check_asked_at(asked_at: datetime, *, now: datetime, opened_at: datetime) -> None:
    """When the patient was asked: time-zone aware, not in the future, not long before the flag."""
    if asked_at.tzinfo is None or asked_at.utcoffset() is None:
        raise InvalidSymptomCheck("asked_at", "must be timezone-aware")
    if asked_at > now + FUTURE_SLACK:
        raise InvalidSymptomCheck("asked_at", "is in the future")
    if asked_at < opened_at - PAST_LIMIT:
        raise InvalidSymptomCheck("asked_at", "is more than a day before the flag opened")


def clean_note(note: str | None) -> str | None:
    text = (note or "").strip()
    if not text:
        return None
    if len(text) > NOTE_MAX:
        raise InvalidSymptomCheck("note", f"is longer than {NOTE_MAX} characters")
    if "\x00" in text:
        raise InvalidSymptomCheck("note", "contains a NUL character")
    return text


@dataclass(frozen=True)
class RemeasureStatus:
    status: str  # pending | overdue | confirmed | cleared
    arrived: bool
    crisis_reading: Mapping[str, Any] | None
    remeasure_reading: Mapping[str, Any] | None
    instruction: str


def _bp(item: Mapping[str, Any] | None) -> str:
    if not item or item.get("systolic_mmhg") is None or item.get("diastolic_mmhg") is None:
        return "a reading"
    return f"{float(item['systolic_mmhg']):g}/{float(item['diastolic_mmhg']):g} mmHg"


def remeasure_status(
    evidence: Mapping[str, Any], *, crisis_at: datetime | None, now: datetime
) -> RemeasureStatus:
    """Where the AHA re-measure stands, read from the flag's evidence (the rule decides, not this).

    ``pending`` while the re-measure window is open, ``overdue`` once it has passed without one
    (only a reading inside the window can confirm or clear), else what the rule concluded.
    """
    items = [i for i in evidence.get("items") or [] if isinstance(i, Mapping)]
    first = items[0] if items else None
    confirmation = str(evidence.get("confirmation") or "pending")
    window = int(CRISIS_REMEASURE_WINDOW.total_seconds() // 60)
    if confirmation in ("confirmed", "cleared"):
        second = items[1] if len(items) > 1 else None
        if confirmation == "confirmed":
            text = (
                f"Re-measurement arrived ({_bp(second)}), still at crisis level: crisis confirmed."
                " Act on the symptom check now."
            )
        else:
            text = (
                f"Re-measurement arrived ({_bp(second)}), below the crisis line: cleared by the"
                " AHA re-measure protocol. Symptoms still mean 911."
            )
        return RemeasureStatus(confirmation, True, first, second, text)
    if crisis_at is not None and now - crisis_at > CRISIS_REMEASURE_WINDOW:
        return RemeasureStatus(
            "overdue", False, first, None,
            f"No re-measurement within {window} min of the crisis reading: ask the patient to sit"
            " quietly, wait 1-5 minutes and re-measure now.",
        )
    return RemeasureStatus(
        "pending", False, first, None,
        "Ask the patient to sit quietly, wait 1-5 minutes and re-measure: the next reading"
        f" within {window} min confirms or clears this crisis.",
    )


@dataclass(frozen=True)
class RecordedCheck:
    symptom_check_id: int
    flag_id: int
    outcome: str
    instruction: str
    symptoms: tuple[str, ...]
    asked_at: datetime
    recorded_at: datetime
    state: str

    @property
    def call_911(self) -> bool:
        return self.outcome == HYPERTENSIVE_EMERGENCY


def _event_note(a: Assessment, note: str | None) -> str:
    said = ", ".join(LABELS[s] for s in a.symptoms)
    text = f"Symptom check: {said} → {a.outcome.replace('_', ' ')}. {a.instruction}"
    return f"{text} Note: {note}" if note else text


def record_symptom_check(
    conn: psycopg.Connection[Any],
    flag_id: int,
    *,
    actor: str,
    role: str,
    symptoms: Iterable[str],
    note: str | None = None,
    asked_at: datetime | None = None,
    source_ip: str | None = None,
) -> RecordedCheck:
    """Record one symptom check on a bp_crisis flag, by a nurse or clinician; returns what was stored.

    ``asked_at`` (when the patient answered) defaults to now. In one transaction: the history row,
    ``evidence.symptom_check`` replaced by this latest check, an ``annotate`` flag event (the
    lifecycle checks the role and state) and a ``flag.symptom_check`` audit row.
    """
    if role not in ASKERS:
        raise RoleNotAllowed(role, EVENT)
    a = assess(symptoms)
    text = clean_note(note)
    with conn.transaction():
        rule_id, patient_id, opened_at, now = flag_rows.lock_for_symptom_check(conn, flag_id)
        if rule_id not in CRISIS_RULES:
            raise NotACrisisFlag(flag_id, rule_id)
        asked = asked_at if asked_at is not None else now
        check_asked_at(asked, now=now, opened_at=opened_at)
        state = flags_store.apply_event(conn, flag_id, "annotate", actor, role, note=_event_note(a, text))
        check_id, recorded_at = _insert_check(conn, flag_id, patient_id, actor, role, asked, a, text)
        flag_rows.set_symptom_check(conn, flag_id, {
            "symptom_check_id": check_id,
            "outcome": a.outcome,
            "call_911": a.call_911,
            "instruction": a.instruction,
            "symptoms": list(a.symptoms),
            "asked_by": actor,
            "asked_by_role": role,
            "asked_at": asked.isoformat(),
            "recorded_at": recorded_at.isoformat(),
        })
        audit.record(
            conn,
            actor=actor,
            action=f"flag.{EVENT}",
            patient_id=patient_id,
            detail={"flag_id": flag_id, "symptom_check_id": check_id, "role": role, "outcome": a.outcome,
                    "symptoms": list(a.symptoms)},
            source_ip=source_ip,
        )
    return RecordedCheck(check_id, flag_id, a.outcome, a.instruction, a.symptoms, asked, recorded_at, state)


def _insert_check(
    conn: psycopg.Connection[Any], flag_id: int, patient_id: int | None, actor: str, role: str,
    asked: datetime, a: Assessment, text: str | None,
) -> tuple[int, datetime]:
    """The history row of one check; (symptom_check_id, recorded_at)."""
    ins = conn.execute(
        "INSERT INTO flag_symptom_checks (flag_id, patient_id, asked_by, asked_by_role, asked_at,"
        " symptoms, outcome, note) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
        " RETURNING symptom_check_id, recorded_at",
        (flag_id, patient_id, actor, role, asked, list(a.symptoms), a.outcome, text),
    ).fetchone()
    assert ins is not None
    return int(ins[0]), ins[1]


def symptom_checks(conn: psycopg.Connection[Any], flag_id: int) -> list[dict[str, Any]]:
    """A flag's symptom checks, newest first (the history the evidence keeps only the head of)."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT symptom_check_id, flag_id, asked_by, asked_by_role, asked_at, recorded_at, symptoms,"
            " outcome, note FROM flag_symptom_checks WHERE flag_id = %s"
            " ORDER BY recorded_at DESC, symptom_check_id DESC",
            (flag_id,),
        )
        return list(cur.fetchall())
