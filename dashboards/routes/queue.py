"""The triage queue (page, live fragment, JSON), flag detail and the one-click flag actions.

The flag lifecycle is not restated here: the states a queue can filter on, the one-click events
and the dispositions are read from ``triage.lifecycle`` (the one transition table), and the
buttons a user sees come from ``lifecycle.allowed_events``.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from dashboards import care_teams, queries
from dashboards.audit_trail import record_action, record_view
from dashboards.auth import authorize
from dashboards.context import client_ip, ctx, patient_zone
from dashboards.db import Conn
from dashboards.errors import NotFound
from dashboards.flash import PARAM as FLASH_PARAM
from dashboards.flash import message as flash_message
from dashboards.flash import with_code
from dashboards.localtime import local_text, utc_text, zone
from dashboards.queue_view import RULE_WORDS, by_patient, plain_reason, present
from dashboards.routes.deps import FlagId, User, domain_errors
from dashboards.sessions import Principal, session_alive
from dashboards.units import glucose_unit
from dashboards.web import local_path, render, see_other
from triage import lifecycle
from triage.clinical import crisis
from triage.clinical import symptoms as symptom_check
from triage.clinical.review import log_time
from triage.flags_store import apply_event

router = APIRouter(dependencies=[Depends(authorize)])

Severity = Literal["critical", "high", "moderate", "info"]


def _one_of(choices: Sequence[str], *, blank: bool = False) -> str:
    """A pattern accepting exactly ``choices`` (and "" when ``blank``): a 422 for anything else."""
    return "^(?:" + "|".join([*map(re.escape, choices), *([""] if blank else [])]) + ")$"


# "active" (every state that still needs someone), or one lifecycle state.
STATUS_CHOICES: Final = ("active", *lifecycle.STATES)
# The one-click events of the queue and flag pages: those a nurse may fire (review, promote and
# dismiss have their own pages), in the lifecycle's order.
QUEUE_EVENTS: Final = tuple(e for e in lifecycle.EVENTS if e in lifecycle.ROLE_EVENTS["nurse"])
# The queue's one-click events and their codes in a flag's data-acts (app.js adds the buttons).
ONE_CLICK: Final = (("acknowledge", "a"), ("assign", "t"))

StateFilter = Annotated[str, Query(pattern=_one_of(STATUS_CHOICES))]
EventName = Annotated[str, Field(pattern=_one_of(QUEUE_EVENTS))]
Disposition = Annotated[str, Field(pattern=_one_of(lifecycle.DISPOSITIONS))]
RuleId = Annotated[str | None, Query(max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$")]


@dataclass(frozen=True)
class QueueFilters:
    """The queue's filter query, read one way by every view of the queue.

    The live fragment is re-fetched with the page's own query string, so both must accept the same.
    """

    severity: Severity | None
    rule: str | None
    status: StateFilter
    mine: bool


def _queue_filters(
    severity: Severity | None = None,
    rule: RuleId = None,
    status: StateFilter = "active",
    mine: bool = False,
) -> QueueFilters:
    return QueueFilters(severity=severity, rule=rule, status=status, mine=mine)


Filters = Annotated[QueueFilters, Depends(_queue_filters)]


def _states(status: str) -> tuple[str, ...]:
    return lifecycle.ACTIVE_STATES if status == "active" else (status,)


def _load_queue(
    conn: Conn, me: Principal, filters: QueueFilters, *, limit: int, source_ip: str | None,
    html: bool = False, rules: bool = False,
) -> dict[str, Any]:
    """The flags, counts and newest flag id (one round trip); for ``html``, also the reader's glucose
    unit and each patient's newest reading of the kinds their flags are about; with ``rules``, the
    rule list of the Reason filter. The audit row is written last: its append lock is held until
    commit, so no other request waits behind this one's reads."""
    reads = queries.queue_reads(
        conn,
        states=_states(filters.status),
        severity=filters.severity,
        rule_id=filters.rule,
        assigned_to=me.username if filters.mine else None,
        limit=limit,
        viewer=care_teams.viewer(me),
        unit_of=me.user_id if html else None,
        rules=rules,
    )
    rows = reads.rows
    kinds: dict[int, set[str]] = {}
    for r in rows:
        r["actions"] = lifecycle.allowed_events(r["state"], me.role)
        if r["patient_id"] is not None:
            kinds.setdefault(r["patient_id"], set()).update([r["kind"]] if r["kind"] else [])
    patient_ids = sorted(kinds)
    data = {
        "rows": rows,
        "patient_ids": patient_ids,
        "counts": reads.counts,
        "last_flag_id": reads.last_flag_id,
        "glucose_unit": reads.glucose_unit,
        "rule_ids": reads.rule_ids,
        "newest": queries.newest_readings(conn, patient_ids, kinds) if html else {},
    }
    record_view(conn, me, what="queue", patient_id=None,
                detail={"patient_ids": patient_ids, "flags": len(rows)}, source_ip=source_ip)
    return data


