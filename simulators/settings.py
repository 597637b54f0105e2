"""Settings of the simulators' commands (prefix ``RPMFLOW_SIM_``), overridable by flags.

Declared with :func:`gateway.runtime.settings.setting`, like every component's: ``rpmflow-sim demo``
flags are generated from these fields and a bad value is one line naming the variable, exit 2.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gateway.runtime import settings as rs
from gateway.runtime.settings import setting

PREFIX = "RPMFLOW_SIM_"


@dataclass(frozen=True)
class DemoSettings:
    gateways: int = setting(3, env=PREFIX + "DEMO_GATEWAYS", check=rs.at_least(1),
                            help="simulated gateways")
    port: int = setting(8000, env=PREFIX + "DEMO_PORT", check=rs.between(1, 65535), help="dashboard port")
    interval_s: float = setting(20.0, env=PREFIX + "DEMO_INTERVAL_S", check=rs.at_least(0),
                                help="seconds between simulated readings")
    bluez: bool = setting(False, env=PREFIX + "DEMO_BLUEZ",
                          help="run the first gateway on the bleak backend against the BlueZ double "
                               "on a private dbus-daemon (needs the Debian package dbus)")
    duration_s: float | None = setting(None, env=PREFIX + "DEMO_DURATION_S",
                                       help="stop after this many seconds (unset: until Ctrl-C)")

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> DemoSettings:
        return rs.load(cls, environ)
