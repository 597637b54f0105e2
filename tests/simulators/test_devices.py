"""The simulated devices send spec bytes and run RACP like a meter (checked with literal vectors)."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest

from simulators.devices import (
    BpCuff,
    GlucoseMeter,
    SimLink,
    SimulatedRadio,
    build_devices,
    build_radio,
    parse_devices_spec,
)
from simulators.devices.bp_cuff import encode_measurement as bp_bytes
from simulators.devices.encoding import current_time, sfloat
from simulators.devices.glucose_meter import encode_measurement as glucose_bytes
from tests.waiting import wait_for_async

T = datetime(2024, 3, 15, 14, 30, 45)


def test_sfloat_vectors() -> None:
    assert sfloat(189, -1) == bytes.fromhex("bdf0")
    assert sfloat(-1, 0) == bytes.fromhex("ff0f")
    with pytest.raises(ValueError, match="out of range"):
        sfloat(2047, 0)


def test_bp_measurement_vectors() -> None:
    assert (
        bp_bytes(
            182, 95, 124, timestamp=datetime(2026, 11, 23, 9, 30, 45), pulse=77, user_id=1, status=4
        ).hex()
        == "1eb6005f007c00ea070b17091e2d4d00010400"
    )
    assert bp_bytes(None, None, None).hex() == "00ff07ff07ff07"
    assert bp_bytes(120, 80, 93, kpa=True).hex() == "01a0f06bf07cf0"  # 16.0 / 10.7 / 12.4 kPa


def test_glucose_measurement_vectors() -> None:
    assert glucose_bytes(1, T, 105, time_offset_min=-60).hex() == "030100e807030f0e1e2dc4ff69b011"
    assert glucose_bytes(2, T, 99, mol=True, status=0x20, context_follows=True).hex() == (
        "1e0200e807030f0e1e2d37c0112000"
    )
    assert current_time(T).hex() == "e807030f0e1e2d050000"


def test_spec_parsing_and_determinism() -> None:
    assert [(d.kind, d.serial) for d in parse_devices_spec("bp:A, glucose:B")] == [
        ("bp", "A"),
        ("glucose", "B"),
    ]
    with pytest.raises(ValueError, match="bad simulated device"):
        parse_devices_spec("thermometer:X")
    one = build_devices("bp:A,glucose:B", "faults", 4, 0, "UTC", T)
    two = build_devices("bp:A,glucose:B", "faults", 4, 0, "UTC", T)
    assert [[r.raw for r in d.produced] for d in one] == [[r.raw for r in d.produced] for d in two]


def test_demo_first_cuff_holds_a_crisis_reading() -> None:
    first, second = build_devices("bp:A,bp:B", "demo", 1, 20, "UTC")
    assert any(r.raw[1:3] == sfloat(186) and r.raw[3:5] == sfloat(124) for r in first.produced)
    assert not any(r.raw[1:3] == sfloat(186) for r in second.produced)


async def _racp(meter: GlucoseMeter, request: bytes, subscribe: bool = True) -> list[tuple[int, bytes]]:
    got: list[tuple[int, bytes]] = []
    link = SimLink(meter, None)
    if subscribe:
        for uuid in (0x2A18, 0x2A34, 0x2A52):
            await link.start_notify(uuid, lambda data, u=uuid: got.append((u, data)))  # type: ignore[misc]
    await link.write(0x2A52, request)
    if subscribe:
        await wait_for_async(lambda: any(u == 0x2A52 for u, _ in got), 2, "the RACP response")
    return got


def _meter() -> GlucoseMeter:
    meter = GlucoseMeter(serial="G", manufacturer="m", model="x", next_seq=10)
    for mg in (100, 110, 120):
        meter.store(mg, when=T)
    return meter


@pytest.mark.parametrize(
    ("request_hex", "final_hex", "records"),
    [
        ("0103010b00", "06000101", [11, 12]),  # ≥ 11
        ("0101", "06000101", [10, 11, 12]),  # all
        ("0106", "06000101", [12]),  # last
        ("0103016400", "06000106", []),  # ≥ 100: no records found
        ("0401", "05000300", []),  # count
        ("0201", "06000202", []),  # delete: not supported by this meter
        ("0900", "06000902", []),  # unknown op code
        ("0100", "06000103", []),  # invalid operator
        ("0107", "06000104", []),  # operator not supported
        ("010301", "06000105", []),  # invalid operand
        ("0103020000000000000000", "06000109", []),  # user-facing-time filter not supported
    ],
)
def test_racp(request_hex: str, final_hex: str, records: list[int]) -> None:
    got = asyncio.run(_racp(_meter(), bytes.fromhex(request_hex)))
    assert [d.hex() for u, d in got if u == 0x2A52] == [final_hex]
    assert [int.from_bytes(d[1:3], "little") for u, d in got if u == 0x2A18] == records


def test_racp_needs_its_cccd_first() -> None:
    with pytest.raises(OSError, match="0x81"):
        asyncio.run(_racp(_meter(), bytes.fromhex("0101"), subscribe=False))


def test_disconnect_mid_transfer_and_abort() -> None:
    radio = build_radio("glucose:G", "faults", 1, 0, "UTC", T)

    async def go() -> tuple[bool, list[bytes]]:
        seen: list[bytes] = []
        dropped: list[bool] = []
        link = await radio.connect(radio.devices[0].address, lambda: dropped.append(True))
        await link.start_notify(0x2A18, seen.append)
        await link.start_notify(0x2A52, seen.append)
        await link.write(0x2A52, bytes.fromhex("0101"))
        await wait_for_async(lambda: dropped, 2, "the simulated link to drop")
        return bool(dropped) and not link.is_connected, seen

    dropped, seen = asyncio.run(go())
    assert dropped and len(seen) == 3  # drop_after=3 in the faults scenario, no final indication


def test_memory_reset_restarts_numbering_and_last_is_chronological_across_the_wrap() -> None:
    meter = GlucoseMeter(serial="G", manufacturer="m", model="x", next_seq=65534)
    for mg in (100, 110, 120, 130):
        meter.store(mg, when=T)
    assert [r.sequence_number for r in meter.records] == [65534, 65535, 0, 1]
    got = asyncio.run(_racp(meter, bytes.fromhex("0106")))  # last record = the newest, seq 1
    assert [d.hex()[:6] for u, d in got if u == 0x2A18] == ["030100"]
    meter.reset_memory()
    assert meter.records == [] and meter.store(90, when=T).sequence_number == 1
    assert len(meter.produced) == 5  # what was produced stays countable for tests


def test_reversed_sequence_meter_reports_newest_as_zero() -> None:
    meter = GlucoseMeter(serial="G", manufacturer="TaiDoc", model="x", reversed_sequence=True, clock_char=0)
    for mg in (100, 110, 120):
        meter.store(mg, when=T)
    got = asyncio.run(_racp(meter, bytes.fromhex("0101")))
    assert [int.from_bytes(d[1:3], "little") for u, d in got if u == 0x2A18] == [2, 1, 0]
    assert 0x2A2B not in meter.characteristics() and 0x2A08 not in meter.characteristics()


def test_date_time_clock_live_push_and_silent_cuff() -> None:
    meter = GlucoseMeter(serial="R", manufacturer="Roche", model="x", clock_char=0x2A08, live_push=True)
    assert len(meter.read(0x2A08)) == 7 and 0x2A2B not in meter.characteristics()
    silent = BpCuff(serial="B", manufacturer="OMRON", model="HEM-7342T", advertises=False)
    radio = SimulatedRadio([meter, silent])

    async def go() -> list[bytes]:
        seen: list[bytes] = []
        link = await radio.connect(meter.address)
        await link.write(0x2A08, bytes.fromhex("e807030f0e1e2d"))  # set the clock through Date Time
        await link.start_notify(0x2A18, seen.append)
        meter.store(101, when=T)
        await wait_for_async(lambda: seen, 2, "the live reading")
        return seen

    (live,) = asyncio.run(go())
    assert live[1:3] == bytes.fromhex("0100")
    assert abs(meter.local_now() - T).total_seconds() < 5
    assert [a.address for a in asyncio.run(radio.scan((), 0))] == [meter.address]


def test_beurer_cuff_bytes() -> None:
    cuff = BpCuff(serial="B", manufacturer="Beurer", model="BM85", beurer_bm85=True)
    record = cuff.store(120, 80, when=T, pulse=60, status=1, user_id=2)
    # MAP 93 (5d 00); pulse 60 big-endian (00 3c), user 2 without flag b3, status 0x0001 big-endian
    assert record.raw.hex() == "16780050005d00" + "e807030f0e1e2d" + "003c" + "02" + "0001"