def _queue_view(
    conn: Conn, request: Request, me: Principal, filters: QueueFilters, *, rules: bool = False
) -> dict[str, Any]:
    """What the queue page and its live fragment render: rows, counts, the filters that chose them."""
    data = _load_queue(conn, me, filters, limit=200, source_ip=client_ip(request), html=True, rules=rules)
    patients = by_patient(data["rows"], data.pop("newest"))
    present(patients, one_click=ONE_CLICK, clinician=me.role == "clinician",
            glucose_unit=data["glucose_unit"], now=datetime.now(UTC))
    f = filters
    return {
        **data,
        "patients": patients,
        "filters": {"severity": f.severity or "", "rule": f.rule or "", "status": f.status, "mine": f.mine},
        "query": request.url.query,
        "dispositions": lifecycle.DISPOSITIONS,
        "status_choices": STATUS_CHOICES,
    }


@router.get("/queue", response_class=HTMLResponse, include_in_schema=False)
def queue_page(request: Request, me: User, filters: Filters) -> Response:
    with ctx(request).pool.connection() as conn:
        data = _queue_view(conn, request, me, filters, rules=True)
    rules = [(r, RULE_WORDS.get(r) or plain_reason(r)) for r in data.pop("rule_ids")]
    return render(request, "queue.html", {**data, "rules": rules})


@router.get("/queue/rows", response_class=HTMLResponse, include_in_schema=False)
def queue_rows(request: Request, me: User, filters: Filters) -> Response:
    """The live part of the queue page, re-fetched by app.js when the event stream says so."""
    with ctx(request).pool.connection() as conn:
        data = _queue_view(conn, request, me, filters)
    return render(request, "_queue_live.html", data)


class QueueItem(BaseModel):
    flag_id: int
    patient_id: int | None
    patient: str | None
    rule_id: str
    severity: str
    state: str
    reason: str
    opened_at: Any
    assigned_to: str | None
    kind: str | None
    systolic_mmhg: float | None
    diastolic_mmhg: float | None
    pulse_bpm: float | None
    glucose_mg_dl: float | None
    reading_at: Any
    seconds_since_reading: int | None
    actions: list[str]


class QueueOut(BaseModel):
    counts: dict[str, int]
    last_flag_id: int
    flags: list[QueueItem]


