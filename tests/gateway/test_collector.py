"""Collection sessions against the simulated devices (the BLE seam is the only fake)."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from gateway.collector import Collector, CollectorConfig, SessionResult, backoff_for
from gateway.errors import DeviceUnavailable, UnknownDevice
from gateway.outbox import Outbox
from simulators.devices import SimulatedRadio, build_radio

EPOCH = datetime(2026, 3, 15, 12, 0)
ZONE = "Europe/Paris"


def _collector(radio: SimulatedRadio, outbox: Outbox, **kw: Any) -> Collector:
    config = CollectorConfig(
        "gw-test", ZoneInfo(ZONE), session_idle_s=0.3, context_timeout_s=0.3, racp_timeout_s=3, **kw
    )
    return Collector(radio, outbox, config)


async def _sessions(
    collector: Collector, radio: SimulatedRadio, rounds: int
) -> list[SessionResult | Exception]:
    out: list[SessionResult | Exception] = []
    for _ in range(rounds):
        for device in radio.devices:
            try:
                out.append(await collector.session(device.address))
            except DeviceUnavailable as exc:
                out.append(exc)
    return out


def _payloads(outbox: Outbox) -> list[dict[str, Any]]:
    return [json.loads(r.payload) for r in outbox.rows() if r.state != "rejected"]


def test_disconnect_mid_racp_download_resumes_without_loss(tmp_path: Path) -> None:
    radio = build_radio("glucose:GL-1", "faults", seed=3, tz=ZONE, epoch=EPOCH)
    meter = radio.devices[0]
    with Outbox(tmp_path / "o.sqlite3", 100) as ob:
        collector = _collector(radio, ob)
        first = asyncio.run(_sessions(collector, radio, 1))
        assert isinstance(first[0], DeviceUnavailable)  # the meter dropped the link mid-download
        mark = ob.high_water("GL-1")
        assert mark is not None
        asyncio.run(_sessions(collector, radio, 2))
        published = {p["sequence_number"] for p in _payloads(ob)}
        expected = {r.sequence_number for r in meter.produced if r.kind == "glucose"}
        assert published == expected
        # each record exactly once (the resume asked for ≥ last committed + 1)
        assert len(_payloads(ob)) == len(expected)
        kinds = {r.kind for r in meter.produced}
        assert {"control_solution", "corrupt"} <= kinds
        rejected = ob.rows("rejected")
        assert len(rejected) == 1 and "too short" in (rejected[0].reason or "")
        assert all(p["values"]["sample_type"] != "control_solution" for p in _payloads(ob))


def test_glucose_units_context_and_out_of_range(tmp_path: Path) -> None:
    radio = build_radio("glucose:GL-1", "faults", seed=3, tz=ZONE, epoch=EPOCH)
    with Outbox(tmp_path / "o.sqlite3", 100) as ob:
        asyncio.run(_sessions(_collector(radio, ob), radio, 3))
        readings = _payloads(ob)
        high = [p for p in readings if p["measurement"] == "out_of_range_high"]
        assert len(high) == 1 and high[0]["values"]["glucose_mg_dl"] is None
        assert "result_higher_than_device_can_process" in high[0]["status"]
        ok = [p for p in readings if p["measurement"] == "ok"]
        assert all(p["original"]["unit"] == "mol/L" for p in ok)
        first = min(ok, key=lambda p: p["sequence_number"])
        assert first["values"]["meal"] == "preprandial"
        mmol = first["original"]["concentration"] * 1000
        assert first["values"]["glucose_mg_dl"] == pytest.approx(mmol * 18.0156)
        assert "+" in first["raw"]  # measurement + context bytes


def test_duplicate_indications_same_message_id_and_icp_never_stored(tmp_path: Path) -> None:
    radio = build_radio("bp:BP-1", "faults", seed=3, tz=ZONE, epoch=EPOCH)
    cuff = radio.devices[0]
    with Outbox(tmp_path / "o.sqlite3", 100) as ob:
        results = asyncio.run(_sessions(_collector(radio, ob), radio, 3))
        readings = _payloads(ob)
        bp = [r for r in cuff.produced if r.kind == "blood_pressure"]
        assert {p["raw"] for p in readings} == {r.raw.hex() for r in bp}
        assert len({p["message_id"] for p in readings}) == len(bp)
        assert sum(r.duplicates for r in results if isinstance(r, SessionResult)) >= len(bp)
        failed = [p for p in readings if p["measurement"] == "failed"]
        assert len(failed) == 1 and set(failed[0]["values"].values()) == {None}
        kpa = [p for p in readings if p["measurement"] == "ok"]
        assert all(p["original"]["unit"] == "kPa" for p in kpa)
        # ICP frames were sent but never became readings (raw of ICP has NaN diastolic)
        assert all(not p["raw"].endswith("ff07ff07") for p in readings)
        assert len(ob.rows("rejected")) == 1  # the truncated frame, once


def test_clock_offset_corrects_measured_at_and_clock_is_set(tmp_path: Path) -> None:
    radio = build_radio("glucose:GL-1", "faults", seed=3, tz=ZONE, epoch=EPOCH)
    with Outbox(tmp_path / "o.sqlite3", 100) as ob:
        results = asyncio.run(_sessions(_collector(radio, ob), radio, 2))
        first = results[0]
        assert isinstance(first, DeviceUnavailable)
        info = ob.load_device(radio.devices[0].address)
        assert info is not None and info["clock_offset_s"] == pytest.approx(-400, abs=2)
        reading = _payloads(ob)[0]
        device_time = datetime.fromisoformat(str(reading["device_time"]))
        measured = datetime.fromisoformat(str(reading["measured_at"]).replace("Z", "+00:00"))
        local = device_time.replace(tzinfo=ZoneInfo(ZONE))
        assert (measured - local).total_seconds() == pytest.approx(400, abs=2)
        second = results[1]
        assert isinstance(second, SessionResult) and second.clock_set
        assert abs(radio.devices[0].clock_drift_s) < 5


def test_outbox_full_leaves_records_on_the_meter(tmp_path: Path) -> None:
    radio = build_radio("glucose:GL-1", "normal", seed=3, tz=ZONE, epoch=EPOCH)
    with Outbox(tmp_path / "o.sqlite3", 2) as ob:
        collector = _collector(radio, ob)
        (result,) = asyncio.run(_sessions(collector, radio, 1))
        assert isinstance(result, SessionResult) and result.committed == 2 and result.notes
        mark = ob.high_water("GL-1")
        (again,) = asyncio.run(_sessions(collector, radio, 1))
        assert isinstance(again, SessionResult) and again.committed == 0 and "outbox full" in again.notes[0]
        assert ob.high_water("GL-1") == mark
        ob.ack([r.id for r in ob.claim(10)])  # the broker drained it
        ob.capacity = 100
        asyncio.run(_sessions(collector, radio, 1))
        assert ob.depth() == 6 - 2


def test_allow_list_by_serial(tmp_path: Path) -> None:
    radio = build_radio("bp:BP-1,bp:BP-2", "normal", seed=3, tz=ZONE, epoch=EPOCH)
    with Outbox(tmp_path / "o.sqlite3", 100) as ob:
        collector = _collector(radio, ob, allow=frozenset({"BP-2"}))
        with pytest.raises(UnknownDevice):
            asyncio.run(collector.session(radio.devices[0].address))
        result = asyncio.run(collector.session(radio.devices[1].address))
        assert result.committed == 4
        assert {p["device"]["id"] for p in _payloads(ob)} == {"BP-2"}


@pytest.mark.parametrize(
    ("exc", "attempt", "expected"),
    [
        (ConnectionError("[org.bluez.Error.Failed] le-connection-abort-by-local"), 0, 0.25),
        (ConnectionError("Software caused connection abort"), 5, 2.0),
        (ConnectionError("device not found"), 1, 1.0),
        (TimeoutError(), 2, 4.0),
        (TimeoutError(), 9, 10.0),
        (PermissionError("AuthenticationFailed"), 0, 10.0),
        (OSError("ATT error 0x0e"), 10, 30.0),
    ],
)
def test_backoff_for(exc: BaseException, attempt: int, expected: float) -> None:
    assert backoff_for(exc, attempt) == expected
