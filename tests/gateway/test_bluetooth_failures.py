"""The bleak backend on a machine whose Bluetooth stack is missing or refuses: one line naming the fix.

The mapping is tested on real bleak / dbus-fast / OS exception objects; the no-bus and no-BlueZ
cases run the real console script against a socket that does not exist and against a private
``dbus-daemon`` with nothing on it.
"""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from bleak.exc import (
    BleakBluetoothNotAvailableError,
    BleakBluetoothNotAvailableReason,
    BleakCharacteristicNotFoundError,
    BleakDBusError,
    BleakError,
    BleakGATTProtocolError,
)
from dbus_fast.errors import InvalidAddressError

from gateway.ble_link import map_bleak_error
from gateway.errors import (
    AdapterOff,
    BluetoothPermissionDenied,
    BlueZNotRunning,
    DeviceUnavailable,
    GatewayError,
    NoAdapter,
    NoSystemBus,
    PairingNeeded,
    StateDirUnusable,
    TerminalError,
    TransientError,
)
from gateway.outbox import Outbox
from gateway.service import GatewayService
from gateway.settings import Settings
from gateway.state_dir import prepare_state_dir
from simulators.embedded_mosquitto import EmbeddedMosquitto
from tests.gateway.private_bus import private_bus

R = BleakBluetoothNotAvailableReason

HOST_CASES: list[tuple[BaseException, type[GatewayError], str]] = [
    (FileNotFoundError(2, "No such file or directory"), NoSystemBus, "apt-get install dbus"),
    (ConnectionRefusedError(111, "Connection refused"), NoSystemBus, "systemctl start dbus"),
    (InvalidAddressError("address did not contain a transport"), NoSystemBus, "DBUS_SYSTEM_BUS_ADDRESS"),
    (BleakDBusError("org.freedesktop.DBus.Error.ServiceUnknown",
                    ["The name org.bluez was not provided by any .service files"]),
     BlueZNotRunning, "systemctl enable --now bluetooth"),
    (BleakDBusError("org.freedesktop.DBus.Error.AccessDenied", ["Rejected send message"]),
     BluetoothPermissionDenied, "usermod -aG bluetooth rpmflow"),
    (PermissionError(13, "Permission denied"), BluetoothPermissionDenied, "bluetooth group"),
    (BleakBluetoothNotAvailableError("denied", R.DENIED_BY_SYSTEM), BluetoothPermissionDenied,
     "bluetooth group"),
    (BleakBluetoothNotAvailableError("No Bluetooth adapters found.", R.NO_BLUETOOTH), NoAdapter,
     "bluetoothctl list"),
    (BleakError("adapter 'hci1' not found"), NoAdapter, "bluetoothctl list"),
    (BleakBluetoothNotAvailableError("No powered Bluetooth adapters found.", R.POWERED_OFF), AdapterOff,
     "bluetoothctl power on"),
    (BleakDBusError("org.bluez.Error.NotReady", ["Resource Not Ready"]), AdapterOff, "bluetoothctl power on"),
    (BleakDBusError("org.bluez.Error.Failed", ["Blocked through rfkill"]), AdapterOff, "rfkill unblock"),
]


@pytest.mark.parametrize(("exc", "expected", "fix"), HOST_CASES,
                         ids=[type(c[0]).__name__ + "-" + c[1].__name__ for c in HOST_CASES])
def test_host_failures_become_one_line_naming_the_fix(exc: BaseException, expected: type[GatewayError],
                                                      fix: str) -> None:
    mapped = map_bleak_error(exc, "scan")
    assert type(mapped) is expected
    text = str(mapped)
    assert fix in text and "\n" not in text
    # only a powered-off / blocked adapter may come back by itself
    assert isinstance(mapped, TransientError) == (expected is AdapterOff)
    assert isinstance(mapped, TerminalError) == (expected is not AdapterOff)


@pytest.mark.parametrize("exc", [
    BleakDBusError("org.bluez.Error.AuthenticationFailed", []),
    BleakDBusError("org.bluez.Error.NotPermitted", ["Read not permitted"]),
    BleakGATTProtocolError(0x05),
    BleakGATTProtocolError(0x0F),
])
def test_pairing_needed_names_the_device_and_bluetoothctl(exc: BaseException) -> None:
    mapped = map_bleak_error(exc, "read 0x2A18", "C8:4F:86:00:01:23")
    assert isinstance(mapped, PairingNeeded) and isinstance(mapped, DeviceUnavailable)
    assert "C8:4F:86:00:01:23" in str(mapped) and "bluetoothctl" in str(mapped)
    assert isinstance(mapped, TransientError)  # per device: the service goes on with the others


@pytest.mark.parametrize(("exc", "expected"), [
    (BleakCharacteristicNotFoundError(0x2A18), LookupError),
    (BleakGATTProtocolError(0x80), OSError),
    (BleakError("failed to discover services, device disconnected"), ConnectionError),
    (BleakDBusError("org.bluez.Error.InProgress", ["Operation already in progress"]), ConnectionError),
    (EOFError(), ConnectionError),
    (TimeoutError(), TimeoutError),
])
def test_device_failures_keep_the_seams_builtin_classes(exc: BaseException,
                                                        expected: type[Exception]) -> None:
    mapped = map_bleak_error(exc, "connect C8:4F:86:00:01:23", "C8:4F:86:00:01:23")
    assert type(mapped) is expected


