"""Dashboard configuration: one frozen object read once from ``RPMFLOW_DASHBOARD_*`` at the entry point.

Declared with :func:`gateway.runtime.settings.setting`; the app never reads the environment
itself: ``create_app(settings)`` receives this object, and tests build it from a plain dict.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gateway.runtime import settings as rs
from gateway.runtime.settings import SettingError, setting
from ingest.dberrors import check_url

PREFIX = "RPMFLOW_DASHBOARD_"
DATABASE_URL_KEY = "RPMFLOW_DATABASE_URL"
SettingsError = SettingError  # the name the dashboard code and tests have always used


@dataclass(frozen=True)
class Settings:
    """Everything the web app needs; defaults suit a dashboard behind a TLS-terminating proxy."""

    database_url: str = rs.database_url_field(check_url)
    host: str = setting("127.0.0.1", env=PREFIX + "HOST", help="bind address")
    port: int = setting(8000, env=PREFIX + "PORT", check=rs.between(0, 65535), help="port")
    # HIPAA §164.312(a)(2)(iii) automatic logoff: a session unused this long is dead.
    session_idle_minutes: float = setting(15.0, env=PREFIX + "SESSION_IDLE_MINUTES", check=rs.at_least(1),
                                          help="automatic logoff after this many idle minutes")
    # Upper bound on any session, however active.
    session_max_hours: float = setting(12.0, env=PREFIX + "SESSION_MAX_HOURS", check=rs.at_least(0.1),
                                       help="longest session, however active, in hours")
    # Secure cookies need HTTPS; set false only for plain-HTTP local demos and tests.
    secure_cookies: bool = setting(True, env=PREFIX + "SECURE_COOKIES",
                                   help="mark session cookies Secure (false only for plain-HTTP local demos)")
    pool_min_size: int = setting(1, env=PREFIX + "POOL_MIN_SIZE", flag=False, check=rs.at_least(0),
                                 help="database connections kept open")
    pool_max_size: int = setting(8, env=PREFIX + "POOL_MAX_SIZE", flag=False, check=rs.at_least(1),
                                 help="most database connections")
    # How often the server-sent-events stream looks for new flags.
    sse_poll_seconds: float = setting(1.0, env=PREFIX + "SSE_POLL_SECONDS", flag=False,
                                      check=rs.at_least(0.05), help="live queue refresh period in seconds")
    # Hostile-input limits (dashboards/limits.py): larger bodies get 413; a request head (line and
    # headers) larger than max_head_bytes gets 400 from h11, one not complete within
    # header_timeout_seconds gets 408 and is closed (slow loris); idle kept-alive connections close.
    max_body_bytes: int = setting(1024 * 1024, env=PREFIX + "MAX_BODY_BYTES", check=rs.at_least(1024),
                                  help="413 above this request body size")
    max_head_bytes: int = setting(16 * 1024, env=PREFIX + "MAX_HEAD_BYTES", flag=False,
                                  check=rs.at_least(4096), help="400 above this request head size")
    header_timeout_seconds: float = setting(10.0, env=PREFIX + "HEADER_TIMEOUT_SECONDS",
                                            flag="--header-timeout", check=rs.at_least(0.1),
                                            help="seconds a request head may take")
    keep_alive_seconds: float = setting(5.0, env=PREFIX + "KEEP_ALIVE_SECONDS", flag="--keep-alive",
                                        check=rs.at_least(0.1), help="seconds an idle connection stays open")
    # Second factor: clinicians, billing and admins always; nurses too when this is true.
    mfa_nurses: bool = setting(False, env=PREFIX + "MFA_NURSES",
                               help="require a TOTP second factor for nurses too")
    # Break-glass: how long an emergency opening of a patient outside the care team lasts.
    break_glass_minutes: float = setting(60.0, env=PREFIX + "BREAK_GLASS_MINUTES", check=rs.between(1, 720),
                                         help="minutes a break-glass access to a patient lasts")
    # Times on clinical screens are the patient's local time; this zone is used when a patient has
    # none on file, and for the live status line of the queue (many patients, one clinic).
    clinic_tz: str = setting("America/New_York", env=PREFIX + "CLINIC_TZ", check=rs.iana_zone,
                             help="IANA time zone of the clinic (patients without a zone, queue status line)")
    auth_timeout_s: float = rs.auth_timeout_field(PREFIX)
    startup_timeout_s: float = rs.startup_timeout_field(PREFIX)
    log_level: str = rs.log_level_field(PREFIX)

    def validate(self) -> None:
        if self.pool_min_size > self.pool_max_size:
            raise SettingError("pool_min_size", f"must not exceed POOL_MAX_SIZE ({self.pool_max_size})")

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        return rs.load(cls, environ)
