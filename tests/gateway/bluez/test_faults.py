"""Faults BlueZ and the radio produce, injected by the double; the bleak backend must recover.

Each test ends with what matters: every stored reading published exactly once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.ble_link import SERVICE_BLOOD_PRESSURE, SERVICE_GLUCOSE, BleakRadio
from gateway.collector import Collector, SessionResult
from gateway.errors import AdapterOff, DeviceUnavailable, PairingNeeded
from gateway.outbox import Outbox
from simulators.bluez import BluezDouble
from simulators.devices import build_devices
from simulators.devices.radio import SimDevice
from tests.gateway.bluez.helpers import EPOCH, SCAN_S, ZONE, collector, payloads, sessions
from tests.waiting import wait_for_async

pytestmark = pytest.mark.bluez

KINDS = ("blood_pressure", "glucose")
Body = Callable[[BluezDouble, Collector], Awaitable[Any]]


def _run(bus: str, tmp_path: Path, spec: str, scenario: str,
         body: Body) -> tuple[list[SimDevice], Outbox, Any]:
    devices = build_devices(spec, scenario, seed=3, tz=ZONE, epoch=EPOCH)

    async def main(ob: Outbox) -> Any:
        async with BluezDouble(bus, devices) as bluez:
            c = collector(ob)
            await c.radio.scan([SERVICE_BLOOD_PRESSURE, SERVICE_GLUCOSE], SCAN_S)
            return await body(bluez, c)

    ob = Outbox(tmp_path / "o.sqlite3", 100)
    return devices, ob, asyncio.run(main(ob))


def _exactly_once(devices: list[SimDevice], ob: Outbox) -> None:
    """Every valid stored reading reached the outbox, none twice (by the device's own identity)."""
    got = payloads(ob)
    expected = sum(1 for d in devices for r in d.produced if r.kind in KINDS)
    keys = [(p["device"]["serial"], p.get("sequence_number"), p["measured_at"]) for p in got]
    assert len(keys) == len(set(keys)) == expected, (len(keys), len(set(keys)), expected)


def test_disconnect_mid_racp_download_resumes_without_loss(bus_address: str, tmp_path: Path) -> None:
    async def body(bluez: BluezDouble, c: Collector) -> list[SessionResult | Exception]:
        bluez.faults.drop_after_notifications = 3  # the meter goes away with records still to send
        meter = bluez.peripherals[0].device
        return await sessions(c, [meter.address], 3)

    devices, ob, results = _run(bus_address, tmp_path, "glucose:GL-1", "normal", body)
    with ob:
        assert (isinstance(results[0], DeviceUnavailable) and "disconnect" in str(results[0]).lower()) \
            or isinstance(results[0], DeviceUnavailable), results[0]
        assert all(isinstance(r, SessionResult) for r in results[1:]), results
        _exactly_once(devices, ob)


def test_faults_scenario_drops_duplicates_and_clock_are_handled(bus_address: str, tmp_path: Path) -> None:
    """The simulator's own faults (kPa cuff indicating twice, dropping after two; meter dropping
    mid-RACP; clocks minutes off) through BlueZ: the same outcome as on the sim backend."""
    async def body(bluez: BluezDouble, c: Collector) -> list[SessionResult | Exception]:
        return await sessions(c, [p.device.address for p in bluez.peripherals], 4)

    devices, ob, results = _run(bus_address, tmp_path, "bp:BP-1,glucose:GL-1", "faults", body)
    with ob:
        assert any(isinstance(r, DeviceUnavailable) for r in results)
        assert any(isinstance(r, SessionResult) and r.clock_set for r in results)
        writable = [d for d in devices if d.cts_writable]
        assert writable and all(abs(d.clock_drift_s) < 5 for d in writable)
        _exactly_once(devices, ob)
        meals = {p["values"].get("meal") for p in payloads(ob) if p["kind"] == "glucose"}
        assert "preprandial" in meals  # the context record was paired with its measurement


@pytest.mark.parametrize("error", ["InProgress", "Failed"])
def test_connect_refused_once_then_retried(bus_address: str, tmp_path: Path, error: str) -> None:
    async def body(bluez: BluezDouble, c: Collector) -> tuple[list[SessionResult | Exception], int]:
        bluez.faults.connect = [error]
        out = await sessions(c, [bluez.peripherals[0].device.address], 1)
        return out, bluez.calls["connect"]

    devices, ob, (results, connects) = _run(bus_address, tmp_path, "bp:BP-1", "normal", body)
    with ob:
        assert isinstance(results[0], SessionResult) and connects == 2
        _exactly_once(devices, ob)


@pytest.mark.parametrize("fault", ["AuthenticationFailed", "NotPermitted", "gatt-not-paired"])
def test_pairing_needed_is_typed_not_retried_and_works_once_paired(
        bus_address: str, tmp_path: Path, fault: str) -> None:
    async def body(bluez: BluezDouble, c: Collector) -> tuple[list[SessionResult | Exception], int]:
        p = bluez.peripherals[0]
        if fault == "gatt-not-paired":
            bluez.faults.pairing_required = True
        else:
            bluez.faults.connect = [fault]
        first = await sessions(c, [p.device.address], 1)
        connects = bluez.calls["connect"]
        p.iface.set(Paired=True, Bonded=True)  # the operator ran `bluetoothctl pair` (docs/gateway.md)
        return first + await sessions(c, [p.device.address], 1), connects

    devices, ob, (results, connects) = _run(bus_address, tmp_path, "bp:BP-1", "normal", body)
    with ob:
        assert isinstance(results[0], PairingNeeded), results[0]
        assert "bluetoothctl" in str(results[0]) and connects == 1  # no retry storm against the device
        assert isinstance(results[1], SessionResult)
        _exactly_once(devices, ob)


async def _adapter_seen_powered() -> None:
    """Wait until bleak's BlueZ manager has had the Powered change (a signal on its own bus)."""
    from bleak.backends.bluezdbus.manager import get_global_bluez_manager
    from bleak.exc import BleakBluetoothNotAvailableError

    manager = await get_global_bluez_manager()

    def powered() -> bool:
        try:
            return bool(manager.get_default_adapter())
        except BleakBluetoothNotAvailableError:
            return False

    await wait_for_async(powered, 5.0, "bleak to see the adapter powered on")


def test_adapter_powers_off_mid_download_then_back(bus_address: str, tmp_path: Path) -> None:
    async def body(bluez: BluezDouble, c: Collector) -> tuple[list[Any], type[Exception] | None]:
        bluez.faults.power_off_after_notifications = 2
        address = bluez.peripherals[0].device.address
        first = await sessions(c, [address], 1)
        off: type[Exception] | None = None
        try:
            await c.radio.scan([SERVICE_GLUCOSE], SCAN_S)
        except AdapterOff as exc:
            off = type(exc)
        bluez.set_powered(True)
        await _adapter_seen_powered()
        await c.radio.scan([SERVICE_GLUCOSE], SCAN_S)
        return first + await sessions(c, [address], 2), off

    devices, ob, (results, off) = _run(bus_address, tmp_path, "glucose:GL-1", "normal", body)
    with ob:
        assert isinstance(results[0], DeviceUnavailable) and off is AdapterOff
        assert all(isinstance(r, SessionResult) for r in results[1:])
        _exactly_once(devices, ob)


def test_services_resolving_late_and_a_notification_storm(bus_address: str, tmp_path: Path) -> None:
    async def body(bluez: BluezDouble, c: Collector) -> list[SessionResult | Exception]:
        bluez.faults.services_delay_s = 0.4
        bluez.faults.storm = 5  # every indication arrives 5 times
        return await sessions(c, [p.device.address for p in bluez.peripherals], 2)

    devices, ob, results = _run(bus_address, tmp_path, "bp:BP-1,glucose:GL-1", "normal", body)
    with ob:
        assert all(isinstance(r, SessionResult) for r in results), results
        assert sum(r.duplicates for r in results if isinstance(r, SessionResult)) > 0
        _exactly_once(devices, ob)


def test_discovery_in_progress_is_transient(bus_address: str, tmp_path: Path) -> None:
    async def body(bluez: BluezDouble, c: Collector) -> tuple[str, int]:
        bluez.faults.start_discovery = ["InProgress"]
        radio = BleakRadio()
        try:
            await radio.scan([SERVICE_GLUCOSE], SCAN_S)
        except ConnectionError as exc:
            return str(exc), len(await radio.scan([SERVICE_GLUCOSE], SCAN_S))
        raise AssertionError("StartDiscovery InProgress was swallowed")

    _, ob, (error, found) = _run(bus_address, tmp_path, "glucose:GL-1", "normal", body)
    with ob:
        assert "org.bluez.Error.InProgress" in error and found == 1
