"""Meter resets and the 16-bit wrap: nothing skipped, nothing published twice, never a RACP Delete.

The broker tests run the gateway service on the simulated meter twice over one outbox file (a
gateway restart in between, while the meter is reset or keeps counting) and count, with an
``rpmflow-observer`` subscriber, what reached Mosquitto.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path
from typing import ClassVar
from zoneinfo import ZoneInfo

import pytest

from gateway.collector import Collector, CollectorConfig, next_sequence, restart_reason, sequence_after
from gateway.outbox import HighWater, Outbox
from gateway.settings import Settings
from simulators.devices import GlucoseMeter, SimLink, SimulatedRadio
from simulators.embedded_mosquitto import EmbeddedMosquitto
from tests.gateway.observer import Observer
from tests.gateway.service_runner import running
from tests.waiting import wait_for

T0 = datetime(2026, 3, 1, 8, 0)
ZONE = "UTC"


# -- pure --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("seq", "after"), [(0, 1), (41, 42), (65534, 65535), (65535, 0)])
def test_next_sequence_wraps(seq: int, after: int) -> None:
    assert next_sequence(seq) == after


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [(1, 0, True), (0, 65535, True), (1, 65534, True), (3, 500, False), (500, 500, False),
     (65535, 0, False), (32767, 0, True), (32768, 0, False)],
)
def test_sequence_after_on_the_circle(a: int, b: int, expected: bool) -> None:
    assert sequence_after(a, b) is expected


@pytest.mark.parametrize(
    ("mark", "meter_seq", "meter_base", "same_record", "restarted"),
    [
        (HighWater(5, "2026-03-01T08:00:00"), 5, "2026-03-01T08:00:00", True, False),
        # the same number now names another record
        (HighWater(5, "2026-03-01T08:00:00"), 5, "2026-03-02T09:00:00", True, True),
        (HighWater(5, None), 5, "2026-03-02T09:00:00", True, False),  # old file: no base time to compare
        (HighWater(500, "x"), 3, "y", False, True),  # newest is behind the mark
        (HighWater(65535, "x"), 1, "y", False, False),  # wrapped, not reset
        (HighWater(7, "x"), 9, "y", False, False),
    ],
)
def test_restart_reason(mark: HighWater, meter_seq: int, meter_base: str, same_record: bool,
                        restarted: bool) -> None:
    assert (restart_reason(mark, meter_seq, meter_base, same_record=same_record) is not None) is restarted


# -- collector against the simulated meter (no broker) ----------------------------------------

class RecordingLink(SimLink):
    writes: ClassVar[list[bytes]] = []

    async def write(self, uuid16: int, data: bytes) -> None:
        if uuid16 == 0x2A52:
            RecordingLink.writes.append(bytes(data))
        await super().write(uuid16, data)


class RecordingRadio(SimulatedRadio):
    async def connect(self, address: str, on_disconnect: object = None, timeout: float = 30.0) -> SimLink:
        link = await super().connect(address, None)
        recording = RecordingLink(link.device, None)
        return recording


def _meter(next_seq: int, n: int, start: datetime = T0) -> GlucoseMeter:
    meter = GlucoseMeter(serial="GL-R", manufacturer="rpmflow-sim", model="SIM-GL-1", next_seq=next_seq)
    for i in range(n):
        meter.store(100 + i, when=start + timedelta(hours=i))
    return meter


def _collector(radio: SimulatedRadio, ob: Outbox) -> Collector:
    return Collector(radio, ob, CollectorConfig("gw-test", ZoneInfo(ZONE), session_idle_s=0.3,
                                                context_timeout_s=0.3, racp_timeout_s=3))


def test_memory_cleared_without_new_records_then_new_ones(tmp_path: Path) -> None:
    meter = _meter(1, 3)
    RecordingLink.writes = []
    radio = RecordingRadio([meter])
    with Outbox(tmp_path / "o.sqlite3", 100) as ob:
        collector = _collector(radio, ob)
        assert asyncio.run(collector.session(meter.address)).committed == 3
        assert ob.high_water("GL-R") == 3
        meter.reset_memory()
        empty = asyncio.run(collector.session(meter.address))
        assert empty.sequence_reset is not None and "no records" in empty.sequence_reset
        assert ob.high_water("GL-R") is None
        (reset,) = ob.resets("GL-R")
        assert (reset.old_seq, reset.old_base) == (3, (T0 + timedelta(hours=2)).isoformat())
        assert collector.board.snapshot()["GL-R"]["sequence_reset"]["old_high_water"] == 3
        meter.store(140, when=T0 + timedelta(days=2))  # seq 1 again, another record
        again = asyncio.run(collector.session(meter.address))
        assert again.committed == 1 and again.sequence_reset is None
        assert ob.high_water("GL-R") == 1
    assert RecordingLink.writes, "the RACP requests were recorded"
    assert all(w[0] != 0x02 for w in RecordingLink.writes), "never a RACP Delete"
    # the check asks for the record at the mark (range 3..3) before resuming
    assert bytes.fromhex("0104010300" + "0300") in RecordingLink.writes


# -- over the real broker ------------------------------------------------------------------------

def _settings(broker: EmbeddedMosquitto, gw: str, outbox: Path) -> Settings:
    return Settings(gateway_id=gw, mqtt_url=broker.url_for(gw), outbox_path=outbox, backend="sim", tz=ZONE,
                    scan_interval_s=0.3, session_idle_s=0.3, context_timeout_s=0.3, racp_timeout_s=5,
                    status_interval_s=5)


def _expected(meter: GlucoseMeter) -> set[tuple[str, str]]:
    return {(meter.serial, r.raw.hex()) for r in meter.produced if r.kind == "glucose"}


def _in_flight(outbox: Path) -> int:
    """Rows still waiting for their PUBACK (read-only, beside the running gateway: WAL)."""
    with contextlib.closing(sqlite3.connect(f"file:{outbox}?mode=ro", uri=True)) as db:
        (count,) = db.execute("SELECT count(*) FROM outbox WHERE state = 'in_flight'").fetchone()
    return int(count)


def _exactly_once(observer: Observer, meter: GlucoseMeter, outbox: Path) -> None:
    expected = _expected(meter)
    wait_for(lambda: observer.keys() == expected, 15, f"{len(expected)} readings at the broker")
    # stopping before the PUBACKs arrive would re-send those rows after the restart (at-least-once,
    # correct, but not what these tests count): wait until the gateway holds every PUBACK
    wait_for(lambda: _in_flight(outbox) == 0, 15, "every PUBACK received by the gateway")
    assert observer.count() == len(expected), "a record reached the broker twice"
    assert all(len(v) == 1 for v in observer.by_id.values())


@pytest.mark.parametrize("after_reset", [2, 7], ids=["fewer-than-before", "more-than-before"])
def test_meter_reset_every_record_once(broker: EmbeddedMosquitto, gateway_id: str, tmp_path: Path,
                                       after_reset: int) -> None:
    meter = _meter(1, 5)
    radio = SimulatedRadio([meter])
    settings = _settings(broker, gateway_id, tmp_path / "o.sqlite3")
    observer = Observer(broker, gateway_id)
    try:
        wait_for(observer.subscribed.is_set, 10, "observer subscription")
        with running(settings, radio):
            _exactly_once(observer, meter, settings.outbox_path)
        meter.reset_memory()  # battery swap: numbering restarts at 1, new records reuse 1..n
        for i in range(after_reset):
            meter.store(150 + i, when=T0 + timedelta(days=3, hours=i))
        with running(settings, radio):
            _exactly_once(observer, meter, settings.outbox_path)
            wait_for(lambda: any(s["devices"].get("GL-R", {}).get("sequence_reset")
                                 for s in observer.statuses), 10, "the reset in the retained status")
        assert observer.count() == 5 + after_reset
        seqs = sorted(r["sequence_number"] for r in observer.readings)
        assert seqs == sorted([1, 2, 3, 4, 5, *range(1, after_reset + 1)])
        with Outbox(settings.outbox_path, 100) as ob:
            (reset,) = ob.resets("GL-R")
            assert reset.old_seq == 5
            assert ob.high_water("GL-R") == after_reset
    finally:
        observer.close()


def test_sequence_wrap_65534_65535_0_1(broker: EmbeddedMosquitto, gateway_id: str, tmp_path: Path) -> None:
    meter = _meter(65534, 2)
    radio = SimulatedRadio([meter])
    settings = _settings(broker, gateway_id, tmp_path / "o.sqlite3")
    observer = Observer(broker, gateway_id)
    try:
        wait_for(observer.subscribed.is_set, 10, "observer subscription")
        with running(settings, radio):
            _exactly_once(observer, meter, settings.outbox_path)
        with Outbox(settings.outbox_path, 100) as ob:
            assert ob.high_water("GL-R") == 65535
        meter.store(130, when=T0 + timedelta(hours=2))  # seq 0
        meter.store(131, when=T0 + timedelta(hours=3))  # seq 1
        with running(settings, radio):
            _exactly_once(observer, meter, settings.outbox_path)
        assert [r["sequence_number"] for r in observer.readings] == [65534, 65535, 0, 1]
        with Outbox(settings.outbox_path, 100) as ob:
            assert ob.high_water("GL-R") == 1  # the newest on the circle, not the largest number
            assert ob.resets("GL-R") == []  # a wrap is not a reset
    finally:
        observer.close()
