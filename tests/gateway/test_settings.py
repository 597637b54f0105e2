"""Gateway settings: prefixed env once, flags override, bad keys named at start-up."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli import build_parser, settings_from
from gateway.runtime.settings import SettingError as SettingsError
from gateway.settings import Settings

BASE = {"RPMFLOW_GATEWAY_ID": "gw-1", "RPMFLOW_MQTT_URL": "mqtt://gw-1:pw@127.0.0.1:1883"}


def test_from_env_defaults_and_fallback_url() -> None:
    s = Settings.from_env(BASE)
    assert s.gateway_id == "gw-1" and s.mqtt.username == "gw-1" and s.mqtt.password == "pw"
    assert s.backend == "bleak" and not s.mqtt.tls
    assert s.server_acks is True and s.confirm_timeout_s == 60.0
    own = Settings.from_env({**BASE, "RPMFLOW_GATEWAY_MQTT_URL": "mqtts://a:b@broker.example:8883"})
    assert own.mqtt.tls and own.mqtt.host == "broker.example"


def test_all_keys() -> None:
    s = Settings.from_env(
        {
            **BASE,
            "RPMFLOW_GATEWAY_OUTBOX": "/tmp/x.sqlite3",
            "RPMFLOW_GATEWAY_OUTBOX_CAPACITY": "7",
            "RPMFLOW_GATEWAY_DEVICES": "AA:BB, SER-1",
            "RPMFLOW_GATEWAY_BACKEND": "sim",
            "RPMFLOW_GATEWAY_TZ": "Europe/Paris",
            "RPMFLOW_GATEWAY_CLOCK_DRIFT_MAX_S": "30",
            "RPMFLOW_GATEWAY_MQTT_CA_FILE": "/etc/ca.pem",
        }
    )
    assert (s.outbox_path, s.outbox_capacity, s.devices) == (Path("/tmp/x.sqlite3"), 7, ("AA:BB", "SER-1"))
    assert s.backend == "sim"  # the simulators' plug-in; its own RPMFLOW_GATEWAY_SIM_* are its business
    assert (s.tz, s.clock_drift_max_s, s.mqtt_ca_file) == ("Europe/Paris", 30.0, Path("/etc/ca.pem"))


@pytest.mark.parametrize(
    ("env", "key"),
    [
        ({"RPMFLOW_MQTT_URL": "mqtt://h"}, "RPMFLOW_GATEWAY_ID"),
        ({"RPMFLOW_GATEWAY_ID": "gw"}, "RPMFLOW_GATEWAY_MQTT_URL"),
        ({**BASE, "RPMFLOW_GATEWAY_TZ": "Mars/Olympus"}, "RPMFLOW_GATEWAY_TZ"),
        ({**BASE, "RPMFLOW_GATEWAY_BACKEND": "usb"}, "RPMFLOW_GATEWAY_BACKEND"),
        ({**BASE, "RPMFLOW_GATEWAY_OUTBOX_CAPACITY": "many"}, "RPMFLOW_GATEWAY_OUTBOX_CAPACITY"),
        ({**BASE, "RPMFLOW_GATEWAY_ID": "gw/1"}, "RPMFLOW_GATEWAY_ID"),
        ({**BASE, "RPMFLOW_GATEWAY_SERVER_ACKS": "maybe"}, "RPMFLOW_GATEWAY_SERVER_ACKS"),
        ({**BASE, "RPMFLOW_GATEWAY_CONFIRM_TIMEOUT_S": "0"}, "RPMFLOW_GATEWAY_CONFIRM_TIMEOUT_S"),
        ({**BASE, "RPMFLOW_GATEWAY_CONFIRM_TIMEOUT_S": "soon"}, "RPMFLOW_GATEWAY_CONFIRM_TIMEOUT_S"),
        ({**BASE, "RPMFLOW_GATEWAY_OXIMETRY_WINDOW_S": "0"}, "RPMFLOW_GATEWAY_OXIMETRY_WINDOW_S"),
        ({**BASE, "RPMFLOW_GATEWAY_OXIMETRY_WINDOW_S": "7200"}, "RPMFLOW_GATEWAY_OXIMETRY_WINDOW_S"),
    ],
)
def test_bad_settings_name_the_key(env: dict[str, str], key: str) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env(env)
    assert info.value.key == key


def test_flags_override_env() -> None:
    args = build_parser().parse_args(
        [
            "run",
            "--gateway-id",
            "gw-2",
            "--backend",
            "sim",
            "--outbox",
            "/tmp/o.sqlite3",
        ]
    )
    s = settings_from(args, BASE)
    assert (s.gateway_id, s.backend, s.outbox_path) == ("gw-2", "sim", Path("/tmp/o.sqlite3"))
    only_flags = settings_from(
        build_parser().parse_args(["run", "--gateway-id", "g", "--mqtt-url", "mqtts://h"]), {}
    )
    assert only_flags.mqtt.host == "h"


@pytest.mark.parametrize(("raw", "expected"), [("false", False), ("0", False), ("No", False),
                                                 ("true", True), ("1", True), ("yes", True)])
def test_server_acks_switch(raw: str, expected: bool) -> None:
    s = Settings.from_env({**BASE, "RPMFLOW_GATEWAY_SERVER_ACKS": raw,
                           "RPMFLOW_GATEWAY_CONFIRM_TIMEOUT_S": "2.5"})
    assert (s.server_acks, s.confirm_timeout_s) == (expected, 2.5)


def test_server_acks_flags_override_env() -> None:
    env = {**BASE, "RPMFLOW_GATEWAY_SERVER_ACKS": "true"}
    off = settings_from(build_parser().parse_args(["run", "--no-server-acks", "--confirm-timeout", "5"]), env)
    assert (off.server_acks, off.confirm_timeout_s) == (False, 5.0)
    env_off = {**BASE, "RPMFLOW_GATEWAY_SERVER_ACKS": "false"}
    unset = settings_from(build_parser().parse_args(["run"]), env_off)
    assert unset.server_acks is False  # no flag: the environment stands


@pytest.mark.parametrize("argv", [["--help"], ["run", "--help"], ["decode", "--help"]])
def test_help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(argv)
    assert info.value.code == 0 and "usage: rpmflow-gateway" in capsys.readouterr().out


def test_oximetry_window_reaches_the_collector() -> None:
    s = Settings.from_env({**BASE, "RPMFLOW_GATEWAY_OXIMETRY_WINDOW_S": "30"})
    assert s.oximetry_window_s == 30
    assert Settings.from_env(BASE).oximetry_window_s == 60
