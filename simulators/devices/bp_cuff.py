"""A simulated Blood Pressure Service 0x1810 cuff (BPS 1.0: no RACP, no sequence numbers).

Stored readings are pushed as 0x2A35 indications as soon as the central enables the CCCD; each
counts as delivered once the indication is confirmed (the callback returned), exactly the
hand-over a real cuff makes, so the gateway must commit it before doing anything else. Live
measurements are preceded by 0x2A36 Intermediate Cuff Pressure notifications.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from gateway.contract import KPA_TO_MMHG
from simulators.devices.encoding import SFLOAT_NAN, date_time, sfloat, sfloat_word
from simulators.devices.radio import SimDevice, SimLink, SimRecord

SERVICE = 0x1810
CHAR_MEASUREMENT = 0x2A35
CHAR_ICP = 0x2A36
CHAR_FEATURE = 0x2A49
KPA_PER_MMHG = 1 / float(KPA_TO_MMHG)


def encode_measurement(
    systolic: float | None,
    diastolic: float | None,
    mean_arterial: float | None,
    *,
    kpa: bool = False,
    timestamp: datetime | None = None,
    pulse: float | None = None,
    user_id: int | None = None,
    status: int | None = None,
    beurer_bm85: bool = False,
) -> bytes:
    """A 0x2A35 value; ``None`` pressures encode as SFLOAT NaN (a failed measurement).

    ``beurer_bm85`` sends what that cuff sends: pulse and status big-endian, and the user ID byte
    present without its flag bit.
    """
    flags = (0x01 if kpa else 0) | (0x02 if timestamp else 0) | (0x04 if pulse is not None else 0)
    flags |= (0x08 if user_id is not None and not beurer_bm85 else 0) | (0x10 if status is not None else 0)
    order: Literal["little", "big"] = "big" if beurer_bm85 else "little"

    def pressure(v: float | None) -> bytes:
        if v is None:
            return sfloat_word(SFLOAT_NAN)
        return sfloat(round(v * KPA_PER_MMHG * 10), -1) if kpa else sfloat(round(v))

    out = bytes((flags,)) + pressure(systolic) + pressure(diastolic) + pressure(mean_arterial)
    if timestamp:
        out += date_time(timestamp)
    if pulse is not None:
        out += sfloat(round(pulse))[::-1] if beurer_bm85 else sfloat(round(pulse))
    if user_id is not None:
        out += bytes((user_id,))
    if status is not None:
        out += status.to_bytes(2, order)
    return out


@dataclass
class BpCuff(SimDevice):
    kpa: bool = False
    with_timestamp: bool = True
    with_optional: bool = True  # pulse, user id and status fields
    duplicate_indications: bool = False
    beurer_bm85: bool = False  # big-endian pulse/status, user ID without its flag (a quirky cuff)
    interval_s: float = 0.0
    rng: random.Random = field(default_factory=random.Random)
    pending: list[SimRecord] = field(default_factory=list)
    _started: datetime | None = None
    _generated: int = 0
    _dropped_once: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        self.service_uuid = SERVICE
        self._started = self.local_now()

    def characteristics(self) -> dict[int, str]:
        chars = super().characteristics()
        chars.update({CHAR_MEASUREMENT: "indicate", CHAR_ICP: "notify", CHAR_FEATURE: "read"})
        return chars

    def read(self, uuid16: int) -> bytes:
        if uuid16 == CHAR_FEATURE:
            return (0x0007).to_bytes(2, "little")
        return super().read(uuid16)

    # -- producing readings -----------------------------------------------------------------
    def store(self, systolic: float | None, diastolic: float | None, *, when: datetime | None = None,
              pulse: float | None = 72, status: int = 0, user_id: int = 1) -> SimRecord:
        """Take a measurement now (or at ``when`` on the device clock) and keep it until delivered."""
        mean = None if systolic is None or diastolic is None else diastolic + (systolic - diastolic) / 3
        raw = encode_measurement(
            systolic, diastolic, mean, kpa=self.kpa,
            timestamp=(when or self.local_now()) if self.with_timestamp else None,
            pulse=pulse if self.with_optional else None,
            user_id=user_id if self.with_optional else None,
            status=status if self.with_optional else None, beurer_bm85=self.beurer_bm85,
        )
        record = SimRecord("blood_pressure", raw)
        self.produced.append(record)
        self.pending.append(record)
        return record

    def store_corrupt(self) -> SimRecord:
        """A truncated frame (flags promise a time stamp that is not there)."""
        record = SimRecord("corrupt", bytes((0x02,)) + sfloat(120) + sfloat(80))
        self.produced.append(record)
        self.pending.append(record)
        return record

    def store_normal(self, when: datetime | None = None) -> SimRecord:
        s = self.rng.randint(112, 134)
        return self.store(s, s - self.rng.randint(35, 50), when=when, pulse=self.rng.randint(58, 88))

    def _catch_up(self) -> None:
        """Readings the patient took since the last connection (one per ``interval_s``)."""
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
        if uuid16 == CHAR_MEASUREMENT:
            self.spawn(self._push(link))

    async def _push(self, link: SimLink) -> None:
        for record in list(self.pending):
            await asyncio.sleep(0.001)
            if not link.is_connected:
                return
            if link.subscribed(CHAR_ICP):
                for cuff in (40, 120, 160):
                    link.notify(CHAR_ICP, encode_measurement(cuff, None, None, kpa=self.kpa))
            if not link.notify(CHAR_MEASUREMENT, record.raw):
                return
            record.delivered = True  # indication confirmed: the cuff forgets it
            self.pending.remove(record)
            if self.duplicate_indications:
                link.notify(CHAR_MEASUREMENT, record.raw)
            link.sent_in_connection += 1
            if (self.drop_after is not None and not self._dropped_once
                    and link.sent_in_connection >= self.drop_after):
                self._dropped_once = True
                link.drop()
                return
