"""A simulated Glucose Service 0x1808 meter with stored records and a Record Access Control Point.

Records stay on the meter (it never deletes); the central downloads with RACP. Supported: report
stored records (all, ≤, ≥, range by sequence number, first, last), report number of records,
abort; delete and unknown op codes answer "op code not supported"; a bad operator or operand gets
its response code; a request while one runs gets ATT error 0x80; writing the RACP before its
indications are enabled gets ATT error 0x81 (DOMAIN A3.4).
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from gateway.contract import MMOL_L_TO_MG_DL
from simulators.devices.encoding import (
    SFLOAT_POS_INF,
    date_time,
    racp_count,
    racp_response,
    sfloat,
    sfloat_word,
    u16,
)
from simulators.devices.radio import SimDevice, SimLink, SimRecord

_MMOL_L_TO_MG_DL = float(MMOL_L_TO_MG_DL)

SERVICE = 0x1808
CHAR_MEASUREMENT = 0x2A18
CHAR_CONTEXT = 0x2A34
CHAR_FEATURE = 0x2A51
CHAR_RACP = 0x2A52

TYPE_CAPILLARY_WHOLE_BLOOD = 1
TYPE_CONTROL_SOLUTION = 10
LOCATION_FINGER = 1
LOCATION_CONTROL_SOLUTION = 4
MEAL_PREPRANDIAL = 1
MEAL_POSTPRANDIAL = 2


def encode_measurement(
    seq: int,
    base_time: datetime | None,
    mg_dl: float | None,
    *,
    mol: bool = False,
    time_offset_min: int | None = None,
    sample_type: int = TYPE_CAPILLARY_WHOLE_BLOOD,
    location: int = LOCATION_FINGER,
    status: int | None = None,
    context_follows: bool = False,
    concentration_word: int | None = None,
) -> bytes:
    """A 0x2A18 value. ``mg_dl`` None omits the concentration; ``concentration_word`` forces a special."""
    has_conc = mg_dl is not None or concentration_word is not None
    flags = (0x01 if time_offset_min is not None else 0) | (0x02 if has_conc else 0)
    flags |= (0x04 if mol else 0) | (0x08 if status is not None else 0) | (0x10 if context_follows else 0)
    out = bytes((flags,)) + u16(seq) + date_time(base_time)
    if time_offset_min is not None:
        out += time_offset_min.to_bytes(2, "little", signed=True)
    if has_conc:
        if concentration_word is not None:
            out += sfloat_word(concentration_word)
        elif mol:
            out += sfloat(round(mg_dl / _MMOL_L_TO_MG_DL * 10), -4)  # type: ignore[operator]  # has_conc
        else:
            out += sfloat(round(mg_dl), -5)  # type: ignore[arg-type]  # kg/L: mg/dL × 1e-5
        out += bytes(((location << 4) | sample_type,))
    if status is not None:
        out += u16(status)
    return out


def encode_context(seq: int, meal: int) -> bytes:
    """A 0x2A34 value carrying only the meal field (flags b1)."""
    return bytes((0x02,)) + u16(seq) + bytes((meal,))


@dataclass
class GlucoseMeter(SimDevice):
    mol: bool = False
    interval_s: float = 0.0
    rng: random.Random = field(default_factory=random.Random)
    next_seq: int = 1
    records: list[SimRecord] = field(default_factory=list)
    reversed_sequence: bool = False  # TaiDoc: the newest record is reported as 0, older ones count up
    live_push: bool = False  # Roche: a reading taken while connected is notified without a request
    _link: SimLink | None = None
    _busy: bool = False
    _abort: bool = False
    _started: datetime | None = None
    _generated: int = 0
    _dropped_once: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        self.service_uuid = SERVICE
        self._started = self.local_now()

    def characteristics(self) -> dict[int, str]:
        chars = super().characteristics()
        chars.update({CHAR_MEASUREMENT: "notify", CHAR_CONTEXT: "notify", CHAR_FEATURE: "read",
                      CHAR_RACP: "write,indicate"})
        return chars

    def read(self, uuid16: int) -> bytes:
        if uuid16 == CHAR_FEATURE:
            return (0x0023).to_bytes(2, "little")
        return super().read(uuid16)

    # -- producing records ------------------------------------------------------------------
    def _add(self, kind: str, raw: bytes, seq: int | None, context: bytes | None = None) -> SimRecord:
        record = SimRecord(kind, raw, seq, context)
        self.produced.append(record)
        self.records.append(record)
        link = self._link
        if self.live_push and link is not None and link.subscribed(CHAR_MEASUREMENT):
            self.spawn(self._push_live(link, record))
        return record

    async def _push_live(self, link: SimLink, record: SimRecord) -> None:
        await asyncio.sleep(0.001)
        if link.notify(CHAR_MEASUREMENT, record.raw):
            if record.context is not None:
                link.notify(CHAR_CONTEXT, record.context)
            record.delivered = True

    def reset_memory(self, next_seq: int = 1) -> None:
        """A memory reset or battery swap: stored records are gone and numbering restarts."""
        self.records.clear()
        self.next_seq = next_seq & 0xFFFF

    def _as_sent(self, records: list[SimRecord]) -> list[tuple[bytes, bytes | None]]:
        """The bytes of ``records`` as this meter numbers them (reversed on a TaiDoc-like meter)."""
        if not self.reversed_sequence:
            return [(r.raw, r.context) for r in records]
        ordered = sorted((r for r in self.records if r.sequence_number is not None),
                         key=lambda r: r.sequence_number or 0)
        rank = {id(r): len(ordered) - 1 - i for i, r in enumerate(ordered)}
        out: list[tuple[bytes, bytes | None]] = []
        for r in records:
            seq = u16(rank[id(r)])
            context = r.context[:1] + seq + r.context[3:] if r.context is not None else None
            out.append((r.raw[:1] + seq + r.raw[3:], context))
        return out

    def store(self, mg_dl: float | None, *, when: datetime | None = None, meal: int | None = None,
              status: int | None = None, time_offset_min: int | None = 0,
              concentration_word: int | None = None, control_solution: bool = False) -> SimRecord:
        seq = self.next_seq
        self.next_seq = (self.next_seq + 1) & 0xFFFF
        raw = encode_measurement(
            seq, when or self.local_now(), mg_dl, mol=self.mol, time_offset_min=time_offset_min,
            sample_type=TYPE_CONTROL_SOLUTION if control_solution else TYPE_CAPILLARY_WHOLE_BLOOD,
            location=LOCATION_CONTROL_SOLUTION if control_solution else LOCATION_FINGER,
            status=status, context_follows=meal is not None, concentration_word=concentration_word,
        )
        context = encode_context(seq, meal) if meal is not None else None
        return self._add("control_solution" if control_solution else "glucose", raw, seq, context)

    def store_high(self, when: datetime | None = None) -> SimRecord:
        """A meter "HI": +INFINITY with the result-high annunciation (bit 5)."""
        return self.store(None, when=when, status=0x0020, concentration_word=SFLOAT_POS_INF)

    def store_corrupt(self) -> SimRecord:
        """A truncated 0x2A18 (flags promise a concentration that is not there)."""
        seq = self.next_seq
        self.next_seq = (self.next_seq + 1) & 0xFFFF
        return self._add("corrupt", bytes((0x02,)) + u16(seq) + date_time(self.local_now()), seq)

    def store_normal(self, when: datetime | None = None) -> SimRecord:
        meal = self.rng.choice((None, MEAL_PREPRANDIAL, MEAL_POSTPRANDIAL))
        return self.store(self.rng.randint(80, 160), when=when, meal=meal)

    def _catch_up(self) -> None:
        if self.interval_s <= 0 or self._started is None:
            return
        due = int((self.local_now() - self._started).total_seconds() // self.interval_s)
        while self._generated < due:
            self._generated += 1
            self.store_normal(self._started + timedelta(seconds=self._generated * self.interval_s))

    def on_connected(self, link: SimLink) -> None:
        self._link = link
        self._catch_up()

    # -- RACP -------------------------------------------------------------------------------
    async def write(self, link: SimLink, uuid16: int, data: bytes) -> None:
        if uuid16 != CHAR_RACP:
            await super().write(link, uuid16, data)
            return
        if not link.subscribed(CHAR_RACP):
            raise OSError("ATT error 0x81: client characteristic configuration descriptor not enabled")
        if len(data) < 2:
            self.spawn(self._answer(link, racp_response(data[0] if data else 0, 0x05)))
            return
        opcode, operator, operand = data[0], data[1], data[2:]
        if opcode == 0x03:
            if operator != 0x00:
                self.spawn(self._answer(link, racp_response(0x03, 0x03)))
                return
            self._abort = True
            self.spawn(self._answer(link, racp_response(0x03, 0x01 if self._busy else 0x07)))
            return
        if self._busy:
            raise OSError("ATT error 0x80: procedure already in progress")
        if opcode not in (0x01, 0x04):
            self.spawn(self._answer(link, racp_response(opcode, 0x02)))
            return
        selected = self._select(operator, operand)
        if isinstance(selected, int):
            self.spawn(self._answer(link, racp_response(opcode, selected)))
            return
        self._busy = True
        self._abort = False
        if opcode == 0x04:
            self.spawn(self._answer(link, racp_count(len(selected))))
        else:
            self.spawn(self._report(link, selected))

    def _select(self, operator: int, operand: bytes) -> list[SimRecord] | int:
        """Records matching the operator, or a RACP response code for a bad request."""
        # storage order is chronological (what "first"/"last" mean once numbers wrap past 65535)
        stored = [r for r in self.records if r.sequence_number is not None]
        if operator == 0x00:
            return 0x03  # invalid operator
        if operator == 0x01:
            return stored if not operand else 0x05
        if operator in (0x05, 0x06):
            if operand:
                return 0x05
            return stored[:1] if operator == 0x05 else stored[-1:]
        if operator in (0x02, 0x03, 0x04):
            if not operand:
                return 0x05
            if operand[0] == 0x02:
                return 0x09  # user-facing time filter: operand not supported here
            if operand[0] != 0x01:
                return 0x05
            need = 5 if operator == 0x04 else 3
            if len(operand) != need:
                return 0x05
            low = int.from_bytes(operand[1:3], "little")
            if operator == 0x02:
                return [r for r in stored if (r.sequence_number or 0) <= low]
            if operator == 0x03:
                return [r for r in stored if (r.sequence_number or 0) >= low]
            high = int.from_bytes(operand[3:5], "little")
            return [r for r in stored if low <= (r.sequence_number or 0) <= high]
        return 0x04  # operator not supported

    async def _answer(self, link: SimLink, frame: bytes) -> None:
        await asyncio.sleep(0.001)
        self._busy = False
        link.notify(CHAR_RACP, frame)

    async def _report(self, link: SimLink, records: list[SimRecord]) -> None:
        try:
            if not records:
                await asyncio.sleep(0.001)
                link.notify(CHAR_RACP, racp_response(0x01, 0x06))
                return
            for record, (raw, context) in zip(records, self._as_sent(records), strict=True):
                await asyncio.sleep(0.001)
                if self._abort or not link.is_connected:
                    return
                link.notify(CHAR_MEASUREMENT, raw)
                if context is not None:
                    await asyncio.sleep(0.001)
                    link.notify(CHAR_CONTEXT, context)
                record.delivered = True
                link.sent_in_connection += 1
                if (self.drop_after is not None and not self._dropped_once
                        and link.sent_in_connection >= self.drop_after):
                    self._dropped_once = True
                    link.drop()
                    return
            await asyncio.sleep(0.001)
            link.notify(CHAR_RACP, racp_response(0x01, 0x01))
        finally:
            self._busy = False
