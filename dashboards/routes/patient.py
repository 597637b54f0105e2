"""The patient page and its JSON twin: charts, readings, adherence, devices, flag history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, Response

from dashboards import queries
from dashboards.adherence import adherence
from dashboards.audit_trail import record_action, record_view
from dashboards.auth import authorize
from dashboards.context import client_ip, ctx, patient_zone
from dashboards.db import Conn, fetch_one
from dashboards.errors import NotFound
from dashboards.patient_charts import chart_context
from dashboards.routes.deps import PatientId, User, domain_errors
from dashboards.sessions import Principal
from dashboards.units import glucose_unit
from dashboards.web import render, see_other
from triage.billing import facts_store
from triage.clinical import assignments, reviews_store
from triage.overrides import set_dry_weight
from triage.valid_reading import ReadingFacts, judge_all

router = APIRouter(dependencies=[Depends(authorize)])



def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def patient_data(
    conn: Conn, me: Principal, patient_id: int, days: int, source_ip: str | None
) -> dict[str, Any]:
    """Everything the patient page shows; writes the audit row in the same transaction."""
    p = queries.patient(conn, patient_id)
    if p is None:
        raise NotFound(f"no patient {patient_id}")
    now = datetime.now(UTC)
    since = now - timedelta(days=days)
    readings = queries.readings(conn, patient_id, since)
    flagged = queries.flagged_reading_ids(conn, patient_id)
    flags = queries.patient_flags(conn, patient_id)
    flag_ids = [int(f["flag_id"]) for f in flags]
    events = queries.flag_events(conn, flag_ids)
    reviews = reviews_store.reviews_of_flags(conn, flag_ids)
    for f in flags:
        f["events"] = [e for e in events if e["flag_id"] == f["flag_id"]]
        f["reviews"] = [r for r in reviews if r["flag_id"] == f["flag_id"]]
    zone = _zone(p["timezone"])
    today = now.astimezone(zone).date()
    started = assignments.monitoring_start(conn, patient_id)
    first_day = started.astimezone(zone).date() if started else today
    period_floor = datetime.combine(first_day, datetime.min.time(), zone) - timedelta(days=1)
    days_seen = queries.billing_days(conn, patient_id, p["timezone"], period_floor)
    adh = adherence(first_day, today, days_seen)
    devices = assignments.patient_devices(conn, patient_id)
    # The 30- and 90-day views summarise by day from the daily aggregate.
    daily = queries.daily_stats(conn, patient_id, since) if days > 7 else []
    record_view(conn, me, what="patient", patient_id=patient_id,
                detail={"days": days, "readings": len(readings), "flags": len(flags)}, source_ip=source_ip)
    verdicts = {f.reading_id: v for f, v in judge_all(_reading_facts(r) for r in readings)}
    for r in readings:
        r["flagged"] = int(r["reading_id"]) in flagged
        r["counts"] = verdicts[int(r["reading_id"])].describe()  # the shared valid-reading definition
    dry = fetch_one(
        conn,
        "SELECT value, unit, dry_weight_kg, reason, set_by, set_at FROM patient_dry_weights"
        " WHERE patient_id = %s AND revoked_at IS NULL",
        (patient_id,),
    )
    return {"patient": p, "days": days, "since": since, "now": now, "readings": readings, "flags": flags,
            "adherence": adh, "devices": devices, "facts": facts_store.billing_facts(conn, patient_id),
            "daily": daily, "dry_weight": dry}


def _reading_facts(r: dict[str, Any]) -> ReadingFacts:
    keys = ("systolic_mmhg", "diastolic_mmhg", "pulse_bpm", "glucose_mg_dl", "weight_kg", "spo2_pct")
    values = tuple(r.get(k) for k in keys)
    return ReadingFacts(
        reading_id=int(r["reading_id"]), kind=r["kind"], measured_at=r["measured_at"], quality=r["quality"],
        quality_reason=r["quality_reason"], transmission=r["transmission"],
        device_status=tuple(r["device_status"] or ()), device_id=r["device_id"], values=values,
    )


@router.get("/patients/{patient_id}", response_class=HTMLResponse, include_in_schema=False)
def patient_page(
    request: Request, me: User, patient_id: PatientId, days: Annotated[int, Query(ge=1, le=90)] = 30
) -> Response:
    days = 7 if days <= 7 else 30 if days <= 30 else 90  # the three windows the page offers
    with ctx(request).pool.connection() as conn:
        data = patient_data(conn, me, patient_id, days, client_ip(request))
        unit = glucose_unit(conn, me.user_id)
        charts = chart_context(conn, data, unit)
    return render(request, "patient.html", {**data, **charts, "table": data["readings"][:300],
                                            "tz": patient_zone(request, data["patient"]["timezone"]),
                                            "glucose_unit": unit})


@router.get("/api/patients/{patient_id}", tags=["patients"])
def api_patient(request: Request, me: User, patient_id: PatientId) -> dict[str, Any]:
    """Patient summary: pseudonym, state, zone, adherence in the current 30-day period, devices, flags."""
    with ctx(request).pool.connection() as conn:
        data = patient_data(conn, me, patient_id, 30, client_ip(request))
    adh = data["adherence"]
    return {
        "patient": data["patient"],
        "adherence": {"period_start": adh.period_start, "period_end": adh.period_end,
                      "days_with_readings": adh.days_with_readings, "target_days": adh.target,
                      "days_left": adh.days_left, "reachable": adh.reachable},
        "devices": data["devices"],
        "flags": data["flags"],
    }


@router.get("/api/patients/{patient_id}/readings", tags=["patients"])
def api_readings(
    request: Request, me: User, patient_id: PatientId, days: Annotated[int, Query(ge=1, le=366)] = 30
) -> dict[str, Any]:
    """Readings of the last ``days`` days, newest first; units are part of every field name."""
    with ctx(request).pool.connection() as conn:
        if queries.patient(conn, patient_id) is None:
            raise NotFound(f"no patient {patient_id}")
        rows = queries.readings(conn, patient_id, datetime.now(UTC) - timedelta(days=days))
        record_view(conn, me, what="readings", patient_id=patient_id,
                    detail={"days": days, "rows": len(rows)}, source_ip=client_ip(request))
    return {"patient_id": patient_id, "days": days, "readings": rows}


@router.post("/patients/{patient_id}/dry-weight", include_in_schema=False)
def patient_dry_weight(
    request: Request, me: User, patient_id: PatientId, value: Annotated[float, Form(gt=0, lt=1000)],
    unit: Annotated[Literal["kg", "lb"], Form()], reason: Annotated[str, Form(min_length=1, max_length=500)],
) -> Response:
    """The care team's target weight: the weight rule measures the week's gain from it (audited)."""
    with ctx(request).pool.connection() as conn, domain_errors(), conn.transaction():
        if queries.patient(conn, patient_id) is None:
            raise NotFound(f"no patient {patient_id}")
        row_id = set_dry_weight(conn, patient_id=patient_id, value=value, unit=unit, set_by=me.username,
                                role=me.role, reason=reason)
        record_action(conn, me, action="patient.dry_weight", patient_id=patient_id,
                      detail={"dry_weight_id": row_id, "value": value, "unit": unit, "reason": reason},
                      source_ip=client_ip(request))
    return see_other(f"/patients/{patient_id}#dry-weight")
