"""The crisis protocol's writes: the symptom check and the documented outcome (911 called, ...).

Triage decides (``triage.clinical.symptoms.record_symptom_check``, ``triage.clinical.crisis.record_outcome``:
the workflow table, the lifecycle event, the audit row); this module only reads the form or JSON and
says what happened and what is next.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response
from pydantic import AwareDatetime, BaseModel, Field

from dashboards.auth import authorize
from dashboards.context import client_ip, ctx
from dashboards.flash import with_code
from dashboards.routes.deps import FlagId, User, domain_errors
from dashboards.sessions import Principal
from dashboards.web import see_other
from triage.clinical import crisis
from triage.clinical import symptoms as symptom_check

router = APIRouter(dependencies=[Depends(authorize)])

Outcome = Literal["called_911", "clinician_contacted", "not_reached", "loop_closed"]


def _record(request: Request, me: Principal, flag_id: int, outcome: str, note: str | None
            ) -> crisis.RecordedOutcome:
    with ctx(request).pool.connection() as conn, domain_errors():
        return crisis.record_outcome(conn, flag_id, actor=me.username, role=me.role, outcome=outcome,
                                     note=note, source_ip=client_ip(request))


@router.post("/flags/{flag_id}/crisis-outcome", include_in_schema=False)
def crisis_outcome(
    request: Request,
    me: User,
    flag_id: FlagId,
    outcome: Annotated[Outcome, Form()],
    note: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    _record(request, me, flag_id, outcome, note.strip() or None)
    return see_other(with_code(f"/flags/{flag_id}#symptom-check", outcome))


class OutcomeIn(BaseModel):
    outcome: Outcome
    note: str | None = Field(default=None, max_length=4000)


@router.post("/api/flags/{flag_id}/crisis-outcome", tags=["triage"])
def api_crisis_outcome(
    request: Request, me: User, flag_id: FlagId, body: OutcomeIn
) -> crisis.RecordedOutcome:
    """Document a bp_crisis outcome; the flag moves as fits (escalated, closed, or a note). 422 when it
    does not fit where the crisis stands (e.g. "loop closed" after symptoms without a 911 call)."""
    return _record(request, me, flag_id, body.outcome, body.note)


SymptomName = Literal[
    "chest_pain", "shortness_of_breath", "back_pain", "numbness_weakness", "vision_change",
    "difficulty_speaking", "confusion", "none",
]


def _record_symptoms(
    request: Request, me: Principal, flag_id: int, symptoms: list[str], *,
    note: str | None, asked_at: datetime | None,
) -> symptom_check.RecordedCheck:
    """One symptom check; triage writes the history row, evidence, flag event and audit row."""
    with ctx(request).pool.connection() as conn, domain_errors():
        return symptom_check.record_symptom_check(
            conn, flag_id, actor=me.username, role=me.role, symptoms=symptoms, note=note,
            asked_at=asked_at, source_ip=client_ip(request),
        )


@router.post("/flags/{flag_id}/symptoms", include_in_schema=False)
def flag_symptoms(
    request: Request,
    me: User,
    flag_id: FlagId,
    symptoms: Annotated[list[str] | None, Form()] = None,
    note: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    _record_symptoms(request, me, flag_id, symptoms or [], note=note, asked_at=None)
    return see_other(with_code(f"/flags/{flag_id}#symptom-check", "symptoms"))


class SymptomCheckIn(BaseModel):
    symptoms: list[SymptomName] = Field(min_length=1, max_length=8)
    note: str | None = Field(default=None, max_length=4000)
    asked_at: AwareDatetime | None = None


class SymptomCheckOut(BaseModel):
    flag_id: int
    symptom_check_id: int
    outcome: Literal["hypertensive_emergency", "severe_asymptomatic_hypertension"]
    call_911: bool
    instruction: str
    symptoms: list[str]
    asked_at: datetime
    recorded_at: datetime
    state: str


@router.post("/api/flags/{flag_id}/symptoms", response_model=SymptomCheckOut, tags=["triage"])
def api_flag_symptoms(request: Request, me: User, flag_id: FlagId, body: SymptomCheckIn) -> dict[str, Any]:
    """Record the AHA symptom check on a bp_crisis flag; any target-organ symptom means call 911 now."""
    rec = _record_symptoms(request, me, flag_id, list(body.symptoms), note=body.note, asked_at=body.asked_at)
    return {**asdict(rec), "call_911": rec.call_911, "symptoms": list(rec.symptoms)}
