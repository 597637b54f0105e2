"""Recording the facts billing is gated on where people work (issue 15): interactive
communications on a flag, where the patient is, RPM orders, and minutes counted for another
service. Each form has a JSON twin; each write goes through its triage function, which writes the
audit row (``triage.clinical.audit.record``) in the same transaction.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response
from pydantic import AwareDatetime, BaseModel, Field

from dashboards import queries
from dashboards.audit_trail import record_view
from dashboards.auth import authorize
from dashboards.context import client_ip, ctx
from dashboards.db import Conn
from dashboards.errors import NotFound
from dashboards.flash import with_code
from dashboards.routes.deps import FlagId, PatientId, User, domain_errors
from dashboards.sessions import Principal
from dashboards.web import local_path, see_other
from triage.billing import facts_store, records
from triage.clinical import locations
from triage.clinical.review import COMMUNICATION_MODES, record_communication

router = APIRouter(dependencies=[Depends(authorize)])

Mode = Literal[
    "phone", "video", "portal_live_chat", "portal_message", "voicemail", "sms", "one_way_alert", "staff_only"
]
Program = Literal["CCM", "PCM", "TCM", "BHI", "EM"]
Source = Literal["patient_reported", "staff_verified", "address_on_file", "device_gateway", "import"]
assert set(Mode.__args__) == set(COMMUNICATION_MODES)  # type: ignore[attr-defined]


def _need_patient(conn: Conn, patient_id: int) -> None:
    if queries.patient(conn, patient_id) is None:
        raise NotFound(f"no patient {patient_id}")


def _flag_patient(conn: Conn, flag_id: int) -> int:
    f = queries.flag(conn, flag_id)
    if f is None or f["patient_id"] is None:
        raise NotFound(f"no patient flag {flag_id}")
    return int(f["patient_id"])


# -- communications ----------------------------------------------------------------------------
class CommunicationIn(BaseModel):
    mode: Mode
    at: AwareDatetime
    realtime: bool | None = None  # default: what the mode allows (phone/video/live chat: yes)
    two_way: bool | None = None
    note: str | None = Field(default=None, max_length=4000)


def _communicate(request: Request, me: Principal, flag_id: int, body: CommunicationIn) -> int:
    with ctx(request).pool.connection() as conn, domain_errors():
        _flag_patient(conn, flag_id)
        return record_communication(
            conn,
            flag_id,
            me.user_id,
            at=body.at,
            mode=body.mode,
            realtime=body.realtime,
            two_way=body.two_way,
            note=body.note,
            source_ip=client_ip(request),
        )


def _in_patient_zone(request: Request, flag_id: int, at: datetime) -> datetime:
    """A form's datetime-local value is the patient's wall-clock time."""
    with ctx(request).pool.connection() as conn:
        p = queries.patient(conn, _flag_patient(conn, flag_id))
    try:
        zone = ZoneInfo(str(p["timezone"])) if p else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    return at.replace(tzinfo=zone)


@router.post("/flags/{flag_id}/communications", include_in_schema=False)
def flag_communication(
    request: Request,
    me: User,
    flag_id: FlagId,
    mode: Annotated[Mode, Form()],
    at: Annotated[datetime, Form()],
    kind: Annotated[Literal["default", "realtime_two_way", "not_realtime"], Form()] = "default",
    note: Annotated[str, Form(max_length=4000)] = "",
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    when = at if at.tzinfo is not None else _in_patient_zone(request, flag_id, at)
    realtime = {"default": None, "realtime_two_way": True, "not_realtime": False}[kind]
    body = CommunicationIn(mode=mode, at=when, realtime=realtime, two_way=realtime, note=note or None)
    _communicate(request, me, flag_id, body)
    return see_other(with_code(local_path(next, f"/flags/{flag_id}"), "contact"))


@router.post("/api/flags/{flag_id}/communications", tags=["billing facts"])
def api_flag_communication(
    request: Request, me: User, flag_id: FlagId, body: CommunicationIn
) -> dict[str, Any]:
    """Record a contact with the patient about this flag: live phone/video, live portal chat,
    asynchronous portal message, voicemail… with whether it was real-time and two-way (G12)."""
    return {"flag_id": flag_id, "communication_id": _communicate(request, me, flag_id, body)}


# -- locations -----------------------------------------------------------------------------------
class LocationIn(BaseModel):
    state: str = Field(min_length=2, max_length=2)
    effective_from: date
    effective_to: date | None = None
    source: Source = "staff_verified"


def _locate(request: Request, me: Principal, patient_id: int, body: LocationIn) -> int:
    with ctx(request).pool.connection() as conn, domain_errors():
        _need_patient(conn, patient_id)
        return locations.record_location(
            conn,
            patient_id,
            state=body.state,
            effective_from=body.effective_from,
            effective_to=body.effective_to,
            source=body.source,
            recorded_by=me.user_id,
            actor=me.username,
            source_ip=client_ip(request),
        )


@router.post("/patients/{patient_id}/locations", include_in_schema=False)
def patient_location(
    request: Request,
    me: User,
    patient_id: PatientId,
    state: Annotated[str, Form(min_length=2, max_length=2)],
    effective_from: Annotated[date, Form()],
    source: Annotated[Source, Form()] = "staff_verified",
) -> Response:
    _locate(request, me, patient_id, LocationIn(state=state, effective_from=effective_from, source=source))
    return see_other(f"/patients/{patient_id}#billing-facts")


@router.post("/api/patients/{patient_id}/locations", tags=["billing facts"])
def api_patient_location(
    request: Request, me: User, patient_id: PatientId, body: LocationIn
) -> dict[str, Any]:
    """Where the patient is located from ``effective_from`` (licensure is checked per date of service)."""
    return {"patient_id": patient_id, "location_id": _locate(request, me, patient_id, body)}


# -- orders --------------------------------------------------------------------------------------
class OrderIn(BaseModel):
    ordering_user_id: int | None = Field(default=None, ge=1)  # default: the signed-in clinician
    order_date: date
    icd10_codes: list[str] = Field(min_length=1, max_length=12)
    medical_necessity: str = Field(min_length=1, max_length=4000)
    end_date: date | None = None


def _order(request: Request, me: Principal, patient_id: int, body: OrderIn) -> int:
    with ctx(request).pool.connection() as conn, domain_errors():
        _need_patient(conn, patient_id)
        return records.record_order(
            conn,
            patient_id,
            ordering_user_id=body.ordering_user_id or me.user_id,
            order_date=body.order_date,
            icd10_codes=body.icd10_codes,
            medical_necessity=body.medical_necessity,
            end_date=body.end_date,
            recorded_by=me.user_id,
            source_ip=client_ip(request),
        )


@router.post("/patients/{patient_id}/orders", include_in_schema=False)
def patient_order(
    request: Request,
    me: User,
    patient_id: PatientId,
    order_date: Annotated[date, Form()],
    icd10_codes: Annotated[str, Form(min_length=1, max_length=200)],
    medical_necessity: Annotated[str, Form(min_length=1, max_length=4000)],
) -> Response:
    codes = [c.strip() for c in icd10_codes.replace(";", ",").split(",") if c.strip()]
    _order(
        request,
        me,
        patient_id,
        OrderIn(order_date=order_date, icd10_codes=codes or [""], medical_necessity=medical_necessity),
    )
    return see_other(f"/patients/{patient_id}#billing-facts")


@router.post("/api/patients/{patient_id}/orders", tags=["billing facts"])
def api_patient_order(request: Request, me: User, patient_id: PatientId, body: OrderIn) -> dict[str, Any]:
    """An RPM order (G3): ordering clinician, date, ICD-10 codes (format-checked), medical necessity."""
    return {"patient_id": patient_id, "order_id": _order(request, me, patient_id, body)}


# -- minutes counted for another service ---------------------------------------------------------
class CountedElsewhereIn(BaseModel):
    time_log_id: int = Field(ge=1, le=2**63 - 1)
    program: Program


def _counted_elsewhere(request: Request, me: Principal, patient_id: int, body: CountedElsewhereIn) -> None:
    with ctx(request).pool.connection() as conn, domain_errors():
        if not facts_store.time_log_of_patient(conn, body.time_log_id, patient_id):
            raise NotFound(f"no time log {body.time_log_id} for patient {patient_id}")
        records.mark_counted_elsewhere(
            conn, body.time_log_id, program=body.program, marked_by=me.user_id, source_ip=client_ip(request)
        )


@router.post("/patients/{patient_id}/counted-elsewhere", include_in_schema=False)
def patient_counted_elsewhere(
    request: Request,
    me: User,
    patient_id: PatientId,
    time_log_id: Annotated[int, Form(ge=1, le=2**63 - 1)],
    program: Annotated[Program, Form()],
) -> Response:
    _counted_elsewhere(request, me, patient_id, CountedElsewhereIn(time_log_id=time_log_id, program=program))
    return see_other(f"/patients/{patient_id}#billing-facts")


@router.post("/api/patients/{patient_id}/counted-elsewhere", tags=["billing facts"])
def api_counted_elsewhere(
    request: Request, me: User, patient_id: PatientId, body: CountedElsewhereIn
) -> dict[str, Any]:
    """Mark a time log as already counted for CCM/PCM/TCM/BHI/E/M (G9): RPM leaves those minutes out."""
    _counted_elsewhere(request, me, patient_id, body)
    return {"patient_id": patient_id, "time_log_id": body.time_log_id, "program": body.program}


# -- reading them back ---------------------------------------------------------------------------
@router.get("/api/patients/{patient_id}/billing-facts", tags=["billing facts"])
def api_billing_facts(request: Request, me: User, patient_id: PatientId) -> dict[str, Any]:
    """The dated facts billing is decided on: locations, orders, time logs, communications."""
    with ctx(request).pool.connection() as conn:
        _need_patient(conn, patient_id)
        out = facts_store.billing_facts(conn, patient_id)
        record_view(
            conn,
            me,
            what="billing-facts",
            patient_id=patient_id,
            detail={k: len(v) for k, v in out.items()},
            source_ip=client_ip(request),
        )
    return {"patient_id": patient_id, **out}
