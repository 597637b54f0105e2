"""Access transparency: "who viewed my data" per patient, and the audit chain's status for admins.

Both read the hash-chained audit trail through :mod:`triage.clinical.audit` (DOMAIN F, H11). Looking at
who accessed a patient is itself an access, so it is audited too (``view:access_report``), after
the report is read under its own snapshot: the audit lock is then held only for the append.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from dashboards import queries
from dashboards.audit_trail import record_view
from dashboards.auth import authorize
from dashboards.context import client_ip, ctx
from dashboards.db import Conn
from dashboards.errors import NotFound
from dashboards.routes.deps import PatientId, User
from dashboards.sessions import Principal
from dashboards.web import render
from triage.clinical.audit import AccessEvent, ChainReport, chain_status, patient_access

router = APIRouter(dependencies=[Depends(authorize)])

_WHAT = {
    "view:patient": "opened the patient page",
    "view:readings": "read the readings",
    "view:flag": "opened a flag",
    "view:queue": "saw the patient in the triage queue",
    "view:review_form": "opened the review form",
    "view:billing": "saw the patient's billing codes",
    "view:billing_worklist": "saw the patient on the billing worklist (codes, minutes, days)",
    "view:access_report": "looked at this access report",
    "billing.export_csv": "exported claim lines (CSV)",
    "billing.export_fhir": "exported the FHIR billing bundle",
    "flag.review": "reviewed a flag",
    "flag.promote": "made a flag billable",
    "flag.promotion_refused": "tried to make a flag billable (refused)",
    "flag.log_time": "logged treatment time",
    "flag.communication": "recorded a communication",
    "patient.create": "created the patient record",
    "patient.enrol": "enrolled the patient",
    "patient.consent": "recorded consent",
    "device.assign": "assigned a device",
    "access.break_glass": "opened the record by break-glass (emergency, reason recorded)",
    "alert.break_glass": "break-glass reported to the administrators",
    "access.refused_out_of_scope": "was refused: the patient is not in their care teams",
    "care_team.patient_add": "added the patient to a care team",
    "care_team.patient_remove": "removed the patient from a care team",
}


def describe(action: str) -> str:
    """A plain-language line for an audit action (the raw action is shown beside it)."""
    if action in _WHAT:
        return _WHAT[action]
    if action.startswith("flag."):
        return f"flag event: {action.removeprefix('flag.')}"
    return action


def chain_json(chain: ChainReport) -> dict[str, Any]:
    return {
        "ok": chain.ok,
        "rows_checked": chain.rows_checked,
        "head_seq": chain.head_seq,
        "head_hash": chain.head_hash,
        "problems": [{"seq": p.seq, "kind": p.kind, "message": p.message} for p in chain.problems],
    }


def event_json(e: AccessEvent) -> dict[str, Any]:
    return {
        "seq": e.entry.seq,
        "at": e.entry.at,
        "who": e.entry.actor,
        "role": e.role,
        "via": e.via,
        "from": e.entry.source_ip,
        "action": e.entry.action,
        "what": describe(e.entry.action),
        "kind": e.kind,
        "direct": e.direct,
        "detail": e.public_detail(),
        "intact": e.intact,
    }


def _report(conn: Conn, me: Principal, patient_id: int, source_ip: str | None) -> dict[str, Any]:
    p = queries.patient(conn, patient_id)
    if p is None:
        raise NotFound(f"no patient {patient_id}")
    conn.commit()  # end the lookup's transaction: the report reads under its own snapshot
    report = patient_access(conn, patient_id)
    seq = record_view(conn, me, what="access_report", patient_id=patient_id,
                      detail={"events": len(report.events), "chain_ok": report.ok}, source_ip=source_ip)
    return {
        "patient": {"patient_id": p["patient_id"], "mrn": p["mrn"], "display_name": p["display_name"]},
        "ok": report.ok,
        "chain": chain_json(report.chain),
        "events": [event_json(e) for e in report.events],
        "this_view_seq": seq,
    }


@router.get("/patients/{patient_id}/access", response_class=HTMLResponse, include_in_schema=False)
def access_page(request: Request, me: User, patient_id: PatientId) -> Response:
    with ctx(request).pool.connection() as conn:
        data = _report(conn, me, patient_id, client_ip(request))
    return render(request, "access.html", data)


@router.get("/api/patients/{patient_id}/access", tags=["patients"])
def api_access(request: Request, me: User, patient_id: PatientId) -> dict[str, Any]:
    """Who viewed, exported or changed this patient's data: when, what, from where, and whether
    each audit row and the whole hash chain still verify. Other patients' ids are never shown."""
    with ctx(request).pool.connection() as conn:
        data = _report(conn, me, patient_id, client_ip(request))
    data["patient"].pop("display_name")  # the API identifies the patient by id and MRN only
    return data


def _chain(request: Request, me: Principal) -> ChainReport:
    with ctx(request).pool.connection() as conn:
        chain = chain_status(conn)
        record_view(conn, me, what="audit_chain", patient_id=None,
                    detail={"ok": chain.ok, "head_seq": chain.head_seq}, source_ip=client_ip(request))
    return chain


@router.get("/admin/audit", response_class=HTMLResponse, include_in_schema=False)
def admin_audit(request: Request, me: User) -> Response:
    return render(request, "admin_audit.html", {"chain": _chain(request, me)})


@router.get("/api/admin/audit", tags=["admin"])
def api_admin_audit(request: Request, me: User) -> dict[str, Any]:
    """The audit chain's verification: ok or each problem found, and the head hash to anchor."""
    return chain_json(_chain(request, me))
