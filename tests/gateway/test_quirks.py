"""Per-model quirks: pure functions with golden byte vectors, selection, and sessions on quirky simulators."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from gateway.collector import Collector, CollectorConfig, SessionResult
from gateway.gatt import merge_glucose_context, parse_blood_pressure_measurement, parse_glucose_measurement
from gateway.outbox import Outbox
from gateway.quirks import SPEC, beurer_bm85_frame, select, synthetic_sequence
from simulators.devices import BpCuff, GlucoseMeter, SimulatedRadio, build_radio
from simulators.devices.bp_cuff import encode_measurement as bp_bytes
from tests.waiting import wait_for_async

EPOCH = datetime(2026, 3, 15, 12, 0)
ZONE = "Europe/Paris"


# -- golden vectors ---------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("device_hex", "spec_hex"),
    [
        # 182/95/124 mmHg, 2026-11-23 09:30:45, pulse 77 (00 4d), user 1 unflagged, status 0x0004 (00 04)
        ("16b6005f007c00ea070b17091e2d004d010004", "1eb6005f007c00ea070b17091e2d4d00010400"),
        # no time stamp: pulse 60 (00 3c), user 2 unflagged, status 0x0001 (00 01)
        ("14780050006000003c020001", "1c7800500060003c00020100"),
        # flags already announce the user id (pulse + user, no status): only the byte order is fixed
        ("0c780050006000003c02", "0c7800500060003c0002"),
    ],
)
def test_beurer_bm85_frame_vectors(device_hex: str, spec_hex: str) -> None:
    assert beurer_bm85_frame(bytes.fromhex(device_hex)).hex() == spec_hex


def test_beurer_bm85_frame_decodes_to_the_right_values() -> None:
    device = bytes.fromhex("16b6005f007c00ea070b17091e2d004d010004")
    m = parse_blood_pressure_measurement(beurer_bm85_frame(device))
    assert m.pulse_rate is not None and m.pulse_rate.value == 77
    assert m.user_id == 1 and m.status_names == ["irregular_pulse"]
    assert m.warnings == ()
    # without the quirk the same bytes decode to nonsense (pulse 0, a stray trailing byte)
    raw = parse_blood_pressure_measurement(bytes.fromhex("16b6005f007c00ea070b17091e2d004d010004"))
    assert raw.pulse_rate is not None and raw.pulse_rate.value != 77


@pytest.mark.parametrize("device_hex", ["", "16b600", "16b6005f007c00ea070b17091e2d004d01"])
def test_beurer_bm85_frame_leaves_short_frames_to_the_decoder(device_hex: str) -> None:
    assert beurer_bm85_frame(bytes.fromhex(device_hex)).hex() == device_hex


def test_simulated_beurer_sends_the_quirky_bytes() -> None:
    frame = bp_bytes(182, 95, 124, timestamp=datetime(2026, 11, 23, 9, 30, 45), pulse=77, user_id=1, status=4,
                     beurer_bm85=True)
    assert frame.hex() == "16b6005f007c00ea070b17091e2d004d010004"


@pytest.mark.parametrize(
    ("base", "device_seq", "expected"),
    [
        (datetime(2000, 1, 1, 0, 0), 7, 0),
        (datetime(2000, 1, 1, 0, 1, 59), 7, 1),
        (datetime(2024, 3, 15, 14, 30, 45), 0, 16486),  # 12 730 470 minutes since 2000, mod 65536
        (None, 42, 42),
    ],
)
def test_synthetic_sequence(base: datetime | None, device_seq: int, expected: int) -> None:
    assert synthetic_sequence(base, device_seq) == expected


def test_taidoc_sequence_replaced_raw_kept() -> None:
    # seq 1 (TaiDoc: the newest record), 2024-03-15 14:30:45, 105 mg/dL
    data = bytes.fromhex("030100e807030f0e1e2dc4ff69b011")
    record = merge_glucose_context(parse_glucose_measurement(data), None)
    fixed = select("TaiDoc Technology", "Diamond Mini DM30b", "1.2.4").normalise_glucose(record)
    assert fixed.measurement.sequence_number == 16486
    assert fixed.raw_hex == "030100e807030f0e1e2dc4ff69b011"  # audit keeps what the meter sent
    assert SPEC.normalise_glucose(record) is record


@pytest.mark.parametrize(
    ("dis", "names", "knobs"),
    [
        (("Beurer", "BM85", "1.04"), ("beurer-bm85",), {}),
        (("BEURER GmbH", "BM85 Bluetooth", ""), ("beurer-bm85",), {}),
        (("Beurer", "BM58", "1.0"), (), {}),
        (("TaiDoc", "Diamond Mini", "1.2.4"), ("taidoc-sequence",),
         {"sequence_reliable": False, "clock_characteristic": None}),
        (("Roche", "Accu-Chek Guide", "3.0"), ("roche-date-time",),
         {"clock_characteristic": 0x2A08, "listen_after_download": True}),
        (("OMRON", "HEM-7342T", "2.1"), ("omron-poll",), {"poll_interval_s": 300.0}),
        (("OMRON", "HEM-7361T", "2.1"), (), {}),
        ((None, None, None), (), {"clock_characteristic": 0x2A2B, "sequence_reliable": True}),
    ],
)
def test_selection_by_prefix(dis: tuple[str | None, str | None, str | None], names: tuple[str, ...],
                             knobs: dict[str, Any]) -> None:
    profile = select(*dis)
    assert profile.names == names
    for knob, value in knobs.items():
        assert getattr(profile, knob) == value


# -- sessions against the quirky simulators ----------------------------------------------------

def _collector(radio: SimulatedRadio, outbox: Outbox, **kw: Any) -> Collector:
    config = CollectorConfig("gw-test", ZoneInfo(ZONE), **{"session_idle_s": 0.3, "context_timeout_s": 0.3,
                                                           "racp_timeout_s": 3, **kw})
    return Collector(radio, outbox, config)


def _payloads(outbox: Outbox) -> list[dict[str, Any]]:
    return [json.loads(r.payload) for r in outbox.rows() if r.state != "rejected"]


def test_beurer_cuff_values_fixed_and_raw_kept(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    radio = build_radio("bp:B1", "quirks", seed=3, tz=ZONE, epoch=EPOCH)
    cuff = radio.devices[0]
    assert isinstance(cuff, BpCuff) and cuff.beurer_bm85
    with Outbox(tmp_path / "o.sqlite3", 100) as ob, caplog.at_level(logging.INFO, logger="gateway.collector"):
        result = asyncio.run(_collector(radio, ob).session(cuff.address))
        assert result.quirks == ("beurer-bm85",) and result.committed == 3
        assert "quirks applied: beurer-bm85" in caplog.text
        readings = _payloads(ob)
        assert {p["raw"] for p in readings} == {r.raw.hex() for r in cuff.produced}
        assert all(58 <= p["values"]["pulse_bpm"] <= 88 and p["user_id"] == 1 for p in readings)
        assert all(p["measurement"] == "ok" and p["status"] == [] for p in readings)


def test_taidoc_reversed_sequences_each_record_once(tmp_path: Path) -> None:
    radio = build_radio("glucose:G1,glucose:G2", "quirks", seed=3, tz=ZONE, epoch=EPOCH)
    meter = radio.devices[1]
    assert isinstance(meter, GlucoseMeter) and meter.reversed_sequence
    with Outbox(tmp_path / "o.sqlite3", 100) as ob:
        collector = _collector(radio, ob)
        first = asyncio.run(collector.session(meter.address))
        assert first.committed == 4 and first.clock_offset_s is None  # no clock access
        meter.store(120, when=EPOCH)  # every stored record now has a different device number
        meter.store(131, when=EPOCH.replace(minute=30))
        again = asyncio.run(collector.session(meter.address))
        assert again.committed == 2 and again.duplicates == 4
        readings = _payloads(ob)
        assert len(readings) == 6 == len({p["message_id"] for p in readings})
        for p in readings:
            base = datetime.fromisoformat(p["device_time"])
            assert p["sequence_number"] == synthetic_sequence(base, -1)
        assert ob.high_water(meter.serial) is None  # sequence numbers are not a resume point here


def test_roche_clock_through_date_time_and_reading_taken_while_connected(tmp_path: Path) -> None:
    radio = build_radio("glucose:G1", "quirks", seed=3, tz=ZONE, epoch=EPOCH)
    meter = radio.devices[0]
    assert isinstance(meter, GlucoseMeter) and meter.clock_char == 0x2A08

    async def go(ob: Outbox) -> SessionResult:
        task = asyncio.create_task(_collector(radio, ob, session_idle_s=1.5).session(meter.address))
        await wait_for_async(lambda: ob.depth() == 4, 5, "the stored records")
        meter.store(97, meal=1)  # the patient measures while the gateway is connected
        await wait_for_async(lambda: ob.depth() == 5, 5, "the live reading")
        return await task

    with Outbox(tmp_path / "o.sqlite3", 100) as ob:
        result = asyncio.run(go(ob))
        assert result.quirks == ("roche-date-time",) and result.committed == 5
        assert result.clock_offset_s == pytest.approx(200, abs=2) and result.clock_set
        assert abs(meter.clock_drift_s) < 5  # set through 0x2A08
        assert ob.high_water(meter.serial) == meter.produced[-1].sequence_number
        live = [p for p in _payloads(ob) if p["values"]["meal"] == "preprandial"]
        assert len(live) == 1 and live[0]["sequence_number"] == 44


def test_cuff_that_never_pushes_is_polled(tmp_path: Path) -> None:
    radio = build_radio("bp:B1,bp:B2", "quirks", seed=3, tz=ZONE, epoch=EPOCH)
    cuff = radio.devices[1]
    with Outbox(tmp_path / "o.sqlite3", 100) as ob:
        collector = _collector(radio, ob)
        first = asyncio.run(collector.session(cuff.address))  # paired and collected once
        assert first.quirks == ("omron-poll",) and first.poll_after_s == 300.0 and first.committed == 3
        assert collector.poll_schedule() == {cuff.address: 300.0}
        cuff.advertises = False  # a bonded cuff stays silent after a measurement
        assert cuff.address not in {a.address for a in asyncio.run(radio.scan((0x1810,), 0))}
        assert isinstance(cuff, BpCuff)
        cuff.store_normal()
        polled = asyncio.run(collector.session(cuff.address))
        assert polled.committed == 1


def test_service_polls_a_cuff_that_stopped_advertising(
    broker: Any, gateway_id: str, tmp_path: Path
) -> None:
    """OMRON HEM-7342T never pushes: after the first session the service connects on a schedule."""
    from gateway.settings import Settings
    from tests.gateway.observer import Observer
    from tests.gateway.service_runner import running
    from tests.waiting import wait_for

    cuff = BpCuff(serial="OMR-POLL-1", manufacturer="OMRON", model="HEM-7342T", firmware="2.1",
                  zone=ZoneInfo("UTC"))
    cuff.store_normal()
    radio = SimulatedRadio([cuff])
    settings = Settings(gateway_id=gateway_id, mqtt_url=broker.url_for(gateway_id),
                        outbox_path=tmp_path / "o.sqlite3", backend="sim", tz="UTC", scan_interval_s=0.2,
                        session_idle_s=0.2, status_interval_s=5, poll_interval_s=0.5)
    observer = Observer(broker, gateway_id)
    try:
        wait_for(observer.subscribed.is_set, 10, "observer subscription")
        with running(settings, radio):
            wait_for(lambda: observer.count() == 1, 15, "the first reading, collected when it advertised")
            cuff.advertises = False  # idle cuff: silent in scans, still accepts a bonded connection
            cuff.store_normal()
            wait_for(lambda: observer.count() == 2, 15, "the second reading, collected by polling")
    finally:
        observer.close()
