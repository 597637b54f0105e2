"""The gateway error tree: every class is exactly one of transient / terminal, and pickles."""

from __future__ import annotations

import pickle

import pytest

from gateway import errors
from gateway.errors import (
    AdapterOff,
    BluetoothPermissionDenied,
    BlueZNotRunning,
    BrokerUnavailable,
    ContextMismatch,
    DeviceUnavailable,
    GatewayError,
    ImpossibleValue,
    MalformedAck,
    MalformedMeasurement,
    NoAdapter,
    NoSystemBus,
    OutboxFull,
    PairingNeeded,
    ProcedureTimeout,
    RacpIncomplete,
    RacpRefused,
    SettingsError,
    StateDirUnusable,
    TerminalError,
    TransientError,
    UnknownDevice,
    is_transient,
)

INSTANCES: list[GatewayError] = [
    MalformedMeasurement("2A35", "too short", "1e"),
    ImpossibleValue("systolic", 350.0, "40..300 mmHg"),
    ContextMismatch(1, 2),
    RacpRefused(1, 2),
    RacpIncomplete(1, 8),
    UnknownDevice("dev-1"),
    SettingsError("RPMFLOW_MQTT_URL", "missing"),
    DeviceUnavailable("dev-1", "le-connection-abort-by-local"),
    ProcedureTimeout("dev-1", "racp", 30.0),
    BrokerUnavailable("connection refused"),
    MalformedAck("message_ids must be a list", '{"schema": "x"}'),
    OutboxFull(10_000),
    PairingNeeded("dev-1", "read 0x2A18: org.bluez.Error.AuthenticationFailed"),
    NoSystemBus("unix:path=/run/dbus/system_bus_socket: No such file or directory"),
    BlueZNotRunning("scan: org.freedesktop.DBus.Error.ServiceUnknown"),
    NoAdapter("scan: No Bluetooth adapters found."),
    BluetoothPermissionDenied("scan: org.freedesktop.DBus.Error.AccessDenied"),
    AdapterOff("scan: org.bluez.Error.NotReady"),
    StateDirUnusable("/var/lib/rpmflow-gateway", "Permission denied", "chown it"),
]
TRANSIENT = (RacpIncomplete, DeviceUnavailable, ProcedureTimeout, BrokerUnavailable, OutboxFull, AdapterOff)


@pytest.mark.parametrize("exc", INSTANCES, ids=lambda e: type(e).__name__)
def test_each_error_is_exactly_one_kind(exc: GatewayError) -> None:
    assert isinstance(exc, TransientError) != isinstance(exc, TerminalError)
    assert is_transient(exc) is isinstance(exc, TRANSIENT)
    assert str(exc)
    clone = pickle.loads(pickle.dumps(exc))  # noqa: S301 - our own object
    assert type(clone) is type(exc) and clone.args == exc.args


def test_every_public_class_is_covered() -> None:
    concrete = {
        name
        for name in errors.__all__
        if isinstance(getattr(errors, name), type)
        and name not in {"GatewayError", "TerminalError", "TransientError", "DecodeError", "RacpError",
                         "BluetoothUnavailable"}
    }
    assert concrete == {type(e).__name__ for e in INSTANCES}


def test_malformed_measurement_fields() -> None:
    exc = MalformedMeasurement("2A18", "too short: missing base_time", "0001")
    assert (exc.characteristic, exc.reason, exc.payload_hex) == (
        "2A18",
        "too short: missing base_time",
        "0001",
    )
    assert str(exc) == "2A18: too short: missing base_time (payload 0001)"
