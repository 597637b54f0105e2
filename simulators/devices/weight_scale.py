"""A simulated Weight Scale Service 0x181D scale (WSS 1.0: no RACP, no sequence numbers).

Stored weighings are pushed as 0x2A9D indications once the central enables the CCCD; each is
forgotten once its indication is confirmed, the same hand-over as a BP cuff.  The bytes come from
this module's own encoder (never the gateway's parser), with the fixed LSBs of the spec: 0.005 kg
or 0.01 lb, height 0.001 m or 0.1 in, BMI 0.1 kg/m².  ``truth`` on every record says what the
patient really weighed, in kg, so a test can compare it with what was stored.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from gateway.contract import KG_PER_LB, M_PER_IN
from simulators.devices.encoding import date_time, u16
from simulators.devices.radio import SimDevice, SimLink, SimRecord

SERVICE = 0x181D
CHAR_MEASUREMENT = 0x2A9D
CHAR_FEATURE = 0x2A9E
UNSUCCESSFUL = 0xFFFF


def encode_weight(
    kg: float | None,
    *,
    imperial: bool = False,
    timestamp: datetime | None = None,
    user_id: int | None = None,
    height_m: float | None = None,
    vendor_bits: int = 0,
) -> bytes:
    """A 0x2A9D value; ``kg=None`` sends 0xFFFF "measurement unsuccessful" (no BMI/height then)."""
    flags = (0x01 if imperial else 0) | (0x02 if timestamp else 0) | (0x04 if user_id is not None else 0)
    with_bmi = height_m is not None and kg is not None
    flags |= (0x08 if with_bmi else 0) | vendor_bits
    weight = UNSUCCESSFUL
    if kg is not None:
        weight = round(kg / float(KG_PER_LB) / 0.01) if imperial else round(kg / 0.005)
    out = bytes((flags,)) + u16(weight)
    if timestamp:
        out += date_time(timestamp)
    if user_id is not None:
        out += bytes((user_id,))
    if with_bmi:
        assert kg is not None and height_m is not None
        height = round(height_m / float(M_PER_IN) / 0.1) if imperial else round(height_m / 0.001)
        out += u16(round(kg / height_m**2 / 0.1)) + u16(height)
    return out


@dataclass
class WeightScale(SimDevice):
    imperial: bool = False
    with_timestamp: bool = True
    user_id: int | None = 1
    height_m: float | None = 1.72
    dry_weight_kg: float = 80.0
    interval_s: float = 0.0
    rng: random.Random = field(default_factory=random.Random)
    pending: list[SimRecord] = field(default_factory=list)
    _started: datetime | None = None
    _generated: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        self.service_uuid = SERVICE
        self._started = self.local_now()

    def characteristics(self) -> dict[int, str]:
        chars = super().characteristics()
        chars.update({CHAR_MEASUREMENT: "indicate", CHAR_FEATURE: "read"})
        return chars

    def read(self, uuid16: int) -> bytes:
        if uuid16 == CHAR_FEATURE:
            # time stamp, multiple users, BMI; weight resolution code 5 (0.02 kg), height code 3 (1 mm)
            return (0x07 | 5 << 3 | 3 << 7).to_bytes(4, "little")
        return super().read(uuid16)

    def store(self, kg: float | None, *, when: datetime | None = None, vendor_bits: int = 0) -> SimRecord:
        """A weighing now (or at ``when`` on the device clock), kept until delivered."""
        raw = encode_weight(
            kg,
            imperial=self.imperial,
            timestamp=(when or self.local_now()) if self.with_timestamp else None,
            user_id=self.user_id,
            height_m=self.height_m,
            vendor_bits=vendor_bits,
        )
        record = SimRecord("weight", raw, truth={"weight_kg": kg})
        self.produced.append(record)
        self.pending.append(record)
        return record

    def store_normal(self, when: datetime | None = None) -> SimRecord:
        return self.store(round(self.dry_weight_kg + self.rng.uniform(-0.6, 0.6), 2), when=when)

    def _catch_up(self) -> None:
        if self.interval_s <= 0 or self._started is None:
            return
        due = int((self.local_now() - self._started).total_seconds() // self.interval_s)
        while self._generated < due:
            self._generated += 1
            self.store_normal(self._started + timedelta(seconds=self._generated * self.interval_s))

    def on_connected(self, link: SimLink) -> None:
        self._catch_up()

    def on_subscribed(self, link: SimLink, uuid16: int) -> None:
        if uuid16 == CHAR_MEASUREMENT:
            self.spawn(self._push(link))

    async def _push(self, link: SimLink) -> None:
        for record in list(self.pending):
            await asyncio.sleep(0.001)
            if not link.is_connected or not link.notify(CHAR_MEASUREMENT, record.raw):
                return
            record.delivered = True  # indication confirmed: the scale forgets it
            self.pending.remove(record)
