"""Settings of the simulators' commands (prefix ``RPMFLOW_SIM_``), overridable by flags."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

PREFIX = "RPMFLOW_SIM_"


@dataclass(frozen=True)
class DemoSettings:
    gateways: int = 3
    port: int = 8000
    interval_s: float = 20.0
    duration_s: float | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> DemoSettings:
        def get(key: str) -> str | None:
            return environ.get(PREFIX + key)

        duration = get("DEMO_DURATION_S")
        return cls(
            gateways=int(get("DEMO_GATEWAYS") or cls.gateways),
            port=int(get("DEMO_PORT") or cls.port),
            interval_s=float(get("DEMO_INTERVAL_S") or cls.interval_s),
            duration_s=float(duration) if duration else None,
        )
