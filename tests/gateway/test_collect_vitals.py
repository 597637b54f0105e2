"""Collection sessions against simulated scales and oximeters (the BLE seam is the only fake)."""

from __future__ import annotations

import asyncio
import json
import statistics
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from gateway.collector import Collector, CollectorConfig, SessionResult
from gateway.outbox import Outbox
from gateway.settings import Settings
from simulators.devices import SimulatedRadio, build_radio
from simulators.devices.pulse_oximeter import PulseOximeter
from simulators.embedded_mosquitto import EmbeddedMosquitto
from tests.gateway.service_runner import running
from tests.waiting import wait_for

EPOCH = datetime(2026, 3, 15, 12, 0)
ZONE = "Europe/Paris"


def _collector(radio: SimulatedRadio, outbox: Outbox, **kw: Any) -> Collector:
    config = CollectorConfig("gw-test", ZoneInfo(ZONE), session_idle_s=0.3, racp_timeout_s=3, **kw)
    return Collector(radio, outbox, config)


def _session(collector: Collector, radio: SimulatedRadio) -> list[SessionResult]:
    return [asyncio.run(collector.session(d.address)) for d in radio.devices]


def _payloads(outbox: Outbox) -> list[dict[str, Any]]:
    return [json.loads(r.payload) for r in outbox.rows() if r.state != "rejected"]


def test_scale_weighings_in_pounds_arrive_in_kg_with_the_pound_value_kept(tmp_path: Path) -> None:
    radio = build_radio("scale:WS-1", "faults", seed=3, tz=ZONE, epoch=EPOCH)
    scale = radio.devices[0]
    with Outbox(tmp_path / "o.sqlite3", 100) as ob:
        (result,) = _session(_collector(radio, ob), radio)
        readings = _payloads(ob)
        assert {r["raw"] for r in readings} == {r.raw.hex() for r in scale.produced if r.kind == "weight"}
        assert result.committed == 3 and result.rejected == 1
        ok = [r for r in readings if r["measurement"] == "ok"]
        failed = [r for r in readings if r["measurement"] == "failed"]
        assert len(ok) == 2 and len(failed) == 1
        assert failed[0]["values"] == {"weight_kg": None, "bmi": None, "height_m": None}
        for r in ok:
            assert r["kind"] == "weight" and r["original"]["unit"] == "lb"
            assert abs(r["values"]["weight_kg"] - r["original"]["weight"] * 0.45359237) < 1e-9
        truths = sorted(r.truth["weight_kg"] for r in scale.produced if r.truth and r.truth["weight_kg"])
        assert [round(x, 1) for x in truths] == sorted(round(r["values"]["weight_kg"], 1) for r in ok)
        rejected = ob.rows("rejected")
        assert len(rejected) == 1 and "0c983a01f500" in rejected[0].payload


def test_oximeter_spot_checks_once_each_across_sessions_and_continuous_is_summarised(tmp_path: Path) -> None:
    radio = build_radio("oximeter:OX-1", "normal", seed=3, tz=ZONE, epoch=EPOCH)
    ox = radio.devices[0]
    with Outbox(tmp_path / "o.sqlite3", 100) as ob:
        collector = _collector(radio, ob)
        _session(collector, radio)
        _session(collector, radio)  # the device re-sends every stored record: nothing published twice
        readings = _payloads(ob)
        spots = [r for r in readings if r["values"]["sample_count"] is None]
        summaries = [r for r in readings if r["values"]["sample_count"] is not None]
        assert sorted(r["raw"] for r in spots) == sorted(r.raw.hex() for r in ox.produced if r.kind == "spo2")
        assert all("data_from_measurement_storage" in r["status"] for r in spots)
        samples = [r.truth for r in ox.produced if r.kind == "spo2_sample" and r.truth]
        assert sum(r["values"]["sample_count"] for r in summaries) == len(samples) == 30
        assert 1 <= len(summaries) <= 2  # 30 samples in ~0.2 s: one window, two across a minute edge
        all_spo2 = [s["spo2_pct"] for s in samples]
        assert min(r["values"]["spo2_min_pct"] for r in summaries) == min(all_spo2)
        if len(summaries) == 1:
            assert summaries[0]["values"]["spo2_pct"] == statistics.median(all_spo2)


def test_oximeter_faults_clock_not_set_demo_data_finger_out(tmp_path: Path) -> None:
    radio = build_radio("oximeter:OX-1", "faults", seed=3, tz=ZONE, epoch=EPOCH)
    with Outbox(tmp_path / "o.sqlite3", 100) as ob:
        started = datetime.now(UTC)
        (result,) = _session(_collector(radio, ob), radio)
        readings = _payloads(ob)
        spots = [r for r in readings if r["values"]["sample_count"] is None]
        assert result.not_published == 1  # demonstration data
        assert len(spots) == 2
        for r in spots:
            assert r["device_time"] is None and "device_clock_not_set" in r["status"]
            assert datetime.fromisoformat(r["measured_at"]) >= started.replace(microsecond=0)
        finger_out = [r for r in spots if r["measurement"] == "failed"]
        assert len(finger_out) == 1 and finger_out[0]["values"]["spo2_pct"] is None
        summaries = [r for r in readings if r["values"]["sample_count"] is not None]
        assert sum(r["values"]["sample_count"] for r in summaries) == 15  # 5 finger-out samples left out
        rejected = ob.rows("rejected")
        assert len(rejected) == 1 and "device_and_sensor_status" in (rejected[0].reason or "")


def test_a_streaming_oximeter_keeps_its_open_window_at_shutdown(
    broker: EmbeddedMosquitto, gateway_id: str, tmp_path: Path
) -> None:
    """A continuous stream never goes quiet; at shutdown the open window is stored, not dropped."""
    radio = build_radio("oximeter:OX-S", "normal", seed=3, tz=ZONE, epoch=EPOCH)
    ox = radio.devices[0]
    assert isinstance(ox, PulseOximeter)
    ox.records.clear()
    for _ in range(20_000):  # far more than the test lasts (5 ms apart)
        ox.queue_continuous(95.0, 60.0)
    settings = Settings(gateway_id=gateway_id, mqtt_url=broker.url_for(gateway_id),
                        outbox_path=tmp_path / "o.sqlite3", backend="sim", tz=ZONE, scan_interval_s=0.3,
                        session_idle_s=0.3, racp_timeout_s=5, oximetry_window_s=3600)
    with running(settings, radio):
        wait_for(lambda: sum(r.delivered for r in ox.produced) >= 100, 30, "the stream to flow")
        before_stop = sum(r.delivered for r in ox.produced)
    with Outbox(settings.outbox_path, 100) as ob:
        readings = [json.loads(r.payload) for r in ob.rows() if r.state != "rejected"]
    summaries = [r for r in readings if r["values"]["sample_count"] is not None]
    assert len(summaries) == 1, "one hour-long window, stored when the gateway stopped"
    count = summaries[0]["values"]["sample_count"]
    assert before_stop <= count <= sum(r.delivered for r in ox.produced)
