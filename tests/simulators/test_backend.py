"""The simulated BLE backend is a plug-in the gateway finds by entry point, configured by its own
``RPMFLOW_GATEWAY_SIM_*`` variables (built here from dicts, never from the process environment)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from gateway import backends
from gateway.errors import SettingsError
from simulators.devices import SimulatedRadio
from simulators.devices.backend import SimSettings

ZONE = ZoneInfo("America/New_York")


def test_the_sim_backend_is_registered_beside_the_built_in_one() -> None:
    assert backends.available()[0] == "bleak"
    assert "sim" in backends.available()


def test_settings_from_a_dict() -> None:
    s = SimSettings.from_env({
        "RPMFLOW_GATEWAY_SIM_DEVICES": "bp:X,glucose:Y",
        "RPMFLOW_GATEWAY_SIM_SCENARIO": "demo",
        "RPMFLOW_GATEWAY_SIM_SEED": "3",
        "RPMFLOW_GATEWAY_SIM_INTERVAL_S": "2.5",
        "RPMFLOW_GATEWAY_SIM_EPOCH": "2026-03-15T12:00:00",
    })
    assert s == SimSettings("bp:X,glucose:Y", "demo", 3, 2.5, datetime(2026, 3, 15, 12))
    assert SimSettings.from_env({}) == SimSettings()


@pytest.mark.parametrize(
    ("key", "value"),
    [("SCENARIO", "sunny"), ("DEVICES", "thermometer:T1"), ("SEED", "x"), ("INTERVAL_S", "soon"),
     ("EPOCH", "yesterday")],
)
def test_a_bad_simulator_setting_is_named(key: str, value: str) -> None:
    with pytest.raises(SettingsError) as info:
        SimSettings.from_env({f"RPMFLOW_GATEWAY_SIM_{key}": value})
    assert info.value.key == f"RPMFLOW_GATEWAY_SIM_{key}"


def test_the_gateway_builds_the_simulated_radio_by_name() -> None:
    radio = backends.make_radio("sim", {"RPMFLOW_GATEWAY_SIM_DEVICES": "bp:SIM-BP-7,glucose:SIM-GL-7",
                                        "RPMFLOW_GATEWAY_SIM_INTERVAL_S": "0"}, ZONE)
    assert isinstance(radio, SimulatedRadio)
    assert sorted(d.serial for d in radio.devices) == ["SIM-BP-7", "SIM-GL-7"]


def test_an_unknown_backend_names_the_setting_and_the_choices() -> None:
    with pytest.raises(SettingsError) as info:
        backends.make_radio("usb", {}, ZONE)
    assert info.value.key == "RPMFLOW_GATEWAY_BACKEND"
    assert "installed: bleak, sim" in str(info.value)


@pytest.mark.parametrize(
    ("env", "named"),
    [({"RPMFLOW_GATEWAY_BACKEND": "usb"}, "RPMFLOW_GATEWAY_BACKEND"),
     ({"RPMFLOW_GATEWAY_BACKEND": "sim", "RPMFLOW_GATEWAY_SIM_SCENARIO": "sunny"},
      "RPMFLOW_GATEWAY_SIM_SCENARIO")],
)
def test_the_console_script_prints_one_line_and_exits_2(env: dict[str, str], named: str,
                                                        tmp_path: Path) -> None:
    base = {k: v for k, v in os.environ.items() if not k.startswith("RPMFLOW_")}
    base.update(RPMFLOW_GATEWAY_ID="gw-1", RPMFLOW_MQTT_URL="mqtt://gw-1:pw@127.0.0.1:1",
                RPMFLOW_GATEWAY_OUTBOX=str(tmp_path / "o.sqlite3"), **env)
    exe = str(Path(sys.executable).parent / "rpmflow-gateway")
    done = subprocess.run([exe, "run"], env=base, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and named in lines[0] and "Traceback" not in done.stderr
