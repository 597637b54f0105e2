"""Sign-in, sign-out, the role-based home redirect, and API tokens."""

from __future__ import annotations

import hmac
import logging
import secrets
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel

from dashboards import mfa
from dashboards.audit_trail import record_action
from dashboards.auth import LOGIN_CSRF_COOKIE, MFA_COOKIE, SESSION_COOKIE, authorize
from dashboards.context import client_ip, ctx
from dashboards.errors import CsrfRejected, NotFound
from dashboards.passwords import DUMMY_HASH, hash_password, needs_rehash, verify_password
from dashboards.routes.deps import User
from dashboards.sessions import (
    MAX_TOKEN_DAYS,
    create_token,
    end_session,
    list_tokens,
    revoke_token,
    start_session,
)
from dashboards.throttle import REPEATED_LOCKOUTS
from dashboards.web import local_path, render, see_other
from ingest.migrate import schema_status
from ingest.timescale import failing_jobs
from triage.clinical import people_store
from triage.clinical.audit import record

log = logging.getLogger(__name__)

public = APIRouter()
router = APIRouter(dependencies=[Depends(authorize)])

HOME_BY_ROLE = {"nurse": "/queue", "clinician": "/queue", "billing": "/billing", "admin": "/admin"}


def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int | None) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        httponly=True,
        samesite="strict",
        secure=ctx(request).settings.secure_cookies,
        path="/",
    )


@public.get("/healthz", include_in_schema=True, tags=["health"],
            responses={503: {"description": "not ready: the database schema is behind this release"}})
def healthz(request: Request) -> Response:
    """Ready only when the database answers and its schema is at this release's version (a load
    balancer must not send sign-ins to a dashboard whose tables do not exist yet); no data."""
    with ctx(request).pool.connection() as conn:
        status = schema_status(conn)
        jobs = failing_jobs(conn) if status.current else []
    if not status.current:
        return JSONResponse({"status": "not ready", "reason": status.describe()}, status_code=503,
                            headers={"Retry-After": "10"})
    # Detail: TimescaleDB background jobs whose last run failed (empty without TimescaleDB).
    return JSONResponse({"status": "ok", "timescaledb_jobs_failing": [j.line() for j in jobs]})


@public.get("/login", response_class=HTMLResponse, include_in_schema=False)
def login_form(request: Request, next: str | None = None, expired: int = 0) -> Response:
    token = secrets.token_urlsafe(24)
    response = render(
        request,
        "login.html",
        {"csrf_token": token, "next": local_path(next, ""), "expired": bool(expired), "error": None},
    )
    set_cookie(request, response, LOGIN_CSRF_COOKIE, token, 600)
    return response


def _check_password(request: Request, username: str, password: str) -> int | None:
    """The user id when the credentials match an active account; records every attempt (table and
    audit chain: the table is the application's, the chain is what no service role can edit).
    A right password is audited by the caller: as ``auth.sign_in`` when it grants a session, as
    ``auth.password_ok`` when a second factor is still owed."""
    with ctx(request).pool.connection() as conn:
        row = people_store.sign_in_record(conn, username)
        ok = verify_password(password, row.password_hash if row else DUMMY_HASH)
        ok = ok and row is not None and row.active
        reason = None if ok else ("unknown user" if row is None else "inactive" if not row.active
                                  else "wrong password")
        conn.execute(
            "INSERT INTO dashboard_sign_ins (username, user_id, succeeded, source_ip, reason)"
            " VALUES (%s, %s, %s, %s, %s)",
            (username[:200], row.user_id if row else None, ok, client_ip(request), reason),
        )
        if not ok:
            record(conn, actor=username[:200], action="auth.sign_in_failed", patient_id=None,
                   detail={"reason": reason}, source_ip=client_ip(request))
        if ok and row is not None and needs_rehash(row.password_hash):
            people_store.set_password_hash(conn, row.user_id, hash_password(password))
        return row.user_id if ok and row is not None else None


def _refused(request: Request, next: str, error: str, status: int,
             headers: dict[str, str] | None, username: str = "") -> Response:
    """The sign-in form again with the error, keeping the username typed (only the password is retyped)."""
    token = secrets.token_urlsafe(24)
    refused = render(request, "login.html",
                     {"csrf_token": token, "next": local_path(next, ""), "expired": False, "error": error,
                      "username": username},
                     status_code=status)
    if headers:
        refused.headers.update(headers)
    set_cookie(request, refused, LOGIN_CSRF_COOKIE, token, 600)
    return refused


def count_failure(request: Request, name: str, ip: str | None) -> None:
    """Feed the throttle; a new lockout is audited, and repeated ones raise an alert for admins."""
    throttle = ctx(request).throttle
    lock = throttle.failed(name, ip)
    if lock is None:
        return
    with ctx(request).pool.connection() as conn:
        record(conn, actor=name[:200], action="auth.lockout", patient_id=None,
               detail={"scope": lock.scope, "window": lock.window, "retry_after_s": lock.retry_after_s},
               source_ip=ip)
        count = throttle.lockouts_today(name)
        if lock.scope == "account" and count >= REPEATED_LOCKOUTS:
            log.warning("account %r locked out %d times today: admins alerted", name[:64], count)
            record(conn, actor="rpmflow-dashboard", action="alert.repeated_lockout", patient_id=None,
                   detail={"username": name[:200], "lockouts_today": count}, source_ip=ip)


