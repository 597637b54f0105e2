"""Administration: patients (create, enrol, consent), devices, users and licences, intake problems."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response

from dashboards import password_policy, queries
from dashboards.audit_trail import record_action, record_view
from dashboards.auth import authorize
from dashboards.context import client_ip, ctx
from dashboards.db import Conn, fetch_one
from dashboards.errors import BadInput, DashboardError, NotFound
from dashboards.passwords import hash_password
from dashboards.routes.deps import PatientId, User, UserId, domain_errors
from dashboards.web import render, see_other
from triage.clinical import assignments, audit, consent_store, device_enrolments, people, people_store

router = APIRouter(dependencies=[Depends(authorize)])

Role = Literal["nurse", "clinician", "billing", "admin"]
Kind = Literal["blood_pressure", "glucose", "weight", "spo2"]
ConsentMethod = Literal["verbal", "written", "electronic"]
Page = Literal["patients", "users", "devices"]  # /admin/<page>, rendered from admin_<page>.html
StateCode = Annotated[str, Form(pattern=r"^[A-Za-z]{2}$")]


def _counts(request: Request) -> dict[str, Any]:
    with ctx(request).pool.connection() as conn:
        row = fetch_one(
            conn,
            "SELECT (SELECT count(*) FROM patients) AS patients,"
            " (SELECT count(*) FROM users WHERE active) AS users,"
            " (SELECT count(*) FROM readings WHERE patient_id IS NULL) AS unassigned,"
            " (SELECT count(*) FROM dead_letters WHERE resolved_at IS NULL) AS dead_letters,"
            " (SELECT count(*) FROM gateway_status WHERE online) AS gateways_online,"
            " (SELECT count(*) FROM gateway_status) AS gateways,"
            " (SELECT last_seq FROM audit_chain_head WHERE id = 1) AS audit_rows,"
            " (SELECT last_hash FROM audit_chain_head WHERE id = 1) AS audit_head,"
            " (SELECT count(*) FROM audit_log WHERE action LIKE 'alert.%%'"
            "  AND at > now() - interval '1 day') AS security_alerts",
        )
    return row or {}


@router.get("/admin", response_class=HTMLResponse, include_in_schema=False)
def admin_home(request: Request, me: User) -> Response:
    return render(request, "admin.html", {"counts": _counts(request)})


def _patients_context(request: Request, me: User) -> dict[str, Any]:
    with ctx(request).pool.connection() as conn:
        patients = queries.patients(conn)
        clinicians = people_store.active_clinicians(conn)
        enrolments = consent_store.enrolment_summaries(conn)
        consents = consent_store.consent_summaries(conn)
        devices = assignments.devices_unassigned(conn)
        record_view(conn, me, what="patient_list", patient_id=None,
                    detail={"patients": len(patients), "patient_ids": [p["patient_id"] for p in patients]},
                    source_ip=client_ip(request))
    by_enrol = {e["patient_id"]: e for e in enrolments}
    by_consent = {c["patient_id"]: c for c in consents}
    for p in patients:
        p["enrolment"] = by_enrol.get(p["patient_id"])
        p["consent"] = by_consent.get(p["patient_id"])
    return {"patients": patients, "clinicians": clinicians, "free_devices": devices,
            "today": datetime.now(UTC).date(), "error": None}


@router.get("/admin/patients", response_class=HTMLResponse, include_in_schema=False)
def admin_patients(request: Request, me: User) -> Response:
    return render(request, "admin_patients.html", _patients_context(request, me))


def _submit(
    request: Request, me: User, page: Page, write: Callable[[Conn], None], *, id_in_path: bool = False
) -> Response:
    """One admin form: ``write`` in one transaction, then back to the page (POST/redirect/GET).

    A domain error re-renders the page with its message and status. With ``id_in_path`` a 404
    (the URL names no such record) stays an error page instead: there is no form to correct.
    """
    try:
        with ctx(request).pool.connection() as conn, domain_errors():
            write(conn)
    except DashboardError as exc:
        if id_in_path and exc.status_code == 404:
            raise
        data = (_patients_context(request, me) if page == "patients" else _devices_context(request, me)
                if page == "devices" else _users_context(request))
        data["error"] = exc.message
        return render(request, f"admin_{page}.html", data, status_code=exc.status_code)
    return see_other(f"/admin/{page}")


@router.post("/admin/patients", include_in_schema=False)
def create_patient(
    request: Request,
    me: User,
    mrn: Annotated[str, Form(min_length=1, max_length=64)],
    display_name: Annotated[str, Form(min_length=1, max_length=200)],
    state: StateCode,
    timezone: Annotated[str, Form(max_length=64)] = "America/New_York",
    birth_year: Annotated[int | None, Form(ge=1900, le=2100)] = None,
) -> Response:
    def write(conn: Conn) -> None:
        if people_store.mrn_taken(conn, mrn):
            raise BadInput(f"MRN {mrn} already exists")
        pid = people.create_patient(conn, mrn=mrn, display_name=display_name, state=state,
                                    timezone=timezone, birth_year=birth_year)
        record_action(conn, me, action="patient.create", patient_id=pid, detail={"mrn": mrn},
                      source_ip=client_ip(request))

    return _submit(request, me, "patients", write)


def _patient_exists(conn: Conn, patient_id: int) -> None:
    if queries.patient(conn, patient_id) is None:
        raise NotFound(f"no patient {patient_id}")


@router.post("/admin/patients/{patient_id}/enrol", include_in_schema=False)
def enrol_patient(
    request: Request,
    me: User,
    patient_id: PatientId,
    ordering_user_id: Annotated[int, Form(ge=1)],
    icd10_codes: Annotated[str, Form(min_length=1, max_length=400)],
    start_date: Annotated[date, Form()],
    established_visit_date: Annotated[date | None, Form()] = None,
    education_documented_on: Annotated[date | None, Form()] = None,
) -> Response:
    codes = [c.strip() for c in icd10_codes.replace(";", ",").split(",") if c.strip()]

    def write(conn: Conn) -> None:
        _patient_exists(conn, patient_id)
        eid = people.enrol(conn, patient_id, ordering_user_id=ordering_user_id, icd10_codes=codes,
                           start_date=start_date, established_visit_date=established_visit_date,
                           education_documented_on=education_documented_on)
        record_action(conn, me, action="patient.enrol", patient_id=patient_id,
                      detail={"enrolment_id": eid, "icd10": codes, "start_date": start_date.isoformat()},
                      source_ip=client_ip(request))

    return _submit(request, me, "patients", write, id_in_path=True)


@router.post("/admin/patients/{patient_id}/consent", include_in_schema=False)
def consent(
    request: Request,
    me: User,
    patient_id: PatientId,
    method: Annotated[ConsentMethod, Form()],
    version: Annotated[str, Form(min_length=1, max_length=40)],
    consented_on: Annotated[date | None, Form()] = None,
) -> Response:
    at = (datetime.combine(consented_on, datetime.min.time(), UTC) if consented_on else datetime.now(UTC))

    def write(conn: Conn) -> None:
        _patient_exists(conn, patient_id)
        cid = people.record_consent(conn, patient_id, consented_at=at, method=method,
                                    recorded_by=me.user_id, version=version)
        record_action(conn, me, action="patient.consent", patient_id=patient_id,
                      detail={"consent_id": cid, "method": method, "version": version},
                      source_ip=client_ip(request))

    return _submit(request, me, "patients", write, id_in_path=True)


def _instant(conn: Conn, value: str, patient_id: int | None, device_id: str | None = None) -> datetime:
    """A ``datetime-local`` form value in the patient's zone (blank: now); never in the future."""
    if not value.strip():
        return datetime.now(UTC)
    try:
        naive = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise BadInput(f"not a date and time: {value!r}") from exc
    zone = ZoneInfo(people_store.timezone_of(conn, patient_id, device_id) or "UTC")
    at = naive.replace(tzinfo=zone) if naive.tzinfo is None else naive
    if at > datetime.now(UTC):
        raise BadInput(f"{value} is in the future: assignments are recorded from the past or now")
    return at


