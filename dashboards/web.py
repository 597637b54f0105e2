"""Rendering, redirects, security headers and the error → response mapping shared by all routes."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import psycopg
from fastapi import FastAPI, Request
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup
from starlette.exceptions import HTTPException as StarletteHTTPException

from dashboards.context import ctx
from dashboards.errors import DashboardError, MfaEnrolmentDue, NotSignedIn, OutOfCareTeam
from dashboards.flash import PARAM as FLASH_PARAM
from dashboards.flash import message as flash_message
from dashboards.localtime import ago_text, time_html, utc_text
from dashboards.sessions import Principal
from dashboards.units import MG_DL, glucose_text, number_text

log = logging.getLogger(__name__)

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
STATIC_DIR = Path(__file__).resolve().parent / "static"

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)


def _ago(value: Any) -> str:
    """'3 min ago'-style age for a datetime or a number of seconds."""
    return ago_text(value, datetime.now(UTC))


@pass_context
def _when(context: Context, value: Any) -> str | Markup:
    """A time: in the page's ``tz`` (the patient's zone) with UTC on hover, else in UTC."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return str(value)
    if isinstance(value, datetime):
        tz = context.get("tz")
        return time_html(value, tz) if isinstance(tz, ZoneInfo) else utc_text(value)
    return "–" if value is None else str(value)


@pass_context
def _glucose(context: Context, value: Any) -> str:
    """A glucose value (stored in mg/dL) in the unit the page's user reads (``glucose_unit``)."""
    return glucose_text(value, str(context.get("glucose_unit") or MG_DL))


def make_templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
    env = templates.env
    env.autoescape = True  # never rely on file-extension guessing for escaping
    env.filters["ago"] = _ago
    env.filters["when"] = _when
    env.filters["num"] = number_text
    env.filters["glucose"] = _glucose
    return templates


def render(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    status_code: int = 200,
    principal: Principal | None = None,
) -> HTMLResponse:
    c = ctx(request)
    who = principal or getattr(request.state, "principal", None)
    full = {
        "me": who,
        "csrf_token": who.csrf_token if who is not None else context.get("csrf_token", ""),
        "idle_minutes": c.settings.session_idle_minutes,
        "flash": flash_message(request.query_params.get(FLASH_PARAM)),
        **context,
    }
    return c.templates.TemplateResponse(request, template, full, status_code=status_code)


def local_path(target: str | None, default: str) -> str:
    """Only same-site relative paths may be redirect targets (no open redirects)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def wants_json(request: Request) -> bool:
    path = request.url.path
    return path.startswith(("/api/", "/events/")) or request.headers.get("authorization", "") != ""


def malformed_unicode(request: Request) -> Response:
    """400 for text that is not valid Unicode (a lone surrogate, invalid UTF-8): the input is wrong."""
    log.info("refused malformed Unicode on %s", request.url.path)
    return JSONResponse({"error": "malformed Unicode in the request"}, status_code=400)


def install(app: FastAPI) -> None:
    """Error handlers and the security-header middleware."""
    _page_errors(app)
    _input_errors(app)
    _security_headers(app)


def _page_errors(app: FastAPI) -> None:
    """Our typed errors, unknown URLs and anything unhandled: JSON for the API, a page for people."""

    @app.exception_handler(DashboardError)
    async def dashboard_error(request: Request, exc: DashboardError) -> Response:
        if wants_json(request):
            body: dict[str, Any] = {"error": exc.message}
            if exc.reasons:
                body["reasons"] = exc.reasons
            if isinstance(exc, OutOfCareTeam):
                body["break_glass"] = f"/api/patients/{exc.patient_id}/break-glass"
            headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, NotSignedIn) else None
            return JSONResponse(body, status_code=exc.status_code, headers=headers)
        if isinstance(exc, NotSignedIn):
            here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return see_other("/login?next=" + quote(here, safe="/"))  # the deep link, query included
        if isinstance(exc, MfaEnrolmentDue):
            return see_other("/account/mfa")
        return render(
            request,
            "error.html",
            {"status": exc.status_code, "message": exc.message, "reasons": exc.reasons,
             "break_glass": exc.patient_id if isinstance(exc, OutOfCareTeam) else None},
            status_code=exc.status_code,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        # Unknown URLs and wrong methods: JSON for the API, a page with a way on for people.
        if wants_json(request) or exc.status_code < 400:
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
        message = {404: "There is no page at this address. It may have moved, or the link is mistyped.",
                   405: "This address cannot be used that way."}.get(exc.status_code, str(exc.detail))
        return render(request, "error.html", {"status": exc.status_code, "message": message, "reasons": []},
                      status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        if wants_json(request):
            return JSONResponse({"error": "internal error"}, status_code=500)
        return render(request, "error.html", {"status": 500, "message": "The page could not be shown.",
                                              "reasons": []}, status_code=500)


def _input_errors(app: FastAPI) -> None:
    """Input that cannot be read or stored, and a schema not yet migrated: never a 500."""

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        try:  # FastAPI echoes the input, which cannot be encoded when it holds a lone surrogate
            return await request_validation_exception_handler(request, exc)
        except UnicodeError:
            return malformed_unicode(request)

    @app.exception_handler(UnicodeError)
    async def unicode_error(request: Request, exc: UnicodeError) -> Response:
        return malformed_unicode(request)

    @app.exception_handler(psycopg.DataError)
    async def data_error(request: Request, exc: psycopg.DataError) -> Response:
        # Values PostgreSQL cannot store (NUL bytes, out-of-range numbers): the input is wrong.
        log.info("refused input on %s (SQLSTATE %s)", request.url.path, exc.sqlstate)
        return JSONResponse({"error": "invalid input", "detail": str(exc).splitlines()[0]}, status_code=422)

    @app.exception_handler(psycopg.errors.UndefinedTable)
    async def schema_missing(request: Request, exc: psycopg.errors.UndefinedTable) -> Response:
        # The database was not migrated (or not to this release): say so, never a 500.
        log.error("database schema not ready (%s): run `rpmflow-ingest migrate` as the owner role",
                  str(exc).splitlines()[0])
        message = "The database is not ready (schema not migrated); try again shortly."
        if wants_json(request):
            return JSONResponse({"error": message}, status_code=503, headers={"Retry-After": "30"})
        return render(request, "error.html", {"status": 503, "message": message, "reasons": []},
                      status_code=503)


def _security_headers(app: FastAPI) -> None:
    @app.middleware("http")
    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        h = response.headers
        # Time to the response head (streams excluded); read by bench/dashboard_bench.py.
        h.setdefault("Server-Timing", f"app;dur={(time.perf_counter() - started) * 1000:.2f}")
        h.setdefault("Content-Security-Policy", CSP)
        h.setdefault("X-Content-Type-Options", "nosniff")
        h.setdefault("X-Frame-Options", "DENY")
        h.setdefault("Referrer-Policy", "no-referrer")
        if ctx(request).settings.secure_cookies:  # served over HTTPS (behind the TLS proxy)
            h.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        if not request.url.path.startswith("/static/"):
            h.setdefault("Cache-Control", "no-store")
        return response
