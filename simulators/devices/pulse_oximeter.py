"""A simulated Pulse Oximeter Service 0x1822 device: stored spot-checks over RACP, live continuous data.

- **Spot-check 0x2A5E** readings are stored on the device; "report stored records" (``01 01``,
  all records: a PLX record has no sequence number, DOMAIN-weight-plx A9.6) indicates each with
  Measurement Status bit 9 "data from measurement storage", then ``06 00 01 01`` (or ``01 06`` when
  empty).  "Number of stored records" (``04 01``) answers ``05 00 <n>``; Abort (``03 00``) stops a
  report; other operators answer "operator not supported".  The device never deletes on its own.
- **Continuous 0x2A5F** samples queued with :meth:`PulseOximeter.queue_continuous` are notified
  every ``continuous_period_s`` while the central listens; a finger-out sample is NaN/NaN with
  "measurement unavailable", which a gateway must leave out of its summary.

Every record carries ``truth`` (the SpO2 and pulse the simulated patient had) for tests.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from simulators.devices.encoding import (
    SFLOAT_NAN,
    date_time,
    racp_count,
    racp_response,
    sfloat_of,
    sfloat_word,
)
from simulators.devices.radio import SimDevice, SimLink, SimRecord

SERVICE = 0x1822
CHAR_SPOT_CHECK = 0x2A5E
CHAR_CONTINUOUS = 0x2A5F
CHAR_FEATURES = 0x2A60
CHAR_RACP = 0x2A52

STATUS_FROM_STORAGE = 1 << 9
STATUS_UNAVAILABLE = 1 << 13
STATUS_VALIDATED = 1 << 7
STATUS_DEMONSTRATION = 1 << 10
# features: status support, device status support, spot-check storage, spot-check time stamp, PAI
FEATURES = 0x0001 | 0x0002 | 0x0004 | 0x0008 | 0x0040
STATUS_SUPPORT = 0xFF80  # bits 7..15
DEVICE_STATUS_SUPPORT = 0x00FFFF


def _value(v: float | None) -> bytes:
    return sfloat_word(SFLOAT_NAN) if v is None else sfloat_of(v, 1 if v != int(v) else 0)


def encode_spot_check(
    spo2: float | None,
    pulse: float | None,
    *,
    timestamp: datetime | None = None,
    status: int | None = None,
    device_status: int | None = None,
    pai: float | None = None,
    clock_not_set: bool = False,
) -> bytes:
    """A 0x2A5E value; ``None`` SpO2/pulse encode as SFLOAT NaN; device status is 3 bytes."""
    flags = (0x01 if timestamp else 0) | (0x02 if status is not None else 0)
    flags |= (0x04 if device_status is not None else 0) | (0x08 if pai is not None else 0)
    flags |= 0x10 if clock_not_set else 0
    out = bytes((flags,)) + _value(spo2) + _value(pulse)
    if timestamp:
        out += date_time(timestamp)
    if status is not None:
        out += status.to_bytes(2, "little")
    if device_status is not None:
        out += device_status.to_bytes(3, "little")
    if pai is not None:
        out += sfloat_of(pai, 1)
    return out


def encode_continuous(
    spo2: float | None,
    pulse: float | None,
    *,
    fast: tuple[float | None, float | None] | None = None,
    slow: tuple[float | None, float | None] | None = None,
    status: int | None = None,
    device_status: int | None = None,
    pai: float | None = None,
) -> bytes:
    """A 0x2A5F value (flag map: b0 fast, b1 slow, b2 status, b3 device status, b4 PAI)."""
    flags = (0x01 if fast else 0) | (0x02 if slow else 0) | (0x04 if status is not None else 0)
    flags |= (0x08 if device_status is not None else 0) | (0x10 if pai is not None else 0)
    out = bytes((flags,)) + _value(spo2) + _value(pulse)
    for pair in (fast, slow):
        if pair:
            out += _value(pair[0]) + _value(pair[1])
    if status is not None:
        out += status.to_bytes(2, "little")
    if device_status is not None:
        out += device_status.to_bytes(3, "little")
    if pai is not None:
        out += sfloat_of(pai, 1)
    return out


@dataclass
class PulseOximeter(SimDevice):
    clock_not_set: bool = False
    continuous_period_s: float = 0.005
    interval_s: float = 0.0
    rng: random.Random = field(default_factory=random.Random)
    records: list[SimRecord] = field(default_factory=list)  # stored spot-checks, never deleted
    samples: list[SimRecord] = field(default_factory=list)  # continuous samples not yet sent
    _busy: bool = False
    _abort: bool = False
    _started: datetime | None = None
    _generated: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        self.service_uuid = SERVICE
        self._started = self.local_now()

    def characteristics(self) -> dict[int, str]:
        chars = super().characteristics()
        chars.update(
            {
                CHAR_SPOT_CHECK: "indicate",
                CHAR_CONTINUOUS: "notify",
                CHAR_FEATURES: "read",
                CHAR_RACP: "write,indicate",
            }
        )
        return chars

    def read(self, uuid16: int) -> bytes:
        if uuid16 == CHAR_FEATURES:
            return (
                FEATURES.to_bytes(2, "little")
                + STATUS_SUPPORT.to_bytes(2, "little")
                + (DEVICE_STATUS_SUPPORT.to_bytes(3, "little"))
            )
        return super().read(uuid16)

    # -- producing data ---------------------------------------------------------------------
    def store(
        self, spo2: float | None, pulse: float | None, *, when: datetime | None = None, extra_status: int = 0
    ) -> SimRecord:
        """A spot-check kept in the device's memory (sent as stored data, status bit 9)."""
        stamp = when or self.local_now()
        sent = stamp
        if self.clock_not_set and self._started is not None:  # a clock never set counts from 2000-01-01
            sent = datetime(2000, 1, 1) + max(timedelta(0), stamp - self._started)
        raw = encode_spot_check(
            spo2,
            pulse,
            timestamp=sent,
            status=STATUS_FROM_STORAGE | STATUS_VALIDATED | extra_status,
            device_status=0,
            pai=round(self.rng.uniform(1.0, 9.0), 1),
            clock_not_set=self.clock_not_set,
        )
        truth = {"spo2_pct": spo2, "pulse_bpm": pulse, "when": stamp.isoformat()}
        record = SimRecord("spo2", raw, truth=truth)
        self.produced.append(record)
        self.records.append(record)
        return record

    def store_normal(self, when: datetime | None = None) -> SimRecord:
        return self.store(float(self.rng.randint(94, 99)), float(self.rng.randint(58, 92)), when=when)

    def queue_continuous(self, spo2: float | None, pulse: float | None) -> SimRecord:
        """One continuous sample; ``None`` values send a finger-out frame (NaN + unavailable)."""
        finger_out = spo2 is None or pulse is None
        raw = encode_continuous(
            spo2, pulse, status=STATUS_UNAVAILABLE if finger_out else STATUS_VALIDATED, device_status=0
        )
        record = SimRecord("spo2_sample", raw, truth={"spo2_pct": spo2, "pulse_bpm": pulse})
        self.produced.append(record)
        self.samples.append(record)
        return record

    def _catch_up(self) -> None:
        if self.interval_s <= 0 or self._started is None:
            return
        due = int((self.local_now() - self._started).total_seconds() // self.interval_s)
        while self._generated < due:
            self._generated += 1
            self.store_normal(self._started + timedelta(seconds=self._generated * self.interval_s))

    # -- GATT behaviour ---------------------------------------------------------------------
    def on_connected(self, link: SimLink) -> None:
        self._catch_up()

    def on_subscribed(self, link: SimLink, uuid16: int) -> None:
        if uuid16 == CHAR_CONTINUOUS:
            self.spawn(self._stream(link))

    async def _stream(self, link: SimLink) -> None:
        while self.samples and link.is_connected:
            await asyncio.sleep(self.continuous_period_s)
            record = self.samples[0]
            if not link.notify(CHAR_CONTINUOUS, record.raw):
                return
            record.delivered = True
            self.samples.pop(0)

    async def write(self, link: SimLink, uuid16: int, data: bytes) -> None:
        if uuid16 != CHAR_RACP:
            await super().write(link, uuid16, data)
            return
        if not link.subscribed(CHAR_RACP):
            raise OSError("ATT error 0x81: client characteristic configuration descriptor not enabled")
        opcode, operator = (data[0] if data else 0), (data[1] if len(data) > 1 else None)
        if opcode == 0x03:
            self._abort = True
            self.spawn(self._answer(link, racp_response(0x03, 0x01 if self._busy else 0x07)))
            return
        if self._busy:
            raise OSError("ATT error 0x80: procedure already in progress")
        if opcode not in (0x01, 0x04):
            self.spawn(self._answer(link, racp_response(opcode, 0x02)))
            return
        if operator != 0x01 or len(data) != 2:
            self.spawn(self._answer(link, racp_response(opcode, 0x04 if operator else 0x03)))
            return
        self._busy, self._abort = True, False
        if opcode == 0x04:
            self.spawn(self._answer(link, racp_count(len(self.records))))
        else:
            self.spawn(self._report(link, list(self.records)))

    async def _answer(self, link: SimLink, frame: bytes) -> None:
        await asyncio.sleep(0.001)
        self._busy = False
        link.notify(CHAR_RACP, frame)

    async def _report(self, link: SimLink, records: list[SimRecord]) -> None:
        try:
            for record in records:
                await asyncio.sleep(0.001)
                if self._abort or not link.is_connected:
                    return
                if link.notify(CHAR_SPOT_CHECK, record.raw):
                    record.delivered = True
            await asyncio.sleep(0.001)
            link.notify(CHAR_RACP, racp_response(0x01, 0x01 if records else 0x06))
        finally:
            self._busy = False
