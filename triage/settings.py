"""Triage configuration: one frozen dataclass from ``RPMFLOW_TRIAGE_*`` (+ ``RPMFLOW_DATABASE_URL``).

Read once at the entry point (``triage.cli``), overridden by CLI flags, passed down explicitly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from triage.errors import InvalidSetting

PREFIX = "RPMFLOW_TRIAGE_"


@dataclass(frozen=True)
class Settings:
    database_url: str
    interval_s: float = 2.0  # incremental pass period (a flag is visible within ~interval + pass time)
    shards: int = 4  # patient shards, each guarded by a PostgreSQL advisory lock
    overlap_s: float = 30.0  # re-read this much before the watermark (late commits)
    lookback_days: int = 35  # history loaded per patient (baseline 28 d + recent 3 d, 30-day period)
    silence_interval_s: float = 300.0  # gateway/device/patient silence check
    daily_hour_utc: int = 6  # calendar rules (trend, adherence period) run daily at this hour
    misfire_grace_s: int = 30
    pool_size: int = 4
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Build from the environment mapping; a missing database URL names the key."""
        url = environ.get("RPMFLOW_DATABASE_URL")
        if not url:
            raise InvalidSetting("RPMFLOW_DATABASE_URL", "", "is required")
        values: dict[str, Any] = {"database_url": url}
        for f in fields(cls):
            key = PREFIX + f.name.upper()
            if f.name == "database_url" or key not in environ:
                continue
            values[f.name] = _coerce(key, environ[key], type(getattr(_DEFAULTS, f.name)))
        return cls(**values).validated()

    def with_overrides(self, **changes: Any) -> Settings:
        """CLI flags win over the environment (``None`` means "not given")."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None}).validated()

    def validated(self) -> Settings:
        if self.interval_s <= 0:
            raise InvalidSetting(PREFIX + "INTERVAL_S", str(self.interval_s), "must be > 0")
        if not 1 <= self.shards <= 1024:
            raise InvalidSetting(PREFIX + "SHARDS", str(self.shards), "must be 1..1024")
        if self.lookback_days < 31:
            raise InvalidSetting(PREFIX + "LOOKBACK_DAYS", str(self.lookback_days), "must be >= 31")
        if not 0 <= self.daily_hour_utc <= 23:
            raise InvalidSetting(PREFIX + "DAILY_HOUR_UTC", str(self.daily_hour_utc), "must be 0..23")
        return self


def _coerce(key: str, raw: str, kind: type) -> Any:
    try:
        return kind(raw)
    except ValueError as exc:
        raise InvalidSetting(key, raw, f"not a valid {kind.__name__}") from exc


_DEFAULTS = Settings(database_url="postgresql://unused")
