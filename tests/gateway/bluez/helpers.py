"""Shared steps of the BlueZ-double tests: a collector on the bleak radio, sessions, payloads."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from gateway.ble_link import BleakRadio
from gateway.collector import Collector, CollectorConfig, SessionResult
from gateway.errors import DeviceUnavailable
from gateway.outbox import Outbox

EPOCH = datetime(2026, 3, 15, 12, 0)
ZONE = "Europe/Paris"
SCAN_S = 0.2  # the double answers a discovery at once; bleak still listens this long


def collector(outbox: Outbox, radio: BleakRadio | None = None, **kw: Any) -> Collector:
    config = CollectorConfig("gw-bluez", ZoneInfo(ZONE), session_idle_s=0.3, context_timeout_s=0.5,
                             racp_timeout_s=3, **kw)
    return Collector(radio or BleakRadio(), outbox, config)


async def sessions(c: Collector, addresses: list[str], rounds: int) -> list[SessionResult | Exception]:
    """``rounds`` sessions per device; a device that fails gives its typed error instead."""
    out: list[SessionResult | Exception] = []
    for _ in range(rounds):
        for address in addresses:
            try:
                out.append(await c.session(address))
            except DeviceUnavailable as exc:
                out.append(exc)
    return out


def payloads(outbox: Outbox) -> list[dict[str, Any]]:
    return [json.loads(r.payload) for r in outbox.rows() if r.state != "rejected"]
