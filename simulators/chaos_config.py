"""The knobs of one chaos run (``RPMFLOW_SIM_CHAOS_*``, flags override): read by the CLI, used by the run."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

PREFIX = "RPMFLOW_SIM_CHAOS_"


@dataclass(frozen=True)
class ChaosConfig:
    """One chaos run; ``from_env`` reads ``RPMFLOW_SIM_CHAOS_<FIELD>`` and flags override."""

    gateways: int = 50
    patients_per_gateway: int = 4
    fault_seconds: float = 150.0
    mean_fault_gap_s: float = 2.0
    interval_s: float = 15.0  # a new simulated reading per device every N s
    seed: int = 1
    settle_timeout_s: float = 180.0
    ingest_processes: int = 2
    audit_writers: int = 2
    # Ingest through $share/<group>/ (the scaling mode). Off by default: Mosquitto 2.0 does not
    # restore shared subscriptions after a restart, which this run measures as lost readings.
    shared: bool = False
    kinds: str = ""  # comma-separated subset of FAULT_KINDS; empty: all of them
    vitals_every: int = 2  # every Nth patient also has a weight scale and a pulse oximeter; 0: none
    bluez_gateways: int = 0  # the first N gateways run bleak against a BlueZ double (issue 19)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> ChaosConfig:
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = environ.get(PREFIX + f.name.upper())
            if raw:
                kind = type(getattr(cls, f.name))
                try:
                    values[f.name] = (raw.lower() in ("1", "true", "yes")) if kind is bool else kind(raw)
                except ValueError:
                    raise ValueError(f"{PREFIX}{f.name.upper()}: not a {kind.__name__}: {raw!r}") from None
        return cls(**values)
