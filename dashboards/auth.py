"""The single authorization dependency every protected route runs.

Order: find the route's allowed roles in ``policy.POLICY`` → identify the caller (Bearer token,
else session cookie) → a session owing a second-factor enrolment reaches only the enrolment page →
check the role → for cookie-authenticated unsafe methods, check the CSRF token (form field
``csrf_token`` or header ``X-CSRF-Token``; Bearer requests carry no ambient credential, so CSRF does
not apply to them) → a nurse or clinician naming a patient (or a patient's flag) outside their care
teams is refused and audited (``check_scope``).
"""

from __future__ import annotations

import hmac

from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.routing import Match

from dashboards import care_teams
from dashboards.context import client_ip, ctx
from dashboards.db import Conn
from dashboards.errors import CsrfRejected, Forbidden, MfaEnrolmentDue, NotSignedIn, OutOfCareTeam
from dashboards.policy import MFA_ENROLMENT_ROUTES, SCOPE_EXEMPT, allowed_roles, requires_mfa
from dashboards.sessions import Principal, resolve_session, resolve_token, token_refusal
from triage.clinical.audit import record

SESSION_COOKIE = "rpmflow_session"
LOGIN_CSRF_COOKIE = "rpmflow_login_csrf"
MFA_COOKIE = "rpmflow_mfa"  # password passed, second factor owed (dashboards/mfa.py challenge)
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def route_template(request: Request) -> str:
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    for r in request.app.router.routes:  # pragma: no cover - the route is always in scope
        match, _ = r.matches(request.scope)
        if match is Match.FULL:
            return str(getattr(r, "path", ""))
    return ""


def _identify(request: Request, *, touch: bool) -> Principal | None:
    c = ctx(request)
    header = request.headers.get("authorization", "")
    with c.pool.connection() as conn:
        if header:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                return None
            return _token_principal(conn, request, token.strip())
        session_id = request.cookies.get(SESSION_COOKIE)
        if not session_id:
            return None
        return resolve_session(
            conn,
            session_id,
            idle_minutes=c.settings.session_idle_minutes,
            max_hours=c.settings.session_max_hours,
            touch=touch,
        )


def _token_principal(conn: Conn, request: Request, token: str) -> Principal | None:
    """Resolve a Bearer token; every use and every refusal is audited naming the token."""
    where = {"method": request.method, "path": request.url.path[:300]}
    principal = resolve_token(conn, token)
    if principal is None:
        token_id, name, reason = token_refusal(conn, token)
        record(conn, actor=f"token:{token_id}" if token_id else "anonymous", action="auth.token_refused",
               patient_id=None, detail={"token_id": token_id, "token_name": name, "reason": reason, **where},
               source_ip=client_ip(request))
        return None
    record(conn, actor=principal.username, action="auth.token_use", patient_id=None,
           detail={"token_id": principal.token_id, "token_name": principal.token_name,
                   "scope": principal.scope, "role": principal.role, **where},
           source_ip=client_ip(request))
    return principal


async def check_csrf(request: Request, expected: str) -> None:
    supplied = request.headers.get(CSRF_HEADER, "")
    if not supplied:
        ctype = request.headers.get("content-type", "")
        if ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()
            value = form.get(CSRF_FIELD)
            supplied = value if isinstance(value, str) else ""
    if not supplied or not expected or not hmac.compare_digest(supplied.encode(), expected.encode()):
        raise CsrfRejected("missing or invalid CSRF token")


def _path_id(request: Request, name: str) -> int | None:
    raw = request.path_params.get(name)
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None  # the route's own validation answers 422


def check_scope(request: Request, who: Principal) -> None:
    """Refuse (and audit) a nurse's or clinician's request naming a patient, or a flag of a patient,
    outside their care teams and break-glass grants."""
    if care_teams.viewer(who) is None:
        return
    patient_id, flag_id = _path_id(request, "patient_id"), _path_id(request, "flag_id")
    if patient_id is None and flag_id is None:
        return
    with ctx(request).pool.connection() as conn:
        if patient_id is None and flag_id is not None:
            patient_id = care_teams.flag_patient(conn, flag_id)
        if patient_id is None or not care_teams.out_of_scope(conn, who.user_id, patient_id):
            return
        record(conn, actor=who.username, action="access.refused_out_of_scope", patient_id=patient_id,
               detail={"role": who.role, "via": who.via, "method": request.method,
                       "path": request.url.path[:300]}, source_ip=client_ip(request))
    raise OutOfCareTeam(patient_id)


async def authorize(request: Request) -> Principal:
    """Resolve and check the caller for the matched route; raise a DashboardError otherwise."""
    roles = allowed_roles(request.method, route_template(request))
    if roles is None:
        raise Forbidden("route has no access policy")
    # Streams and background refreshes are not user activity: they must not defeat automatic logoff.
    background = request.headers.get("x-rpmflow-background") == "1"
    touch = not (request.url.path.startswith("/events/") or background)
    principal = await run_in_threadpool(_identify, request, touch=touch)
    if principal is None:
        raise NotSignedIn("sign-in required")
    request.state.principal = principal  # known before any refusal: an error page shows their own menu
    if (principal.via == "session" and not principal.mfa_enrolled
            and requires_mfa(principal.role, nurses=ctx(request).settings.mfa_nurses)
            and (request.method.replace("HEAD", "GET"), route_template(request)) not in MFA_ENROLMENT_ROUTES):
        raise MfaEnrolmentDue("Set up your second factor (an authenticator app) before anything else.")
    if principal.role not in roles:
        raise Forbidden(f"This page is not part of a {principal.role}'s work in rpmflow.")
    if principal.via == "token" and principal.scope != "write" and request.method in UNSAFE:
        raise Forbidden(f"token {principal.token_name!r} is read-only")
    if request.method in UNSAFE and principal.via == "session":
        await check_csrf(request, principal.csrf_token)
    if (request.method, route_template(request)) not in SCOPE_EXEMPT:
        await run_in_threadpool(check_scope, request, principal)
    return principal
