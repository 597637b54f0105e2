"""Billing: the month's codes per patient with the reason each did or did not qualify; exports."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import HTMLResponse, Response

from dashboards.audit_trail import record_action, record_view
from dashboards.auth import authorize
from dashboards.context import client_ip, ctx
from dashboards.db import Conn
from dashboards.routes.deps import User
from dashboards.sessions import Principal
from dashboards.web import render
from triage.billing.compute import PatientMonth, compute_month
from triage.billing.export import export_csv, export_fhir
from triage.clinical import people_store

router = APIRouter(dependencies=[Depends(authorize)])

Year = Annotated[int, Path(ge=2000, le=2100)]
Month = Annotated[int, Path(ge=1, le=12)]
QueryYear = Annotated[int | None, Query(ge=2000, le=2100)]
QueryMonth = Annotated[int | None, Query(ge=1, le=12)]


def _compute(conn: Conn, year: int, month: int) -> list[PatientMonth]:
    # Periods that have not ended yet are withheld with that reason, not guessed.
    return compute_month(conn, year, month, as_of=datetime.now(UTC).date())


def _audit(conn: Conn, me: Principal, what: str, year: int, month: int, results: list[PatientMonth],
           source_ip: str | None) -> None:
    detail = {"year": year, "month": month, "patient_ids": [r.patient_id for r in results]}
    if what.startswith("export"):
        record_action(conn, me, action=f"billing.{what}", patient_id=None, detail=detail, source_ip=source_ip)
    else:
        record_view(conn, me, what=what, patient_id=None, detail=detail, source_ip=source_ip)


def month_nav(year: int | None, month: int | None) -> dict[str, Any]:
    """The month shown (this month by default) and its neighbours for the page's links."""
    today = datetime.now(UTC).date()
    y, m = year or today.year, month or today.month
    prev = (y - 1, 12) if m == 1 else (y, m - 1)
    nxt = (y + 1, 1) if m == 12 else (y, m + 1)
    return {"year": y, "month": m, "prev": prev, "next": nxt}


@router.get("/billing", response_class=HTMLResponse, include_in_schema=False)
def billing_page(
    request: Request,
    me: User,
    year: QueryYear = None,
    month: QueryMonth = None,
) -> Response:
    nav = month_nav(year, month)
    y, m = nav["year"], nav["month"]
    with ctx(request).pool.connection() as conn:
        results = _compute(conn, y, m)
        names = people_store.patient_names(conn, [r.patient_id for r in results])
        _audit(conn, me, "billing", y, m, results, client_ip(request))
    emitted = sum(len(r.emitted) for r in results)
    return render(request, "billing.html", {"results": results, "names": names, "emitted": emitted, **nav})


@router.get("/billing/{year}/{month}.csv", include_in_schema=False)
def billing_csv(request: Request, me: User, year: Year, month: Month) -> Response:
    with ctx(request).pool.connection() as conn:
        results = _compute(conn, year, month)
        _audit(conn, me, "export_csv", year, month, results, client_ip(request))
    return Response(export_csv(results), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="rpmflow-claims-{year:04d}-{month:02d}.csv"'})


@router.get("/billing/{year}/{month}.fhir.json", include_in_schema=False)
def billing_fhir(request: Request, me: User, year: Year, month: Month) -> Response:
    with ctx(request).pool.connection() as conn:
        results = _compute(conn, year, month)
        bundle = export_fhir(conn, results)
        _audit(conn, me, "export_fhir", year, month, results, client_ip(request))
    body = json.dumps(bundle, default=str, indent=1, allow_nan=False)  # strict JSON: FHIR has no NaN
    return Response(body, media_type="application/fhir+json", headers={
        "Content-Disposition": f'attachment; filename="rpmflow-claims-{year:04d}-{month:02d}.fhir.json"'})


@router.get("/api/billing/{year}/{month}", tags=["billing"])
def api_billing(request: Request, me: User, year: Year, month: Month) -> dict[str, Any]:
    """Every code considered per patient for the month: emitted or withheld, rule, reason, evidence."""
    with ctx(request).pool.connection() as conn:
        results = _compute(conn, year, month)
        _audit(conn, me, "billing", year, month, results, client_ip(request))
    return {"year": year, "month": month,
            "patients": [jsonable_encoder(asdict(r), custom_encoder={set: sorted}) for r in results]}
