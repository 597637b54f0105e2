"""The shared settings loader: env parsing by type, flag overrides, one-line errors naming both."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest

from gateway.runtime.settings import (
    SettingError,
    add_flags,
    at_least,
    load,
    replace,
    setting,
    table,
)


@dataclass(frozen=True)
class Sample:
    database_url: str = setting(env="RPMFLOW_DATABASE_URL", help="PostgreSQL URL")
    mqtt_url: str = setting(env=("RPMFLOW_X_MQTT_URL", "RPMFLOW_MQTT_URL"), help="broker URL")
    batch_size: int = setting(500, env="RPMFLOW_X_BATCH_SIZE", help="messages per commit", check=at_least(1))
    wait_s: float = setting(1.5, env="RPMFLOW_X_WAIT_S", flag="--wait", help="seconds to wait")
    shared: bool = setting(False, env="RPMFLOW_X_SHARED", help="shared subscription")
    outbox: Path = setting(Path("/tmp/o"), env="RPMFLOW_X_OUTBOX", help="outbox file")
    ca_file: Path | None = setting(None, env="RPMFLOW_X_CA_FILE", help="CA file")
    devices: tuple[str, ...] = setting((), env="RPMFLOW_X_DEVICES", help="allow-list")
    backend: Literal["bleak", "sim"] = setting("bleak", env="RPMFLOW_X_BACKEND", help="radio")
    internal: int = setting(3, env="RPMFLOW_X_INTERNAL", flag=False, help="no flag")

    def validate(self) -> None:
        if self.batch_size > 1000 and self.shared:
            raise SettingError("batch_size", "must be at most 1000 with a shared subscription")


BASE = {"RPMFLOW_DATABASE_URL": "postgresql://db", "RPMFLOW_MQTT_URL": "mqtt://b"}


def test_defaults_and_fallback_variable() -> None:
    s = load(Sample, BASE)
    assert s == Sample(database_url="postgresql://db", mqtt_url="mqtt://b")
    assert s.batch_size == 500 and s.ca_file is None and s.devices == ()


def test_each_type_is_parsed_from_the_environment() -> None:
    s = load(Sample, {**BASE, "RPMFLOW_X_MQTT_URL": "mqtt://own", "RPMFLOW_X_BATCH_SIZE": " 7 ",
                      "RPMFLOW_X_WAIT_S": "0.25", "RPMFLOW_X_SHARED": "Yes", "RPMFLOW_X_OUTBOX": "/a/b",
                      "RPMFLOW_X_CA_FILE": "/ca.pem", "RPMFLOW_X_DEVICES": "a, b,,c",
                      "RPMFLOW_X_BACKEND": "sim", "RPMFLOW_X_INTERNAL": "9"})
    assert (s.mqtt_url, s.batch_size, s.wait_s, s.shared) == ("mqtt://own", 7, 0.25, True)
    assert (s.outbox, s.ca_file, s.devices, s.backend, s.internal) == (
        Path("/a/b"), Path("/ca.pem"), ("a", "b", "c"), "sim", 9)


def test_empty_variable_counts_as_unset() -> None:
    assert load(Sample, {**BASE, "RPMFLOW_X_BATCH_SIZE": ""}).batch_size == 500


REQUIRED_DB = "configuration error: RPMFLOW_DATABASE_URL (flag --database-url): required"
FLAG_NAMES = {"BATCH_SIZE": "--batch-size", "WAIT_S": "--wait", "SHARED": "--shared", "BACKEND": "--backend"}


def _where(key: str) -> str:
    return f"RPMFLOW_X_{key} (flag {FLAG_NAMES[key]}): "


@pytest.mark.parametrize(("env", "message"), [
    ({"RPMFLOW_MQTT_URL": "mqtt://b"}, REQUIRED_DB),
    ({"RPMFLOW_DATABASE_URL": "x"},
     "RPMFLOW_X_MQTT_URL (flag --mqtt-url): required (RPMFLOW_X_MQTT_URL or RPMFLOW_MQTT_URL)"),
    ({**BASE, "RPMFLOW_X_BATCH_SIZE": "many"}, _where("BATCH_SIZE") + "not a whole number: 'many'"),
    ({**BASE, "RPMFLOW_X_BATCH_SIZE": "0"}, _where("BATCH_SIZE") + "must be at least 1, got 0"),
    ({**BASE, "RPMFLOW_X_WAIT_S": "nan"}, _where("WAIT_S") + "not a finite number: 'nan'"),
    ({**BASE, "RPMFLOW_X_SHARED": "maybe"}, _where("SHARED") + "must be true or false (got 'maybe')"),
    ({**BASE, "RPMFLOW_X_BACKEND": "usb"}, _where("BACKEND") + "must be one of bleak, sim, got 'usb'"),
    ({**BASE, "RPMFLOW_X_INTERNAL": "x"}, "RPMFLOW_X_INTERNAL: not a whole number: 'x'"),
    ({**BASE, "RPMFLOW_X_SHARED": "1", "RPMFLOW_X_BATCH_SIZE": "2000"},
     _where("BATCH_SIZE") + "must be at most 1000 with a shared subscription"),
])
def test_errors_name_the_variable_and_the_flag(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingError) as info:
        load(Sample, env)
    assert message in str(info.value)
    assert "\n" not in str(info.value)
    assert info.value.exit_code == 2


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="x")
    add_flags(parser, Sample)
    return parser.parse_args(argv)


def test_flags_override_the_environment_and_required_values_may_come_from_flags() -> None:
    args = _parse(["--database-url", "postgresql://flag", "--mqtt-url", "mqtt://flag", "--wait", "3",
                   "--shared", "--devices", "x,y"])
    s = load(Sample, {"RPMFLOW_X_WAIT_S": "1", "RPMFLOW_X_SHARED": "false"}, args)
    assert (s.database_url, s.mqtt_url, s.wait_s, s.shared, s.devices) == (
        "postgresql://flag", "mqtt://flag", 3.0, True, ("x", "y"))
    no = load(Sample, {**BASE, "RPMFLOW_X_SHARED": "true"}, _parse(["--no-shared"]))
    assert no.shared is False


def test_a_bad_flag_value_gets_the_same_one_line_error() -> None:
    with pytest.raises(SettingError, match=r"RPMFLOW_X_BATCH_SIZE \(flag --batch-size\): not a whole number"):
        load(Sample, BASE, _parse(["--batch-size", "ten"]))


def test_help_shows_the_dataclass_defaults_and_the_variables() -> None:
    parser = argparse.ArgumentParser(prog="x")
    add_flags(parser, Sample)
    text = " ".join(parser.format_help().split())
    for env, flag, default, _meaning in table(Sample):
        if flag:
            assert flag in text
            assert f"env {env}; default {default}" in text
    assert "--internal" not in text
    assert "default 500" in text and "default 1.5" in text and "default required" in text


def test_replace_validates_and_ignores_none() -> None:
    s = load(Sample, BASE)
    assert replace(s, batch_size=None, wait_s=2.0).wait_s == 2.0
    with pytest.raises(SettingError, match="RPMFLOW_X_BATCH_SIZE"):
        replace(s, shared=True, batch_size=5000)
