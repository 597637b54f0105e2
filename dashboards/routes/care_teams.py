"""Care-team administration (admins) and break-glass access (nurses and clinicians).

Break-glass opens one patient outside the user's care teams for ``break_glass_minutes``: it needs a
typed reason, is an audit row on the patient's record (``access.break_glass``), raises an
``alert.break_glass`` row that the admin home counts, and logs a warning. Every team change is
audited (``care_team.*``).
"""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, Path, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field

from dashboards import care_teams, queries
from dashboards.audit_trail import record_action, record_view
from dashboards.auth import authorize
from dashboards.context import client_ip, ctx
from dashboards.db import Conn, fetch_one
from dashboards.errors import BadInput, NotFound
from dashboards.routes.deps import BIGINT_MAX, PatientId, User
from dashboards.sessions import Principal
from dashboards.web import render, see_other
from triage.clinical import people_store
from triage.clinical.audit import record

log = logging.getLogger(__name__)

router = APIRouter(dependencies=[Depends(authorize)])
TeamId = Annotated[int, Path(ge=1, le=BIGINT_MAX)]
FormId = Annotated[int, Form(ge=1, le=BIGINT_MAX)]


def _break_glass(request: Request, me: Principal, patient_id: int, reason: str) -> care_teams.BreakGlass:
    minutes = ctx(request).settings.break_glass_minutes
    ip = client_ip(request)
    with ctx(request).pool.connection() as conn:
        if queries.patient(conn, patient_id) is None:
            raise NotFound(f"no patient {patient_id}")
        try:
            grant = care_teams.open_break_glass(conn, me.user_id, patient_id, reason, minutes)
        except care_teams.ReasonTooShort as exc:
            raise BadInput(str(exc)) from exc
        record_action(conn, me, action="access.break_glass", patient_id=patient_id,
                      detail={"reason": " ".join(reason.split())[:1000], "minutes": minutes,
                              "grant_id": grant.grant_id}, source_ip=ip)
        record(conn, actor="rpmflow-dashboard", action="alert.break_glass", patient_id=patient_id,
               detail={"username": me.username, "grant_id": grant.grant_id}, source_ip=ip)
    log.warning("break-glass: user %s opened patient %s for %g min (grant %s); admins alerted",
                me.user_id, patient_id, minutes, grant.grant_id)
    return grant


@router.post("/patients/{patient_id}/break-glass", include_in_schema=False)
def break_glass_form(request: Request, me: User, patient_id: PatientId,
                     reason: Annotated[str, Form(max_length=1000)]) -> Response:
    _break_glass(request, me, patient_id, reason)
    return see_other(f"/patients/{patient_id}")


class BreakGlassIn(BaseModel):
    reason: str = Field(min_length=care_teams.MIN_REASON, max_length=1000,
                        description="why this emergency needs the record (kept in the audit log)")


@router.post("/api/patients/{patient_id}/break-glass", tags=["patients"], status_code=201)
def api_break_glass(request: Request, me: User, patient_id: PatientId, body: BreakGlassIn) -> dict[str, Any]:
    """Open a patient outside your care teams in an emergency: time-limited, audited, and reported
    to the administrators. Returns when the access ends."""
    grant = _break_glass(request, me, patient_id, body.reason)
    return {"grant_id": grant.grant_id, "patient_id": patient_id, "expires_at": grant.expires_at}


def _overview(conn: Conn) -> dict[str, Any]:
    return {
        "teams": care_teams.teams(conn),
        "break_glass": care_teams.recent_break_glass(conn),
        "staff": people_store.active_care_staff(conn),
        "patients": people_store.patient_picker(conn),
    }


@router.get("/admin/care-teams", response_class=HTMLResponse, include_in_schema=False)
def admin_page(request: Request, me: User) -> Response:
    with ctx(request).pool.connection() as conn:
        data = _overview(conn)
        record_view(conn, me, what="care_teams", patient_id=None, detail={"teams": len(data["teams"])},
                    source_ip=client_ip(request))
    return render(request, "admin_care_teams.html", data)


@router.get("/api/admin/care-teams", tags=["admin"])
def api_overview(request: Request, me: User) -> dict[str, Any]:
    """Care teams with members and patients, and the break-glass accesses of the last 30 days."""
    with ctx(request).pool.connection() as conn:
        data = _overview(conn)
        record_view(conn, me, what="care_teams", patient_id=None, detail={"teams": len(data["teams"])},
                    source_ip=client_ip(request))
    return {"teams": data["teams"], "break_glass": data["break_glass"]}


@router.post("/admin/care-teams", include_in_schema=False)
def create_team(request: Request, me: User,
                name: Annotated[str, Form(min_length=1, max_length=100)]) -> Response:
    with ctx(request).pool.connection() as conn:
        team_id = care_teams.create_team(conn, name)
        record_action(conn, me, action="care_team.create", patient_id=None,
                      detail={"team_id": team_id, "name": name.strip()}, source_ip=client_ip(request))
    return see_other("/admin/care-teams")


def _team(conn: Conn, team_id: int) -> None:
    if fetch_one(conn, "SELECT 1 AS x FROM care_teams WHERE team_id = %s", (team_id,)) is None:
        raise NotFound(f"no care team {team_id}")


@router.post("/admin/care-teams/{team_id}/members", include_in_schema=False)
def set_member(request: Request, me: User, team_id: TeamId, user_id: FormId,
               action: Annotated[Literal["add", "remove"], Form()] = "add") -> Response:
    with ctx(request).pool.connection() as conn:
        _team(conn, team_id)
        if people_store.role_of(conn, user_id) not in care_teams.SCOPED_ROLES:
            raise BadInput("members are nurses and clinicians (billing and admins are not scoped)")
        if care_teams.set_member(conn, team_id, user_id, present=action == "add"):
            record_action(conn, me, action=f"care_team.member_{action}", patient_id=None,
                          detail={"team_id": team_id, "user_id": user_id}, source_ip=client_ip(request))
    return see_other("/admin/care-teams")


@router.post("/admin/care-teams/{team_id}/patients", include_in_schema=False)
def set_patient(request: Request, me: User, team_id: TeamId, patient_id: FormId,
                action: Annotated[Literal["add", "remove"], Form()] = "add") -> Response:
    with ctx(request).pool.connection() as conn:
        _team(conn, team_id)
        if queries.patient(conn, patient_id) is None:
            raise NotFound(f"no patient {patient_id}")
        if care_teams.set_patient(conn, team_id, patient_id, present=action == "add"):
            record_action(conn, me, action=f"care_team.patient_{action}", patient_id=patient_id,
                          detail={"team_id": team_id}, source_ip=client_ip(request))
    return see_other("/admin/care-teams")