def test_unrelated_exceptions_are_left_alone() -> None:
    assert map_bleak_error(ValueError("a bug"), "scan") is None


# -- the real console script -------------------------------------------------------------------

def _run_gateway(env: dict[str, str], broker: EmbeddedMosquitto, gateway_id: str,
                 outbox: Path) -> subprocess.CompletedProcess[str]:
    script = str(Path(sys.executable).parent / "rpmflow-gateway")
    environ = {k: v for k, v in os.environ.items() if not k.startswith("RPMFLOW_")}
    environ.update({"RPMFLOW_GATEWAY_ID": gateway_id, "RPMFLOW_GATEWAY_MQTT_URL": broker.url_for(gateway_id),
                    "RPMFLOW_GATEWAY_OUTBOX": str(outbox), **env})
    return subprocess.run([script, "run", "--backend", "bleak", "--scan-interval", "1"], env=environ,
                          capture_output=True, text=True, timeout=60, check=False)


def _fatal_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 4, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("rpmflow-gateway: "), proc.stderr
    return last


def test_no_system_bus_one_line_and_exit_4(broker: EmbeddedMosquitto, gateway_id: str,
                                           tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dir" / "system_bus_socket"
    outbox = tmp_path / "state" / "gw" / "outbox.sqlite3"
    proc = _run_gateway({"DBUS_SYSTEM_BUS_ADDRESS": f"unix:path={missing}"}, broker, gateway_id, outbox)
    line = _fatal_line(proc)
    assert line.startswith(f"rpmflow-gateway: no D-Bus system bus (unix:path={missing}: No such file")
    assert "apt-get install dbus" in line and "scan failed" not in proc.stderr
    # the state directory was created private to this user before the radio was touched
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700
    assert stat.S_IMODE(outbox.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(outbox.stat().st_mode) == 0o600


def test_bus_without_bluez_one_line_and_exit_4(broker: EmbeddedMosquitto, gateway_id: str,
                                               tmp_path: Path) -> None:
    with private_bus(tmp_path / "bus") as address:
        proc = _run_gateway({"DBUS_SYSTEM_BUS_ADDRESS": address}, broker, gateway_id, tmp_path / "o.sqlite3")
    line = _fatal_line(proc)
    assert line.startswith("rpmflow-gateway: BlueZ is not running on the D-Bus system bus (scan: "
                           "org.freedesktop.DBus.Error.ServiceUnknown")
    assert line.endswith("install and start it: apt-get install bluez; systemctl enable --now bluetooth")


def test_unusable_state_directory_one_line_and_exit_4(broker: EmbeddedMosquitto, gateway_id: str,
                                                      tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    proc = _run_gateway({}, broker, gateway_id, tmp_path / "a-file" / "outbox.sqlite3")
    line = _fatal_line(proc)
    assert line.startswith(f"rpmflow-gateway: outbox directory {tmp_path / 'a-file'}: ")
    assert "install -d -o rpmflow" in line


def test_existing_state_directory_is_left_as_the_operator_made_it(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o750)
    os.chmod(shared, 0o750)  # noqa: S103 - a directory an operator shared on purpose
    prepare_state_dir(shared / "outbox.sqlite3")
    assert stat.S_IMODE(shared.stat().st_mode) == 0o750
    assert stat.S_IMODE((shared / "outbox.sqlite3").stat().st_mode) == 0o600
    with pytest.raises(StateDirUnusable):
        prepare_state_dir(shared / "outbox.sqlite3" / "nested" / "outbox.sqlite3")


# -- adapter off: the service keeps going, with back-off ---------------------------------------

class _Radio:
    """A radio whose adapter is off, then missing (the seam is the only thing simulated)."""

    def __init__(self, failures: list[Exception]) -> None:
        self.failures = failures

    async def scan(self, service_uuids: Any, timeout: float) -> list[Any]:
        raise self.failures.pop(0)

    async def connect(self, address: str, on_disconnect: Any = None, timeout: float = 30.0) -> Any:
        raise ConnectionError(address)


def test_adapter_off_backs_off_and_a_missing_adapter_stops_the_service(
        broker: EmbeddedMosquitto, gateway_id: str, tmp_path: Path) -> None:
    settings = Settings(gateway_id=gateway_id, mqtt_url=broker.url_for(gateway_id),
                        outbox_path=tmp_path / "o.sqlite3", backend="bleak")
    radio = _Radio([AdapterOff("scan: org.bluez.Error.NotReady"), AdapterOff("again"),
                    NoAdapter("scan: No Bluetooth adapters found.")])
    service = GatewayService(settings, radio=radio)

    async def scans(outbox: Outbox) -> list[float]:
        collector = service._collector(outbox)
        delays = [await service._scan_once(collector, 0.0), await service._scan_once(collector, 0.0)]
        with pytest.raises(NoAdapter):
            await service._scan_once(collector, 0.0)
        return delays

    with Outbox(settings.outbox_path, 10) as outbox:
        first, second = asyncio.run(scans(outbox))
    assert 0.0 <= first < 5.0 and 0.0 <= second < 10.0  # full jitter under a doubling ceiling
    assert not radio.failures