@router.get("/api/queue", response_model=QueueOut, tags=["triage"])
def api_queue(
    request: Request,
    me: User,
    severity: Severity | None = None,
    rule: RuleId = None,
    status: StateFilter = "active",
    mine: bool = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> dict[str, Any]:
    """Flags to work, most severe then oldest first, with the latest reading's values (units in names)."""
    # Explicit query parameters (not ``Filters``) keep the documented parameter order, limit last.
    filters = _queue_filters(severity=severity, rule=rule, status=status, mine=mine)
    with ctx(request).pool.connection() as conn:
        data = _load_queue(conn, me, filters, limit=limit, source_ip=client_ip(request))
    return {"counts": data["counts"], "last_flag_id": data["last_flag_id"], "flags": data["rows"]}


def _poll(request: Request, after: int, principal: Principal) -> tuple[list[dict[str, Any]], bool]:
    c = ctx(request)
    with c.pool.connection() as conn:
        alive = principal.via != "session" or session_alive(
            conn, principal.session_hash, idle_minutes=c.settings.session_idle_minutes
        )
        return (queries.new_flags(conn, after, viewer=care_teams.viewer(principal)) if alive else []), alive


def _newest(request: Request) -> int:
    with ctx(request).pool.connection() as conn:
        return queries.max_flag_id(conn)


@router.get("/events/flags", tags=["triage"], response_class=StreamingResponse)
async def flag_stream(
    request: Request,
    me: User,
    after: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None,
) -> StreamingResponse:
    """Server-sent events: one ``flag`` event per new flag (id, severity, rule; no patient data).

    Resumes after ``after`` or the ``Last-Event-ID`` header, else after the newest flag now.
    Ends with a ``signed-out`` event when the session expires (the stream is not activity).
    """
    c = ctx(request)
    last_event = request.headers.get("last-event-id", "")
    if after is None and last_event.isdigit():
        after = int(last_event)
    if after is None:
        after = await run_in_threadpool(_newest, request)
    interval = c.settings.sse_poll_seconds
    clinic = zone(c.settings.clinic_tz)
    start = after

    async def events() -> AsyncIterator[str]:
        last = start
        quiet = 0.0
        yield "retry: 3000\n\n"
        while not await request.is_disconnected():
            rows, alive = await run_in_threadpool(_poll, request, last, me)
            if not alive:
                yield "event: signed-out\ndata: {}\n\n"
                return
            for r in rows:
                last = int(r["flag_id"])
                # The status line shows the clinic's wall time with its zone, UTC beside it (not the
                # browser's clock, which may be in another zone than the clinic or the patient).
                payload = {"flag_id": last, "severity": r["severity"], "rule_id": r["rule_id"],
                           "state": r["state"], "opened_at": r["opened_at"].isoformat(),
                           "opened_local": local_text(r["opened_at"], clinic, date=False),
                           "opened_utc": utc_text(r["opened_at"])}
                yield f"id: {last}\nevent: flag\ndata: {json.dumps(payload)}\n\n"
            quiet = 0.0 if rows else quiet + interval
            if quiet >= 15.0:
                quiet = 0.0
                yield ": keep-alive\n\n"
            await asyncio.sleep(interval)

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


def _flag_context(conn: Conn, me: Principal, flag_id: int, source_ip: str | None) -> dict[str, Any]:
    f = queries.flag(conn, flag_id)
    if f is None:
        raise NotFound(f"no flag {flag_id}")
    events = queries.flag_events(conn, [flag_id])
    readings = queries.flag_readings(conn, list(f["reading_ids"]))
    record_view(conn, me, what="flag", patient_id=f["patient_id"], detail={"flag_id": flag_id},
                source_ip=source_ip)
    return {"flag": f, "events": events, "readings": readings,
            "actions": lifecycle.allowed_events(f["state"], me.role), "crisis": _crisis_context(conn, f)}


def _crisis_context(conn: Conn, f: dict[str, Any]) -> dict[str, Any] | None:
    """The AHA protocol panel of a BP-crisis flag: re-measure status, latest symptom check, history."""
    if f["rule_id"] not in symptom_check.CRISIS_RULES:
        return None
    evidence = f["evidence"] or {}
    remeasure, wf = crisis.current(conn, f, now=datetime.now(UTC))
    return {"remeasure": asdict(remeasure), "latest": evidence.get("symptom_check"),
            "checks": symptom_check.symptom_checks(conn, int(f["flag_id"])),
            "labels": symptom_check.LABELS,
            "workflow": {**asdict(wf), "done": wf.done, "history": evidence.get("crisis_outcomes") or []},
            "outcome_labels": crisis.OUTCOME_LABELS}


@router.get("/flags/{flag_id}", response_class=HTMLResponse, include_in_schema=False)
def flag_page(request: Request, me: User, flag_id: FlagId) -> Response:
    with ctx(request).pool.connection() as conn:
        data = _flag_context(conn, me, flag_id, client_ip(request))
        unit = glucose_unit(conn, me.user_id)
    nxt = data["crisis"]["workflow"]["next_step"] if data["crisis"] else None
    flash = flash_message(request.query_params.get(FLASH_PARAM), next_step=nxt)
    return render(request, "flag.html", {**data, "dispositions": lifecycle.DISPOSITIONS, "flash": flash,
                                         "tz": patient_zone(request, data["flag"]["patient_tz"]),
                                         "glucose_unit": unit})


@router.get("/api/flags/{flag_id}", tags=["triage"])
def api_flag(request: Request, me: User, flag_id: FlagId) -> dict[str, Any]:
    """One flag with its events (notes included) and its readings."""
    with ctx(request).pool.connection() as conn:
        return _flag_context(conn, me, flag_id, client_ip(request))


def _apply(
    request: Request, me: Principal, flag_id: int, event: str, *,
    note: str | None, disposition: str | None, minutes: int | None,
) -> str:
    """Fire one lifecycle event; minutes go through triage's time log so billing can count them."""
    source_ip = client_ip(request)
    with ctx(request).pool.connection() as conn, domain_errors():
        f = queries.flag(conn, flag_id)
        if f is None:
            raise NotFound(f"no flag {flag_id}")
        if event == "log_time":
            log_time(conn, flag_id, me.user_id, minutes if minutes is not None else 0, note=note,
                     source_ip=source_ip)
            return str(f["state"])
        state = apply_event(conn, flag_id, event, me.username, me.role,
                            note=note, disposition=disposition, minutes=minutes)
        record_action(conn, me, action=f"flag.{event}", patient_id=f["patient_id"],
                      detail={"flag_id": flag_id, "from": f["state"], "to": state,
                              "disposition": disposition}, source_ip=source_ip)
        return state


@router.post("/flags/{flag_id}/events", include_in_schema=False)
def flag_action(
    request: Request,
    me: User,
    flag_id: FlagId,
    event: Annotated[str, Form(pattern=_one_of(QUEUE_EVENTS))],
    note: Annotated[str, Form(max_length=4000)] = "",
    disposition: Annotated[str, Form(pattern=_one_of(lifecycle.DISPOSITIONS, blank=True))] = "",
    minutes: Annotated[int | None, Form(ge=1, le=1440)] = None,
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    # One panel form carries every field, so only the fields of the chosen event count.
    _apply(request, me, flag_id, event, note=note.strip() or None,
           disposition=(disposition or None) if event == "close" else None,
           minutes=minutes if event == "log_time" else None)
    return see_other(with_code(local_path(next, f"/flags/{flag_id}"), event))


class FlagEventIn(BaseModel):
    event: EventName
    note: str | None = Field(default=None, max_length=4000)
    disposition: Disposition | None = None
    minutes: int | None = Field(default=None, ge=1, le=1440)


class FlagStateOut(BaseModel):
    flag_id: int
    state: str


@router.post("/api/flags/{flag_id}/events", response_model=FlagStateOut, tags=["triage"])
def api_flag_action(request: Request, me: User, flag_id: FlagId, body: FlagEventIn) -> dict[str, Any]:
    """Fire a lifecycle event; 403 when the role may not, 409 when the state does not allow it."""
    state = _apply(request, me, flag_id, body.event, note=body.note, disposition=body.disposition,
                   minutes=body.minutes)
    return {"flag_id": flag_id, "state": state}
