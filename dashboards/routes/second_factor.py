"""The second factor in the browser: the code step of sign-in, enrolment, and an admin's reset.

Sign-in for a user with a confirmed factor is password → ``/login/second-factor`` (a TOTP code or
one recovery code) → session; the step between is a challenge row, not a session. A user whose role
needs a factor and who has none gets a session that reaches only ``/account/mfa`` (see
``dashboards.auth.authorize``). Wrong codes feed the same throttle as wrong passwords.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response

from dashboards import mfa, totp
from dashboards.audit_trail import record_action
from dashboards.auth import LOGIN_CSRF_COOKIE, MFA_COOKIE, authorize
from dashboards.context import client_ip, ctx
from dashboards.errors import CsrfRejected, NotFound
from dashboards.policy import requires_mfa
from dashboards.routes.account import count_failure, grant_session, set_cookie
from dashboards.routes.deps import User, UserId
from dashboards.web import local_path, render, see_other
from triage.clinical import people_store
from triage.clinical.audit import record

log = logging.getLogger(__name__)

public = APIRouter()
router = APIRouter(dependencies=[Depends(authorize)])


def _code_form(request: Request, next: str, username: str, error: str | None, status: int = 200,
               headers: dict[str, str] | None = None) -> Response:
    token = secrets.token_urlsafe(24)
    page = render(request, "login_second_factor.html",
                  {"csrf_token": token, "next": local_path(next, ""), "username": username, "error": error},
                  status_code=status)
    if headers:
        page.headers.update(headers)
    set_cookie(request, page, LOGIN_CSRF_COOKIE, token, 600)
    return page


def _challenge(request: Request) -> mfa.Challenge | None:
    value = request.cookies.get(MFA_COOKIE)
    if not value:
        return None
    with ctx(request).pool.connection() as conn:
        return mfa.open_challenge(conn, value)


@public.get("/login/second-factor", response_class=HTMLResponse, include_in_schema=False)
def code_form(request: Request, next: str | None = None) -> Response:
    challenge = _challenge(request)
    if challenge is None:
        return see_other("/login")
    return _code_form(request, next or "", challenge.username, None)


@public.post("/login/second-factor", include_in_schema=False)
def check_code(
    request: Request,
    code: Annotated[str, Form(max_length=40)],
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(csrf_token.encode(), expected.encode()):
        raise CsrfRejected("sign-in form expired or forged: reload the sign-in page")
    ip = client_ip(request)
    challenge = _challenge(request)
    if challenge is None:  # expired, used up, or never had a right password: start again
        with ctx(request).pool.connection() as conn:
            record(conn, actor="anonymous", action="auth.mfa_refused", patient_id=None,
                   detail={"reason": "no live challenge"}, source_ip=ip)
        return see_other("/login?expired=0")
    lock = ctx(request).throttle.locked(challenge.username, ip)
    if lock is not None:
        with ctx(request).pool.connection() as conn:
            record(conn, actor=challenge.username, action="auth.sign_in_refused", patient_id=None,
                   detail={"reason": f"{lock.scope} locked", "window": lock.window, "step": "second factor"},
                   source_ip=ip)
        return _code_form(request, next, challenge.username,
                          f"Too many failed sign-ins: try again in {lock.retry_after_s} s.", 429,
                          {"Retry-After": str(lock.retry_after_s)})
    factor = "totp" if totp.looks_like_totp(code.strip()) else "recovery_code"
    if _passes(request, challenge, code.strip(), factor):
        return grant_session(request, challenge.user_id, challenge.username, next, second_factor=factor)
    count_failure(request, challenge.username, ip)
    return _code_form(request, next, challenge.username,
                      "That code is not valid (wrong, expired or already used).", 401)


def _passes(request: Request, challenge: mfa.Challenge, code: str, factor: str) -> bool:
    """Check the code and record the outcome in the audit chain, in one transaction."""
    ip = client_ip(request)
    with ctx(request).pool.connection() as conn:
        left: int | None = None
        if factor == "totp":
            ok = mfa.accept_totp(conn, challenge.user_id, code)
        else:
            left = mfa.use_recovery_code(conn, challenge.user_id, code)
            ok = left is not None
        ok = ok and mfa.finish_challenge(conn, challenge)
        if not ok:
            attempts_left = mfa.fail_challenge(conn, challenge)
            record(conn, actor=challenge.username, action="auth.mfa_failed", patient_id=None,
                   detail={"factor": factor, "challenge_attempts_left": attempts_left}, source_ip=ip)
        elif factor == "recovery_code":
            record(conn, actor=challenge.username, action="auth.recovery_code_used", patient_id=None,
                   detail={"recovery_codes_left": left}, source_ip=ip)
            if left == 0:
                log.warning("user %s used their last recovery code", challenge.user_id)
    return ok


def _enrol_context(request: Request, me: User) -> dict[str, Any]:
    required = requires_mfa(me.role, nurses=ctx(request).settings.mfa_nurses)
    with ctx(request).pool.connection() as conn:
        if mfa.enrolled(conn, me.user_id):
            return {"enrolled": True, "codes_left": mfa.recovery_codes_left(conn, me.user_id),
                    "required": required}
        secret = mfa.pending_secret(conn, me.user_id)
    return {"enrolled": False, "required": required, "secret_grouped": totp.grouped(secret),
            "uri": totp.provisioning_uri(secret, me.username)}


@router.get("/account/mfa", response_class=HTMLResponse, include_in_schema=False)
def enrol_page(request: Request, me: User) -> Response:
    return render(request, "account_mfa.html", _enrol_context(request, me))


@router.post("/account/mfa/confirm", response_class=HTMLResponse, include_in_schema=False)
def confirm(request: Request, me: User, code: Annotated[str, Form(max_length=40)]) -> Response:
    ip = client_ip(request)
    with ctx(request).pool.connection() as conn:
        codes = mfa.confirm(conn, me.user_id, code)
        record_action(conn, me, action="mfa.enrolled" if codes else "mfa.enrol_failed", patient_id=None,
                      detail={"recovery_codes": len(codes or [])}, source_ip=ip)
    if codes:
        return render(request, "account_mfa.html", {"recovery_codes": codes, "enrolled": True})
    count_failure(request, me.username, ip)
    error = "That code did not match: check the key and try again."
    return render(request, "account_mfa.html", {**_enrol_context(request, me), "error": error},
                  status_code=422)


@router.post("/admin/users/{user_id}/mfa/reset", include_in_schema=False)
def reset(request: Request, me: User, user_id: UserId) -> Response:
    with ctx(request).pool.connection() as conn:
        username = people_store.username_of(conn, user_id)
        if username is None or not mfa.reset(conn, user_id):
            raise NotFound(f"user {user_id} has no second factor to reset")
        record_action(conn, me, action="mfa.reset", patient_id=None,
                      detail={"user_id": user_id, "username": username}, source_ip=client_ip(request))
    log.warning("admin %s reset the second factor of user %s", me.user_id, user_id)
    return see_other("/admin/users")
