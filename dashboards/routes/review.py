"""Clinician review of a flag (form and JSON) and promotion to a billable telemedicine event."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field

from dashboards import queries, review_context
from dashboards.audit_trail import record_view
from dashboards.auth import authorize
from dashboards.context import client_ip, ctx, patient_zone
from dashboards.db import Conn
from dashboards.errors import Conflict, DashboardError, NotFound
from dashboards.flash import with_code
from dashboards.routes.deps import FlagId, User, domain_errors
from dashboards.sessions import Principal
from dashboards.units import glucose_unit
from dashboards.web import render, see_other
from triage import lifecycle
from triage.clinical.icd10 import COMMON_RPM_CODES
from triage.clinical.promotion import PromotionRefused, promote
from triage.clinical.review import INTERACTIVE_MODES, record_review

router = APIRouter(dependencies=[Depends(authorize)])

Mode = Literal["video", "phone", "portal_live_chat"]
# CMS place-of-service codes a review is commonly billed under.
POS_CHOICES = {"11": "Office", "02": "Telehealth (not patient's home)", "10": "Telehealth in patient's home",
               "22": "On-campus outpatient hospital", "19": "Off-campus outpatient hospital"}


def _flag_or_404(conn: Conn, flag_id: int) -> dict[str, Any]:
    f = queries.flag(conn, flag_id)
    if f is None:
        raise NotFound(f"no flag {flag_id}")
    return f


def _form_context(conn: Conn, request: Request, me: Principal, flag_id: int) -> dict[str, Any]:
    f = _flag_or_404(conn, flag_id)
    record_view(conn, me, what="review_form", patient_id=f["patient_id"], detail={"flag_id": flag_id},
                source_ip=client_ip(request))
    tz = patient_zone(request, f["patient_tz"])
    unit = glucose_unit(conn, me.user_id)
    extras = review_context.load(conn, f, now=datetime.now(UTC), tz=tz, glucose_unit=unit)
    return {
        **extras,
        "tz": tz,
        "flag": f,
        "events": queries.flag_events(conn, [flag_id]),
        "readings": queries.flag_readings(conn, list(f["reading_ids"])),
        "can_review": "review" in lifecycle.allowed_events(f["state"], me.role),
        "can_promote": "promote" in lifecycle.TRANSITIONS.get(f["state"], {}),
        "modes": INTERACTIVE_MODES,
        "pos_choices": POS_CHOICES,
        "common_codes": COMMON_RPM_CODES,
        "today": datetime.now(tz).date(),
        "form": {},
        "glucose_unit": unit,
        "error": None,
        "reasons": [],
    }


@router.get("/flags/{flag_id}/review", response_class=HTMLResponse, include_in_schema=False)
def review_form(request: Request, me: User, flag_id: FlagId) -> Response:
    with ctx(request).pool.connection() as conn:
        data = _form_context(conn, request, me, flag_id)
    return render(request, "review.html", data)


def _codes(raw: str) -> list[str]:
    return [c.strip() for c in raw.replace(";", ",").split(",") if c.strip()]


def _review(request: Request, me: Principal, flag_id: int, body: ReviewIn) -> int:
    with ctx(request).pool.connection() as conn, domain_errors():
        _flag_or_404(conn, flag_id)
        return record_review(
            conn, flag_id, me.user_id,
            determination=body.determination, icd10_codes=body.icd10_codes, action=body.action,
            minutes=body.minutes, interactive=body.interactive,
            interactive_mode=body.interactive_mode if body.interactive else None,
            place_of_service=body.place_of_service, date_of_service=body.date_of_service,
            source_ip=client_ip(request),
        )


class ReviewIn(BaseModel):
    determination: str = Field(min_length=1, max_length=4000)
    icd10_codes: list[str] = Field(min_length=1, max_length=12)
    action: str = Field(min_length=1, max_length=4000)
    minutes: int = Field(ge=0, le=1440)
    interactive: bool = False
    interactive_mode: Mode | None = None
    place_of_service: str = Field(default="11", pattern=r"^[0-9]{2}$")
    date_of_service: date


@router.post("/flags/{flag_id}/review", response_class=HTMLResponse, include_in_schema=False)
def review_submit(
    request: Request,
    me: User,
    flag_id: FlagId,
    determination: Annotated[str, Form(max_length=4000)],
    icd10_codes: Annotated[str, Form(max_length=400)],
    action: Annotated[str, Form(max_length=4000)],
    minutes: Annotated[int, Form(ge=0, le=1440)],
    date_of_service: Annotated[date, Form()],
    place_of_service: Annotated[str, Form(max_length=2)] = "11",
    interactive: Annotated[bool, Form()] = False,
    interactive_mode: Annotated[Mode | Literal[""], Form()] = "",
) -> Response:
    raw = {"determination": determination, "icd10_codes": icd10_codes, "action": action, "minutes": minutes,
           "date_of_service": date_of_service, "place_of_service": place_of_service,
           "interactive": interactive, "interactive_mode": interactive_mode}
    try:
        body = ReviewIn.model_construct(
            determination=determination, icd10_codes=_codes(icd10_codes), action=action, minutes=minutes,
            interactive=interactive, interactive_mode=interactive_mode or None,
            place_of_service=place_of_service, date_of_service=date_of_service)
        _review(request, me, flag_id, body)
    except DashboardError as exc:
        if exc.status_code not in (409, 422):
            raise
        with ctx(request).pool.connection() as conn:
            data = _form_context(conn, request, me, flag_id)
        data.update(form=raw, error=exc.message, reasons=exc.reasons)
        return render(request, "review.html", data, status_code=exc.status_code)
    return see_other(with_code(f"/flags/{flag_id}", "review"))


def _promote(request: Request, me: Principal, flag_id: int) -> int:
    refused: PromotionRefused | None = None
    with ctx(request).pool.connection() as conn, domain_errors():
        _flag_or_404(conn, flag_id)
        try:
            return promote(conn, flag_id, me.user_id, source_ip=client_ip(request))
        except PromotionRefused as exc:
            refused = exc  # leave the block normally so the refusal's audit row commits
    raise Conflict("promotion refused", reasons=[str(r) for r in refused.reasons])


@router.post("/flags/{flag_id}/promote", include_in_schema=False)
def promote_submit(request: Request, me: User, flag_id: FlagId) -> Response:
    try:
        _promote(request, me, flag_id)
    except Conflict as exc:
        return render(request, "error.html",
                      {"status": 409, "message": f"Flag {flag_id} cannot be promoted yet.",
                       "reasons": exc.reasons, "back": f"/flags/{flag_id}"}, status_code=409)
    return see_other(with_code(f"/flags/{flag_id}", "promote"))


class ReviewOut(BaseModel):
    flag_id: int
    review_id: int


class PromoteOut(BaseModel):
    flag_id: int
    billable_event_id: int


@router.post("/api/flags/{flag_id}/review", response_model=ReviewOut, tags=["review"])
def api_review(request: Request, me: User, flag_id: FlagId, body: ReviewIn) -> dict[str, int]:
    """Record the clinician's review (fires ``review``); 422 lists what was wrong with the content."""
    return {"flag_id": flag_id, "review_id": _review(request, me, flag_id, body)}


@router.post("/api/flags/{flag_id}/promote", response_model=PromoteOut, tags=["review"],
             responses={409: {"description": "refused; `reasons` lists every unmet condition"}})
def api_promote(request: Request, me: User, flag_id: FlagId) -> dict[str, int]:
    """Promote a reviewed flag to a billable telemedicine event, or 409 with each reason."""
    return {"flag_id": flag_id, "billable_event_id": _promote(request, me, flag_id)}
