"""Simulated scale and oximeter: exact bytes (checked by hand, not by the gateway's parser), RACP, truth."""

from __future__ import annotations

import asyncio
import random
from datetime import datetime

import pytest

from simulators.devices import build_devices, parse_devices_spec
from simulators.devices.pulse_oximeter import PulseOximeter, encode_continuous, encode_spot_check
from simulators.devices.radio import SimLink, SimulatedRadio
from simulators.devices.weight_scale import WeightScale, encode_weight
from tests.waiting import wait_for_async

T = datetime(2024, 3, 15, 14, 30, 45)


@pytest.mark.parametrize(
    ("kwargs", "expected_hex"),
    [
        ({"kg": 70.0}, "00b036"),
        ({"kg": 157 * 0.45359237, "imperial": True}, "01543d"),
        ({"kg": None}, "00ffff"),
        # BMI 75 / 1.716² = 25.47 → 255 (0x00FF); height 1716 mm
        ({"kg": 75.0, "timestamp": T, "user_id": 2, "height_m": 1.716}, "0e983ae807030f0e1e2d02ff00b406"),
        ({"kg": 70.0, "vendor_bits": 0x20}, "20b036"),
    ],
)
def test_weight_bytes(kwargs: dict[str, object], expected_hex: str) -> None:
    kg = kwargs.pop("kg")
    assert encode_weight(kg, **kwargs).hex() == expected_hex  # type: ignore[arg-type]


def test_plx_bytes() -> None:
    assert encode_spot_check(98.0, 72.0).hex() == "0062004800"
    assert encode_spot_check(97.5, 72.0).hex() == "00cff34800"
    assert encode_spot_check(None, None, status=0x2000).hex() == "02ff07ff070020"
    assert encode_spot_check(95.0, 60.0, device_status=0x20).hex() == "045f003c00200000"
    assert encode_continuous(98.0, 72.0, slow=(97.0, 71.0)).hex() == "026200480061004700"


def test_specs_accept_the_new_kinds() -> None:
    specs = parse_devices_spec("scale:WS-1,oximeter:OX-1")
    assert [(s.kind, s.serial) for s in specs] == [("scale", "WS-1"), ("oximeter", "OX-1")]
    with pytest.raises(ValueError, match="scale:<serial>"):
        parse_devices_spec("thermometer:T-1")
    a = build_devices("scale:WS-1,oximeter:OX-1", "demo", seed=4)
    b = build_devices("scale:WS-1,oximeter:OX-1", "demo", seed=4)
    assert [r.raw for d in a for r in d.produced] == [r.raw for d in b for r in d.produced]
    assert all(r.truth is not None for d in a for r in d.produced)


def test_scale_indicates_pending_weighings_and_forgets_them() -> None:
    scale = WeightScale(serial="WS-1", manufacturer="m", model="s", rng=random.Random(1))
    first, second = scale.store(80.0, when=T), scale.store(81.0, when=T)
    got: list[bytes] = []

    async def go() -> None:
        link = await SimulatedRadio([scale]).connect(scale.address)
        await link.start_notify(0x2A9D, got.append)
        await wait_for_async(lambda: len(got) >= 2, 5, "both pending weighings indicated")

    asyncio.run(go())
    assert got == [first.raw, second.raw]
    assert scale.pending == [] and first.delivered and second.delivered


async def _racp(ox: PulseOximeter, request: bytes) -> tuple[list[bytes], list[bytes]]:
    records: list[bytes] = []
    answers: list[bytes] = []
    link: SimLink = await SimulatedRadio([ox]).connect(ox.address)
    await link.start_notify(0x2A5E, records.append)
    await link.start_notify(0x2A52, answers.append)
    await link.write(0x2A52, request)
    await wait_for_async(lambda: answers, 5, "the RACP answer")
    return records, answers


def test_oximeter_racp_reports_all_stored_records_every_time() -> None:
    ox = PulseOximeter(serial="OX-1", manufacturer="m", model="o", rng=random.Random(1))
    stored = [ox.store(96.0, 70.0, when=T), ox.store(94.0, 80.0, when=T)]
    for _ in range(2):  # never deleted: a second download sends the same bytes again
        records, answers = asyncio.run(_racp(ox, bytes.fromhex("0101")))
        assert records == [r.raw for r in stored]
        assert answers == [bytes.fromhex("06000101")]
    assert all(r.raw[5 + 7 : 5 + 9] == bytes.fromhex("8002") for r in stored)  # validated + from storage
    _, count = asyncio.run(_racp(ox, bytes.fromhex("0401")))
    assert count == [bytes.fromhex("05000200")]
    _, refused = asyncio.run(_racp(ox, bytes.fromhex("010301" + "0100")))
    assert refused == [bytes.fromhex("06000104")]  # operator not supported


def test_oximeter_with_nothing_stored_answers_no_records() -> None:
    ox = PulseOximeter(serial="OX-1", manufacturer="m", model="o")
    assert asyncio.run(_racp(ox, bytes.fromhex("0101"))) == ([], [bytes.fromhex("06000106")])


def test_continuous_samples_stream_while_subscribed() -> None:
    ox = PulseOximeter(serial="OX-1", manufacturer="m", model="o")
    queued = [ox.queue_continuous(95.0, 60.0), ox.queue_continuous(None, None)]
    got: list[bytes] = []

    async def go() -> None:
        link = await SimulatedRadio([ox]).connect(ox.address)
        await link.start_notify(0x2A5F, got.append)
        await wait_for_async(lambda: len(got) == 2, 5, "both continuous samples")

    asyncio.run(go())
    assert got == [r.raw for r in queued]
    assert got[1].hex() == "0cff07ff070020000000"  # NaN/NaN, measurement unavailable, device status 0
