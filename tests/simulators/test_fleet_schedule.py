"""The fleet stamps a reading when it publishes it, not when it was scheduled (plain values)."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime

from simulators.fleet import FleetConfig, _schedule, make_devices


def _received_at(payload: bytes) -> datetime:
    return datetime.fromisoformat(json.loads(payload)["received_at"].replace("Z", "+00:00"))


def test_a_reading_is_stamped_when_built_not_when_scheduled() -> None:
    config = FleetConfig(gateways=1, devices_per_gateway=2, count=2, seed=7)
    devices = make_devices(config, config.gateway_ids())
    scheduled = list(_schedule(config, devices, threading.Event()))  # what the pacing sleep follows
    before = datetime.now(UTC)
    stamps = [_received_at(build()[1]) for _, build in scheduled]
    assert [gw for gw, _ in scheduled] == config.gateway_ids() * 2
    assert all(stamp >= before for stamp in stamps), (before, stamps)


def test_backfill_keeps_its_measured_times_and_stamps_at_build() -> None:
    config = FleetConfig(gateways=1, devices_per_gateway=3, backfill_days=1, per_day=2, seed=3)
    devices = make_devices(config, config.gateway_ids())
    scheduled = list(_schedule(config, devices, threading.Event()))
    before = datetime.now(UTC)
    messages = [json.loads(build()[1]) for _, build in scheduled]
    assert len(messages) == 6
    assert len({m["message_id"] for m in messages}) == 6
    assert all(_received_at(json.dumps(m).encode()) >= before for m in messages)
    assert all(m["measured_at"] < m["received_at"] for m in messages)
