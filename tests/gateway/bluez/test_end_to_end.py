"""The gateway service on the bleak backend, through the BlueZ double, to the real broker."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from gateway.ble_link import BleakRadio
from gateway.settings import Settings
from simulators.bluez.runner import double_thread
from simulators.devices import build_devices
from simulators.embedded_mosquitto import EmbeddedMosquitto
from tests.gateway.observer import Acker, Observer
from tests.gateway.service_runner import running
from tests.waiting import wait_for

pytestmark = pytest.mark.bluez


def test_faults_scenario_over_bluez_arrives_once_each(
        bus_address: str, broker: EmbeddedMosquitto, gateway_id: str, tmp_path: Path) -> None:
    devices = build_devices("bp:Z-BP-1,glucose:Z-GL-1", "faults", seed=5, tz="America/New_York",
                            epoch=datetime(2026, 3, 15, 12, 0))
    settings = Settings(gateway_id=gateway_id, mqtt_url=broker.url_for(gateway_id),
                        outbox_path=tmp_path / "o.sqlite3", backend="bleak", tz="America/New_York",
                        scan_interval_s=0.3, session_idle_s=0.3, context_timeout_s=0.3, racp_timeout_s=5,
                        status_interval_s=5)
    observer, acker = Observer(broker, gateway_id), Acker(broker, gateway_id)
    try:
        wait_for(lambda: observer.subscribed.is_set() and acker.subscribed.is_set(), 10, "subscriptions")
        expected = {(d.serial, r.raw.hex()) for d in devices for r in d.produced
                    if r.kind in ("blood_pressure", "glucose")}
        with double_thread(bus_address, devices) as bluez, running(settings, BleakRadio()):  # type: ignore[arg-type]
            wait_for(lambda: expected <= observer.keys(), 45, f"all {len(expected)} measurements")
        assert sum(p.device.connections for p in bluez.peripherals) >= 3  # the drops forced reconnects
        ids: dict[tuple[str, str], set[str]] = {}
        for reading in list(observer.readings):
            ids.setdefault((reading["device"]["id"], reading["raw"].split("+")[0]), set()).add(
                reading["message_id"])
        assert set(ids) == expected and all(len(v) == 1 for v in ids.values())
    finally:
        acker.close()
        observer.close()
