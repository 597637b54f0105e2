"""Triage configuration: one frozen dataclass from ``RPMFLOW_TRIAGE_*`` (+ ``RPMFLOW_DATABASE_URL``).

Declared with :func:`gateway.runtime.settings.setting`: read once at the entry point
(``triage.cli``), overridden by the flags generated from the same fields, passed down explicitly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateway.runtime import settings as rs
from gateway.runtime.settings import setting
from ingest.dberrors import check_url

PREFIX = "RPMFLOW_TRIAGE_"


@dataclass(frozen=True)
class DatabaseSettings:
    """The one-shot commands that need only the database (``audit-verify``, ``audit-anchor``, demo
    seeding): the service's own field, so ``--help``, the checks and the errors are the same."""

    database_url: str = rs.database_url_field(check_url)


@dataclass(frozen=True)
class Settings:
    database_url: str = rs.database_url_field(check_url)
    interval_s: float = setting(2.0, env=PREFIX + "INTERVAL_S", flag="--interval-s", check=rs.positive,
                                help="incremental pass period in seconds (a flag is visible within about "
                                     "interval + pass time)")
    shards: int = setting(4, env=PREFIX + "SHARDS", check=rs.between(1, 1024),
                          help="patient shards, each guarded by a PostgreSQL advisory lock")
    overlap_s: float = setting(30.0, env=PREFIX + "OVERLAP_S", flag=False, check=rs.at_least(0),
                               help="seconds re-read before the watermark (late commits)")
    lookback_days: int = setting(35, env=PREFIX + "LOOKBACK_DAYS", flag=False, check=rs.at_least(31),
                                 help="days of history loaded per patient (baseline 28 d + recent 3 d)")
    silence_interval_s: float = setting(300.0, env=PREFIX + "SILENCE_INTERVAL_S", flag="--silence-interval-s",
                                        check=rs.positive, help="gateway/device/patient silence check period "
                                                                "in seconds")
    daily_hour_utc: int = setting(6, env=PREFIX + "DAILY_HOUR_UTC", flag=False, check=rs.between(0, 23),
                                  help="calendar rules (trend, adherence period) run daily at this UTC hour")
    misfire_grace_s: int = setting(30, env=PREFIX + "MISFIRE_GRACE_S", flag=False, check=rs.at_least(1),
                                   help="APScheduler misfire grace time in seconds")
    pool_size: int = setting(4, env=PREFIX + "POOL_SIZE", flag=False, check=rs.at_least(1),
                             help="database connections of the service")
    audit_anchor_file: str = setting("", env=PREFIX + "AUDIT_ANCHOR_FILE",
                                     help="append the audit chain's head to this append-only file (off the "
                                          "database host; empty = off; docs/security.md)")
    audit_anchor_interval_s: float = setting(300.0, env=PREFIX + "AUDIT_ANCHOR_INTERVAL_S", check=rs.positive,
                                             help="seconds between audit anchors")
    auth_timeout_s: float = rs.auth_timeout_field(PREFIX)
    startup_timeout_s: float = rs.startup_timeout_field(PREFIX)
    log_level: str = rs.log_level_field(PREFIX)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Build from the environment mapping; a missing database URL names the variable."""
        return rs.load(cls, environ)

    def with_overrides(self, **changes: Any) -> Settings:
        """CLI flags win over the environment (``None`` means "not given")."""
        return rs.replace(self, **changes)