@public.post("/login", include_in_schema=False)
def login(
    request: Request,
    username: Annotated[str, Form(max_length=200)],
    password: Annotated[str, Form(max_length=1000)],
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(csrf_token.encode(), expected.encode()):
        raise CsrfRejected("sign-in form expired or forged: reload the sign-in page")
    name, ip = username.strip(), client_ip(request)
    lock = ctx(request).throttle.locked(name, ip)
    if lock is not None:
        with ctx(request).pool.connection() as conn:
            record(conn, actor=name[:200], action="auth.sign_in_refused", patient_id=None,
                   detail={"reason": f"{lock.scope} locked", "window": lock.window}, source_ip=ip)
        return _refused(request, next, f"Too many failed sign-ins: try again in {lock.retry_after_s} s.",
                        429, {"Retry-After": str(lock.retry_after_s)}, username=name)
    user_id = _check_password(request, name, password)
    if user_id is None:
        count_failure(request, name, ip)
        return _refused(request, next, "Unknown user or wrong password.", 401, None, username=name)
    with ctx(request).pool.connection() as conn:
        if mfa.enrolled(conn, user_id):  # no session yet: the second factor first
            challenge = mfa.start_challenge(conn, user_id)
            record(conn, actor=name, action="auth.password_ok", patient_id=None,
                   detail={"second_factor": "owed"}, source_ip=ip)
            owed = see_other("/login/second-factor" + (f"?next={quote(next, safe='/')}" if next else ""))
            set_cookie(request, owed, MFA_COOKIE, challenge, mfa.CHALLENGE_SECONDS)
            owed.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
            return owed
    return grant_session(request, user_id, name, next, second_factor="none")


def grant_session(request: Request, user_id: int, username: str, next: str, *,
                  second_factor: str) -> Response:
    """Start the session once every factor the user has passed; audited as ``auth.sign_in``."""
    with ctx(request).pool.connection() as conn:
        old = request.cookies.get(SESSION_COOKIE)
        if old:
            end_session(conn, old, "replaced by new sign-in")
        session_id = start_session(
            conn, user_id, source_ip=client_ip(request), user_agent=request.headers.get("user-agent")
        )
        record(conn, actor=username[:200], action="auth.sign_in", patient_id=None,
               detail={"second_factor": second_factor}, source_ip=client_ip(request))
    response: Response = see_other(local_path(next, "/"))
    set_cookie(request, response, SESSION_COOKIE, session_id, None)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    response.delete_cookie(MFA_COOKIE, path="/")
    return response


@router.post("/logout", include_in_schema=False)
def logout(request: Request, me: User) -> Response:
    session_id = request.cookies.get(SESSION_COOKIE)
    if session_id:
        with ctx(request).pool.connection() as conn:
            end_session(conn, session_id)
    response = see_other("/login")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/", include_in_schema=False)
def home(me: User) -> RedirectResponse:
    return see_other(HOME_BY_ROLE.get(me.role, "/account"))


@router.get("/account", response_class=HTMLResponse, include_in_schema=False)
def account(request: Request, me: User) -> Response:
    with ctx(request).pool.connection() as conn:
        tokens = list_tokens(conn, me.user_id)
    return render(request, "account.html", {"tokens": tokens, "new_token": None})


@router.post("/account/tokens", response_class=HTMLResponse, include_in_schema=False)
def new_token(
    request: Request, me: User, name: Annotated[str, Form(min_length=1, max_length=100)],
    days: Annotated[int, Form(ge=1, le=MAX_TOKEN_DAYS)] = 90,
    scope: Annotated[Literal["read", "write"], Form()] = "read",
) -> Response:
    with ctx(request).pool.connection() as conn:
        token_id, token = create_token(conn, me.user_id, name, days=days, scope=scope)
        record_action(conn, me, action="auth.token_created", patient_id=None,
                      detail={"token_id": token_id, "token_name": name, "scope": scope, "days": days},
                      source_ip=client_ip(request))
        tokens = list_tokens(conn, me.user_id)
    return render(request, "account.html", {"tokens": tokens, "new_token": token})


@router.post("/account/tokens/{token_id}/revoke", include_in_schema=False)
def revoke(request: Request, me: User, token_id: int) -> Response:
    with ctx(request).pool.connection() as conn:
        if not revoke_token(conn, me.user_id, token_id):
            raise NotFound("no such active token")
        record_action(conn, me, action="auth.token_revoked", patient_id=None, detail={"token_id": token_id},
                      source_ip=client_ip(request))
    return see_other("/account")


@router.get("/openapi.json", include_in_schema=False)
def openapi_schema(request: Request, me: User) -> dict[str, Any]:
    """The OpenAPI schema, for signed-in users and token holders only (no map for strangers)."""
    schema: dict[str, Any] = request.app.openapi()
    return schema


class Me(BaseModel):
    user_id: int
    username: str
    display_name: str
    role: str
    via: str


@router.get("/api/me", response_model=Me, tags=["account"])
def api_me(me: User) -> dict[str, Any]:
    """Who the token (or session) belongs to."""
    return {"user_id": me.user_id, "username": me.username, "display_name": me.display_name,
            "role": me.role, "via": me.via}
