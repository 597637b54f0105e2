"""A user's own display settings: the glucose unit they read (mg/dL or mmol/L), and the zones in use."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response

from dashboards.audit_trail import record_action
from dashboards.auth import authorize
from dashboards.context import client_ip, ctx
from dashboards.flash import with_code
from dashboards.routes.deps import User
from dashboards.units import UNITS, glucose_unit, set_glucose_unit
from dashboards.web import render, see_other

router = APIRouter(dependencies=[Depends(authorize)])


@router.get("/account/preferences", response_class=HTMLResponse, include_in_schema=False)
def preferences_page(request: Request, me: User) -> Response:
    with ctx(request).pool.connection() as conn:
        unit = glucose_unit(conn, me.user_id)
    return render(request, "preferences.html", {"glucose_unit": unit, "units": UNITS,
                                                "clinic_tz": ctx(request).settings.clinic_tz})


@router.post("/account/preferences", include_in_schema=False)
def preferences_save(
    request: Request, me: User, glucose_unit: Annotated[Literal["mg/dL", "mmol/L"], Form()]
) -> Response:
    with ctx(request).pool.connection() as conn:
        set_glucose_unit(conn, me.user_id, glucose_unit)
        record_action(conn, me, action="user.preferences", patient_id=None,
                      detail={"glucose_unit": glucose_unit}, source_ip=client_ip(request))
    return see_other(with_code("/account/preferences", "preferences"))
