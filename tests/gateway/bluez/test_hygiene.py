"""Resource hygiene of the bleak backend: 1000 sessions leave no D-Bus match rule, connection,
asyncio task or file descriptor behind (asked of the bus daemon itself via Debug.Stats)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest
from dbus_fast import Message
from dbus_fast.aio import MessageBus

import gateway.collector
from gateway.ble_link import SERVICE_BLOOD_PRESSURE
from gateway.collector import SessionResult
from gateway.outbox import Outbox
from simulators.bluez import BluezDouble
from simulators.devices import build_devices
from tests.gateway.bluez.helpers import EPOCH, SCAN_S, ZONE, collector

pytestmark = pytest.mark.bluez

SESSIONS = 1000


async def _bus_stats(address: str) -> dict[str, Any]:
    bus = await MessageBus(bus_address=address).connect()
    try:
        reply = await bus.call(Message(destination="org.freedesktop.DBus", path="/org/freedesktop/DBus",
                                       interface="org.freedesktop.DBus.Debug.Stats", member="GetStats"))
        assert reply is not None and reply.error_name is None, reply
        return {k: v.value for k, v in reply.body[0].items()}
    finally:
        bus.disconnect()


def _snapshot(stats: dict[str, Any]) -> tuple[int, int, int, int]:
    return (stats["MatchRules"], stats["ActiveConnections"], len(asyncio.all_tasks()),
            len(os.listdir("/proc/self/fd")))


def test_a_thousand_sessions_leak_nothing(bus_address: str, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    # the session re-checks its idle deadline every tick; a short tick keeps 1000 sessions under a minute
    monkeypatch.setattr(gateway.collector, "FRAME_TICK_S", 0.002)
    devices = build_devices("bp:H-BP-1", "normal", seed=4, tz=ZONE, epoch=EPOCH)

    async def scenario(ob: Outbox) -> tuple[tuple[int, ...], tuple[int, ...], int]:
        async with BluezDouble(bus_address, devices):
            c = collector(ob)
            c.config = type(c.config)(**{**c.config.__dict__, "session_idle_s": 0.0})
            await c.radio.scan([SERVICE_BLOOD_PRESSURE], SCAN_S)
            address = devices[0].address
            ok = 0
            for i in range(SESSIONS):
                if i == 5:  # after bleak's one-off set-up (its BlueZ manager, version check)
                    before = _snapshot(await _bus_stats(bus_address))
                ok += isinstance(await c.session(address), SessionResult)
            return before, _snapshot(await _bus_stats(bus_address)), ok

    with Outbox(tmp_path / "o.sqlite3", 100) as ob:
        before, after, ok = asyncio.run(scenario(ob))
    assert ok == SESSIONS and devices[0].connections == SESSIONS
    what = f"(match rules, bus connections, tasks, fds): {before} → {after}"
    # fds may only shrink: an earlier test's sockets can be garbage-collected meanwhile
    assert after[:3] == before[:3] and after[3] <= before[3], what
