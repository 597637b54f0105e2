"""The billing worklist: per patient and month, what is earned, what is missing and by when.

Every enrolled patient has a row, also those with no code yet; rows are sorted by how little work
would earn the next code (``triage.billing.worklist``, the engine asked with what-ifs). Billing
staff work it; clinicians read it (the same page, no forms). No readings are shown.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Depends, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import HTMLResponse, Response

from dashboards import care_teams
from dashboards.audit_trail import record_view
from dashboards.auth import authorize
from dashboards.context import client_ip, ctx
from dashboards.db import Conn
from dashboards.routes.billing import Month, QueryMonth, QueryYear, Year, month_nav
from dashboards.routes.deps import User
from dashboards.sessions import Principal
from dashboards.web import render
from triage.billing.gates import month_bounds
from triage.billing.load import load_patient_facts, load_policies, patient_ids_for_month
from triage.billing.worklist import WorkItem, sort_worklist, work_item
from triage.clinical import people_store

router = APIRouter(dependencies=[Depends(authorize)])


def _local_today(tz: str, now: datetime) -> date:
    try:
        return now.astimezone(ZoneInfo(tz)).date()
    except (ZoneInfoNotFoundError, ValueError):
        return now.date()


def worklist(conn: Conn, year: int, month: int, now: datetime) -> list[WorkItem]:
    """Every patient enrolled around the month, as of today in the patient's own zone."""
    m_start, m_end = month_bounds(year, month)
    policies = load_policies(conn)
    items: list[WorkItem] = []
    for pid in patient_ids_for_month(conn, m_start, m_end):
        facts = load_patient_facts(conn, pid, m_end)
        if facts is not None:
            items.append(work_item(facts, year, month, policies, as_of=_local_today(facts.timezone, now)))
    return sort_worklist(items)


def _load(conn: Conn, me: Principal, year: int, month: int, source_ip: str | None) -> list[WorkItem]:
    items = worklist(conn, year, month, datetime.now(UTC))
    scoped = care_teams.viewer(me)  # a clinician reads only their care teams' patients
    if scoped is not None:
        mine = care_teams.visible_ids(conn, scoped)
        items = [i for i in items if i.patient_id in mine]
    record_view(
        conn,
        me,
        what="billing_worklist",
        patient_id=None,
        source_ip=source_ip,
        detail={"year": year, "month": month, "patient_ids": [i.patient_id for i in items]},
    )
    return items


@router.get("/billing/worklist", response_class=HTMLResponse, include_in_schema=False)
def worklist_page(request: Request, me: User, year: QueryYear = None, month: QueryMonth = None) -> Response:
    nav = month_nav(year, month)
    with ctx(request).pool.connection() as conn:
        items = _load(conn, me, nav["year"], nav["month"], client_ip(request))
        names = people_store.patient_names(conn, [i.patient_id for i in items])
    return render(
        request,
        "billing_worklist.html",
        {"items": items, "names": names, "with_steps": sum(1 for i in items if i.best is not None), **nav},
    )


@router.get("/api/billing/worklist/{year}/{month}", tags=["billing"])
def api_worklist(
    request: Request,
    me: User,
    year: Year,
    month: Month,
) -> dict[str, Any]:
    """Per enrolled patient: codes earned, withheld (with reasons) and the steps that would earn more."""
    with ctx(request).pool.connection() as conn:
        items = _load(conn, me, year, month, client_ip(request))
    return {"year": year, "month": month, "patients": [jsonable_encoder(asdict(i)) for i in items]}
