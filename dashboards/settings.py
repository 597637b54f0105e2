"""Dashboard configuration: one frozen object read once from ``RPMFLOW_DASHBOARD_*`` at the entry point.

The app never reads the environment itself; ``create_app(settings)`` receives this object, and tests
build it from a plain dict.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

PREFIX = "RPMFLOW_DASHBOARD_"
DATABASE_URL_KEY = "RPMFLOW_DATABASE_URL"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class SettingsError(ValueError):
    """A configuration value is missing or malformed; the message names the variable."""


def _bool(environ: Mapping[str, str], key: str, default: bool) -> bool:
    raw = environ.get(key)
    if raw is None or raw == "":
        return default
    low = raw.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise SettingsError(f"{key} must be true or false, got {raw!r}")


def _number(environ: Mapping[str, str], key: str, default: float, minimum: float) -> float:
    raw = environ.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{key} must be a number, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{key} must be >= {minimum}, got {raw!r}")
    return value


@dataclass(frozen=True)
class Settings:
    """Everything the web app needs; defaults suit a dashboard behind a TLS-terminating proxy."""

    database_url: str
    host: str = "127.0.0.1"
    port: int = 8000
    # HIPAA §164.312(a)(2)(iii) automatic logoff: a session unused this long is dead.
    session_idle_minutes: float = 15.0
    # Upper bound on any session, however active.
    session_max_hours: float = 12.0
    # Secure cookies need HTTPS; set false only for plain-HTTP local demos and tests.
    secure_cookies: bool = True
    pool_min_size: int = 1
    pool_max_size: int = 8
    # How often the server-sent-events stream looks for new flags.
    sse_poll_seconds: float = 1.0
    # Hostile-input limits (dashboards/limits.py): larger bodies get 413; a request head (line and
    # headers) larger than max_head_bytes gets 400 from h11, one not complete within
    # header_timeout_seconds gets 408 and is closed (slow loris); idle kept-alive connections close.
    max_body_bytes: int = 1024 * 1024
    max_head_bytes: int = 16 * 1024
    header_timeout_seconds: float = 10.0
    keep_alive_seconds: float = 5.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        url = environ.get(DATABASE_URL_KEY, "")
        if not url:
            raise SettingsError(f"{DATABASE_URL_KEY} is required (postgresql://user:pw@host:port/db)")
        return cls(
            database_url=url,
            host=environ.get(PREFIX + "HOST", "") or "127.0.0.1",
            port=int(_number(environ, PREFIX + "PORT", 8000, 0)),
            session_idle_minutes=_number(environ, PREFIX + "SESSION_IDLE_MINUTES", 15.0, 1.0),
            session_max_hours=_number(environ, PREFIX + "SESSION_MAX_HOURS", 12.0, 0.1),
            secure_cookies=_bool(environ, PREFIX + "SECURE_COOKIES", True),
            pool_min_size=int(_number(environ, PREFIX + "POOL_MIN_SIZE", 1, 0)),
            pool_max_size=int(_number(environ, PREFIX + "POOL_MAX_SIZE", 8, 1)),
            sse_poll_seconds=_number(environ, PREFIX + "SSE_POLL_SECONDS", 1.0, 0.05),
            max_body_bytes=int(_number(environ, PREFIX + "MAX_BODY_BYTES", 1024 * 1024, 1024)),
            max_head_bytes=int(_number(environ, PREFIX + "MAX_HEAD_BYTES", 16 * 1024, 4096)),
            header_timeout_seconds=_number(environ, PREFIX + "HEADER_TIMEOUT_SECONDS", 10.0, 0.1),
            keep_alive_seconds=_number(environ, PREFIX + "KEEP_ALIVE_SECONDS", 5.0, 0.1),
        )
