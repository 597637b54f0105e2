"""The gateway's bleak backend, unchanged, against the BlueZ double over a real dbus-daemon."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gateway.ble_link import SERVICE_BLOOD_PRESSURE, SERVICE_GLUCOSE, BleakRadio
from gateway.outbox import Outbox
from simulators.bluez import BluezDouble
from simulators.devices import build_devices
from tests.gateway.bluez.helpers import EPOCH, SCAN_S, ZONE, collector, payloads, sessions

pytestmark = pytest.mark.bluez


def test_discovery_filters_by_service_and_reports_name_and_rssi(bus_address: str) -> None:
    devices = build_devices("bp:BP-1,glucose:GL-1", "normal", seed=2, tz=ZONE, epoch=EPOCH)

    async def scenario() -> tuple[set[str], set[str], bool]:
        async with BluezDouble(bus_address, devices):
            radio = BleakRadio()
            cuffs = await radio.scan([SERVICE_BLOOD_PRESSURE], SCAN_S)
            both = await radio.scan([SERVICE_BLOOD_PRESSURE, SERVICE_GLUCOSE], SCAN_S)
            return ({f"{a.address}/{a.name}/{a.service_uuids}" for a in cuffs},
                    {a.address for a in both}, all(a.rssi is not None for a in both))
        raise AssertionError("unreachable")

    cuffs, both, rssi = asyncio.run(scenario())
    bp, gl = devices
    assert cuffs == {f"{bp.address}/{bp.model}/{(SERVICE_BLOOD_PRESSURE,)}"}
    assert both == {bp.address, gl.address} and rssi


def test_connect_download_and_incremental_racp(bus_address: str, tmp_path: Path) -> None:
    devices = build_devices("bp:BP-1,glucose:GL-1", "normal", seed=2, tz=ZONE, epoch=EPOCH)
    meter = devices[1]

    async def scenario(ob: Outbox) -> tuple[int, int, int]:
        async with BluezDouble(bus_address, devices):
            c = collector(ob)
            await c.radio.scan([SERVICE_BLOOD_PRESSURE, SERVICE_GLUCOSE], SCAN_S)
            first = await sessions(c, [d.address for d in devices], 1)
            assert all(not isinstance(r, Exception) for r in first), first
            before = len(payloads(ob))
            meter.store(123.0, when=EPOCH)  # type: ignore[attr-defined]
            again = await sessions(c, [meter.address], 1)
            return before, len(payloads(ob)), again[0].committed  # type: ignore[union-attr]

    with Outbox(tmp_path / "o.sqlite3", 100) as ob:
        before, after, committed = asyncio.run(scenario(ob))
        expected = sum(1 for d in devices for r in d.produced if r.kind in ("blood_pressure", "glucose"))
        assert before == expected - 1 and after == expected and committed == 1
        seqs = [p["sequence_number"] for p in payloads(ob) if p.get("sequence_number") is not None]
        assert len(seqs) == len(set(seqs))
