"""What every request handler reaches through ``request.app.state.ctx``."""

from __future__ import annotations

from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.templating import Jinja2Templates
from psycopg_pool import ConnectionPool

from dashboards.db import Conn
from dashboards.localtime import zone
from dashboards.settings import Settings
from dashboards.throttle import SignInThrottle


@dataclass
class AppContext:
    settings: Settings
    pool: ConnectionPool[Conn]
    templates: Jinja2Templates
    throttle: SignInThrottle = field(default_factory=SignInThrottle)


def ctx(request: Request) -> AppContext:
    value = request.app.state.ctx
    assert isinstance(value, AppContext)
    return value


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def patient_zone(request: Request, name: str | None) -> ZoneInfo:
    """The zone a patient's times are shown in: theirs, else the clinic's."""
    return zone(name, ctx(request).settings.clinic_tz)
