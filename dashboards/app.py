"""``create_app(settings)``: the FastAPI app, its pool, templates, routers and access policy."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from starlette.middleware.gzip import GZipMiddleware
from starlette.routing import BaseRoute, Mount, Route

from dashboards import web
from dashboards.context import AppContext
from dashboards.db import make_pool
from dashboards.limits import RequestLimits
from dashboards.policy import POLICY, PUBLIC
from dashboards.routes import (
    access,
    account,
    admin,
    billing,
    billing_facts,
    billing_worklist,
    care_teams,
    crisis,
    patient,
    preferences,
    queue,
    review,
    second_factor,
)
from dashboards.settings import Settings
from dashboards.throttle import SignInThrottle
from dashboards.throttle_store import PostgresThrottleStorage

log = logging.getLogger(__name__)


def _walk(routes: list[BaseRoute], prefix: str, keys: list[tuple[str, str]]) -> None:
    for r in routes:
        inner = getattr(r, "original_router", None)  # FastAPI >= 0.12x wraps included routers
        if inner is not None:
            extra = str(getattr(getattr(r, "include_context", None), "prefix", "") or "")
            _walk(list(inner.routes), prefix + extra, keys)
        elif isinstance(r, Mount):
            keys.append(("GET", prefix + r.path + "/{path:path}"))
        elif isinstance(r, APIRoute | Route):
            keys.extend((m, prefix + r.path) for m in sorted(r.methods or ()) if m != "HEAD")
        else:
            raise RuntimeError(f"unexpected route type {type(r).__name__}: cannot check its access policy")


def route_keys(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path template) of every endpoint the app serves (HEAD folded into GET)."""
    keys: list[tuple[str, str]] = []
    _walk(list(app.routes), "", keys)
    return keys


def check_policy(app: FastAPI) -> None:
    """Refuse to build an app with a route nobody decided the roles for."""
    missing = [k for k in route_keys(app) if k not in POLICY and k not in PUBLIC]
    if missing:
        raise RuntimeError(f"routes without an access policy in dashboards/policy.py: {missing}")


def create_app(settings: Settings) -> FastAPI:
    pool = make_pool(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool.open(wait=False)
        try:
            yield
        finally:
            pool.close()

    app = FastAPI(
        title="rpmflow dashboard",
        version="1.0",
        description="Triage queue, patient review, clinician promotion, billing and administration. "
        "JSON endpoints take `Authorization: Bearer <token>` (create one on /account).",
        docs_url=None,  # the bundled docs pages load JS from a CDN; the schema is at /openapi.json
        redoc_url=None,
        openapi_url=None,  # served by account.openapi_schema, behind sign-in (issue 14)
        lifespan=lifespan,
        max_body_size=settings.max_body_bytes,  # streamed bodies: 413 past the limit
    )
    # Throttle counters in the database: every dashboard process counts the same failures.
    app.state.ctx = AppContext(settings=settings, pool=pool, templates=web.make_templates(),
                               throttle=SignInThrottle(storage=PostgresThrottleStorage(pool)))
    web.install(app)
    app.include_router(account.public)
    app.include_router(account.router)
    app.include_router(second_factor.public)
    app.include_router(second_factor.router)
    app.include_router(queue.router)
    app.include_router(crisis.router)
    app.include_router(preferences.router)
    app.include_router(patient.router)
    app.include_router(review.router)
    app.include_router(billing_worklist.router)  # before billing: /billing/worklist is no {year}
    app.include_router(billing.router)
    app.include_router(billing_facts.router)
    app.include_router(admin.router)
    app.include_router(access.router)
    app.include_router(care_teams.router)
    app.mount("/static", StaticFiles(directory=str(web.STATIC_DIR)), name="static")
    # Pages compress about tenfold; event streams are left alone by Starlette (text/event-stream).
    app.add_middleware(GZipMiddleware, minimum_size=1024)
    app.add_middleware(RequestLimits, max_body_bytes=settings.max_body_bytes,  # outermost: before any read
                       max_head_bytes=settings.max_head_bytes)
    check_policy(app)
    _declare_bearer(app)
    return app


def _declare_bearer(app: FastAPI) -> None:
    """Say in the schema that the JSON API takes ``Authorization: Bearer <token>``."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = original()
            schema.setdefault("components", {})["securitySchemes"] = {
                "bearer": {"type": "http", "scheme": "bearer", "description": "token from /account"}
            }
            schema["security"] = [{"bearer": []}]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
