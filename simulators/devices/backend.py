"""The simulated BLE backend, plugged into the gateway by entry point (``rpmflow.ble_backends``).

Why here: the gateway package ships to a Raspberry Pi and must not import simulator code; it finds
this factory by name (``RPMFLOW_GATEWAY_BACKEND=sim``, see gateway/backends.py). The simulator's
own settings stay under the gateway's prefix so the demo, chaos run, fleet and tests keep working:

| variable | default | meaning |
|---|---|---|
| ``RPMFLOW_GATEWAY_SIM_DEVICES`` | ``bp:SIM-BP-0001,glucose:SIM-GL-0001`` | simulated devices |
| ``RPMFLOW_GATEWAY_SIM_SCENARIO`` | ``normal`` | ``normal``, ``demo``, ``faults``, ``quirks`` |
| ``RPMFLOW_GATEWAY_SIM_SEED`` | 1 | simulator seed |
| ``RPMFLOW_GATEWAY_SIM_INTERVAL_S`` | 20 | a new reading every N s (0: only the stored ones) |
| ``RPMFLOW_GATEWAY_SIM_EPOCH`` | the current hour | local ISO time anchoring the stored records |
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final
from zoneinfo import ZoneInfo

from gateway.errors import SettingsError
from simulators.devices.radio import SimulatedRadio
from simulators.devices.scenarios import SCENARIOS, build_radio, parse_devices_spec

PREFIX: Final = "RPMFLOW_GATEWAY_SIM_"


@dataclass(frozen=True)
class SimSettings:
    devices: str = "bp:SIM-BP-0001,glucose:SIM-GL-0001"
    scenario: str = "normal"
    seed: int = 1
    interval_s: float = 20.0
    epoch: datetime | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> SimSettings:
        """Read ``RPMFLOW_GATEWAY_SIM_*``; a bad value raises :class:`SettingsError` naming it."""

        def get(key: str) -> str | None:
            return environ.get(PREFIX + key) or None

        def parse(key: str, kind: type[int] | type[float], default: float) -> float:
            raw = get(key)
            try:
                return default if raw is None else kind(raw)
            except ValueError:
                raise SettingsError(PREFIX + key, f"must be a number, got {raw!r}") from None

        scenario = get("SCENARIO") or cls.scenario
        if scenario not in SCENARIOS:
            raise SettingsError(PREFIX + "SCENARIO", f"must be one of {sorted(SCENARIOS)}, got {scenario!r}")
        devices = get("DEVICES") or cls.devices
        try:
            parse_devices_spec(devices)
        except ValueError as exc:
            raise SettingsError(PREFIX + "DEVICES", str(exc)) from None
        epoch_text = get("EPOCH")
        try:
            epoch = datetime.fromisoformat(epoch_text) if epoch_text else None
        except ValueError:
            raise SettingsError(PREFIX + "EPOCH",
                                f"must be an ISO local date-time, got {epoch_text!r}") from None
        return cls(devices=devices, scenario=scenario, seed=int(parse("SEED", int, cls.seed)),
                   interval_s=parse("INTERVAL_S", float, cls.interval_s), epoch=epoch)


def make_radio(environ: Mapping[str, str], zone: ZoneInfo) -> SimulatedRadio:
    """The ``sim`` backend: simulated devices speaking the exact GATT bytes, in the gateway's zone."""
    s = SimSettings.from_env(environ)
    return build_radio(s.devices, s.scenario, s.seed, s.interval_s, zone.key, s.epoch)