@router.post("/admin/devices/assign", include_in_schema=False)
def assign_device(
    request: Request,
    me: User,
    device_id: Annotated[str, Form(min_length=1, max_length=128)],
    patient_id: Annotated[int, Form(ge=1)],
    kind: Annotated[Kind, Form()] = "blood_pressure",
    valid_from: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    def write(conn: Conn) -> None:  # patient_id is a form field here: a wrong one is a form error
        _patient_exists(conn, patient_id)
        at = _instant(conn, valid_from, patient_id)
        aid = people.assign_device(conn, device_id, patient_id, at=at, assigned_by=me.username, kind=kind)
        record_action(conn, me, action="device.assign", patient_id=patient_id,
                      detail={"assignment_id": aid, "device_id": device_id, "valid_from": at.isoformat()},
                      source_ip=client_ip(request))

    return _submit(request, me, "devices", write)


@router.post("/admin/devices/end", include_in_schema=False)
def end_assignment(
    request: Request,
    me: User,
    device_id: Annotated[str, Form(min_length=1, max_length=128)],
    valid_to: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    def write(conn: Conn) -> None:
        at = _instant(conn, valid_to, None, device_id)
        people.unassign_device(conn, device_id, at=at, ended_by=me.username)
        record_action(conn, me, action="device.unassign", patient_id=None,
                      detail={"device_id": device_id, "valid_to": at.isoformat()},
                      source_ip=client_ip(request))

    return _submit(request, me, "devices", write)


@router.post("/admin/devices/enrol", include_in_schema=False)
def enrol_device(
    request: Request,
    me: User,
    device_id: Annotated[str, Form(min_length=1, max_length=128)],
    gateway_id: Annotated[str, Form(min_length=1, max_length=64)],
    reason: Annotated[str, Form(min_length=1, max_length=500)],
    kind: Annotated[Kind, Form()] = "blood_pressure",
    manufacturer: Annotated[str, Form(max_length=100)] = "",
    model: Annotated[str, Form(max_length=100)] = "",
    firmware: Annotated[str, Form(max_length=100)] = "",
    valid_from: Annotated[str, Form(max_length=40)] = "",
    move: Annotated[bool, Form()] = False,
) -> Response:
    """Enrol a device on a gateway (audited in triage/clinical/device_enrolments.py); moving it
    from another gateway needs the explicit ``move`` box."""
    def write(conn: Conn) -> None:
        at = _instant(conn, valid_from, None, device_id)
        device = device_enrolments.Device(device_id, kind, manufacturer or None, model or None,
                                          firmware or None)
        device_enrolments.enrol(conn, device, gateway_id, at=at, by=me.username, reason=reason, move=move)

    return _submit(request, me, "devices", write)


@router.post("/admin/devices/unenrol", include_in_schema=False)
def unenrol_device(
    request: Request,
    me: User,
    device_id: Annotated[str, Form(min_length=1, max_length=128)],
    reason: Annotated[str, Form(min_length=1, max_length=500)],
    valid_to: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    def write(conn: Conn) -> None:
        at = _instant(conn, valid_to, None, device_id)
        device_enrolments.end(conn, device_id, at=at, by=me.username, reason=reason)

    return _submit(request, me, "devices", write)


def _devices_context(request: Request, me: User) -> dict[str, Any]:
    with ctx(request).pool.connection() as conn:
        history = assignments.history(conn)
        moves = audit.device_moves(conn)
        enrolments = device_enrolments.history(conn)
        patients = queries.patients(conn)
        record_view(conn, me, what="device_assignments", patient_id=None,
                    detail={"assignments": len(history),
                            "patient_ids": sorted({h["patient_id"] for h in history})},
                    source_ip=client_ip(request))
    return {"history": history, "moves": moves, "patients": patients, "enrolments": enrolments,
            "free_devices": [], "error": None}


@router.get("/admin/devices", response_class=HTMLResponse, include_in_schema=False)
def admin_devices(request: Request, me: User) -> Response:
    """Assignment history of every device and the audited moves of readings between patients."""
    return render(request, "admin_devices.html", _devices_context(request, me))


def _users_context(request: Request) -> dict[str, Any]:
    with ctx(request).pool.connection() as conn:
        return {"users": queries.users(conn), "error": None, "today": datetime.now(UTC).date()}


@router.get("/admin/users", response_class=HTMLResponse, include_in_schema=False)
def admin_users(request: Request, me: User) -> Response:
    return render(request, "admin_users.html", _users_context(request))


@router.post("/admin/users", include_in_schema=False)
def create_user(
    request: Request,
    me: User,
    username: Annotated[str, Form(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")],
    display_name: Annotated[str, Form(min_length=1, max_length=200)],
    role: Annotated[Role, Form()],
    password: Annotated[str, Form(min_length=12, max_length=1000)],
    npi: Annotated[str, Form(max_length=10)] = "",
    qhp: Annotated[bool, Form()] = False,
) -> Response:
    def write(conn: Conn) -> None:
        if (weak := password_policy.problem(password, username)) is not None:
            raise BadInput(weak)
        if people_store.username_taken(conn, username):
            raise BadInput(f"user {username} already exists")
        uid = people.create_user(conn, username=username, display_name=display_name, role=role,
                                 password_hash=hash_password(password), npi=npi or None,
                                 is_physician_or_qhp=qhp)
        record_action(conn, me, action="user.create", patient_id=None,
                      detail={"user_id": uid, "username": username, "role": role},
                      source_ip=client_ip(request))

    return _submit(request, me, "users", write)


@router.post("/admin/users/{user_id}/licenses", include_in_schema=False)
def add_licence(
    request: Request,
    me: User,
    user_id: UserId,
    state: StateCode,
    license_number: Annotated[str, Form(min_length=1, max_length=64)],
    valid_from: Annotated[date, Form()],
    valid_to: Annotated[date, Form()],
) -> Response:
    def write(conn: Conn) -> None:
        if not people_store.user_exists(conn, user_id):
            raise NotFound(f"no user {user_id}")
        lid = people.add_licence(conn, user_id, state=state, license_number=license_number,
                                 valid_from=valid_from, valid_to=valid_to)
        record_action(conn, me, action="user.licence", patient_id=None,
                      detail={"user_id": user_id, "license_id": lid, "state": state.upper()},
                      source_ip=client_ip(request))

    return _submit(request, me, "users", write, id_in_path=True)


@router.post("/admin/users/{user_id}/active", include_in_schema=False)
def set_active(
    request: Request, me: User, user_id: UserId, active: Annotated[bool, Form()] = False
) -> Response:
    with ctx(request).pool.connection() as conn:
        if not people_store.set_active(conn, user_id, active):
            raise NotFound(f"no user {user_id}")
        if not active:  # a deactivated account loses its sessions and tokens at once
            conn.execute("UPDATE dashboard_sessions SET ended_at = now(), end_reason = 'user deactivated'"
                         " WHERE user_id = %s AND ended_at IS NULL", (user_id,))
            conn.execute("UPDATE api_tokens SET revoked_at = now() WHERE user_id = %s AND revoked_at IS NULL",
                         (user_id,))
        record_action(conn, me, action="user.activate" if active else "user.deactivate", patient_id=None,
                      detail={"user_id": user_id}, source_ip=client_ip(request))
    return see_other("/admin/users")


def _intake(request: Request) -> dict[str, Any]:
    with ctx(request).pool.connection() as conn:
        return {"unassigned": queries.unassigned_readings(conn), "dead_letters": queries.dead_letters(conn)}


@router.get("/admin/intake", response_class=HTMLResponse, include_in_schema=False)
def admin_intake(request: Request, me: User) -> Response:
    return render(request, "admin_intake.html", _intake(request))


@router.get("/api/admin/users", tags=["admin"])
def api_users(request: Request, me: User) -> dict[str, Any]:
    """Users with role, NPI and licences (never password hashes)."""
    with ctx(request).pool.connection() as conn:
        return {"users": queries.users(conn)}


@router.get("/api/admin/intake", tags=["admin"])
def api_intake(request: Request, me: User) -> dict[str, Any]:
    """Readings from unassigned devices and dead-lettered messages, newest first (200 each)."""
    return _intake(request)
