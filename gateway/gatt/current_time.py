"""Current Time Service 0x1805: Current Time 0x2A2B (read and write) and Local Time Information 0x2A0F.

The gateway reads 0x2A2B on every connect to measure ``device_clock − gateway_clock`` (both local wall
clocks) and writes it where the device allows.  Decoding follows the Date Time rules (unknown date →
``None``, out-of-range fields refused); a reserved day of week or RFU adjust-reason bits decode with
warnings.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from gateway.gatt._wire import Reader, require_layout
from gateway.gatt.datetime_ import DATE_TIME_SIZE, encode_date_time, read_date_time

__all__ = [
    "DAY_OF_WEEK_NAMES",
    "AdjustReason",
    "CurrentTime",
    "LocalTimeInformation",
    "encode_current_time",
    "parse_current_time",
    "parse_local_time_information",
]

DAY_OF_WEEK_NAMES = {
    0: "unknown",
    1: "monday",
    2: "tuesday",
    3: "wednesday",
    4: "thursday",
    5: "friday",
    6: "saturday",
    7: "sunday",
}


class AdjustReason(enum.IntFlag):
    MANUAL_TIME_UPDATE = 0x01
    EXTERNAL_REFERENCE_TIME_UPDATE = 0x02
    CHANGE_OF_TIME_ZONE = 0x04
    CHANGE_OF_DST = 0x08


_ADJUST_RFU = 0xF0


@dataclass(frozen=True, slots=True)
class CurrentTime:
    """A decoded 0x2A2B value.  ``fractions256`` counts 1/256 s."""

    timestamp: datetime | None
    day_of_week: int
    fractions256: int
    adjust_reason: AdjustReason
    adjust_reason_raw: int
    raw_hex: str
    warnings: tuple[str, ...]

    @property
    def day_of_week_name(self) -> str:
        return DAY_OF_WEEK_NAMES.get(self.day_of_week, f"reserved_{self.day_of_week}")

    @property
    def adjust_reason_names(self) -> list[str]:
        return [bit.name.lower() for bit in AdjustReason if bit.name and self.adjust_reason & bit]

    @property
    def seconds_fraction(self) -> float:
        return self.fractions256 / 256


def parse_current_time(data: bytes) -> CurrentTime:
    """Parse a 0x2A2B value (10 bytes)."""
    data = bytes(data)
    layout = [("date_time", DATE_TIME_SIZE), ("day_of_week", 1), ("fractions256", 1), ("adjust_reason", 1)]
    warnings = require_layout(data, "2A2B", layout)
    reader = Reader(data, "2A2B")
    timestamp = read_date_time(reader, "date_time")
    day_of_week = reader.u8("day_of_week")
    fractions = reader.u8("fractions256")
    adjust_raw = reader.u8("adjust_reason")
    if day_of_week not in DAY_OF_WEEK_NAMES:
        warnings.append(f"reserved day of week {day_of_week}")
    elif timestamp is not None and day_of_week != 0 and day_of_week != timestamp.isoweekday():
        warnings.append(f"day of week {DAY_OF_WEEK_NAMES[day_of_week]} does not match {timestamp.date()}")
    if adjust_raw & _ADJUST_RFU:
        warnings.append(f"RFU adjust reason bits set: 0x{adjust_raw & _ADJUST_RFU:02X}")
    return CurrentTime(
        timestamp=timestamp,
        day_of_week=day_of_week,
        fractions256=fractions,
        adjust_reason=AdjustReason(adjust_raw & ~_ADJUST_RFU & 0xFF),
        adjust_reason_raw=adjust_raw,
        raw_hex=data.hex(),
        warnings=tuple(warnings),
    )


def encode_current_time(
    dt: datetime,
    day_of_week: int | None = None,
    fractions256: int | None = None,
    adjust_reason: AdjustReason = AdjustReason.MANUAL_TIME_UPDATE,
) -> bytes:
    """The 10-byte 0x2A2B value to write for the wall-clock time ``dt``.

    The device clock has no zone: pass the gateway's *local* time (an aware ``dt`` is written as its
    own wall-clock fields).  ``day_of_week`` defaults to ``dt.isoweekday()`` and ``fractions256`` to
    ``dt.microsecond`` in 1/256 s.
    """
    dow = dt.isoweekday() if day_of_week is None else day_of_week
    if not 0 <= dow <= 7:
        raise ValueError(f"day of week {dow} out of range 0..7")
    fractions = dt.microsecond * 256 // 1_000_000 if fractions256 is None else fractions256
    if not 0 <= fractions <= 255:
        raise ValueError(f"fractions256 {fractions} out of range 0..255")
    reason = int(adjust_reason)
    if not 0 <= reason <= 0x0F:
        raise ValueError(f"adjust reason 0x{reason:02X} has RFU bits")
    return encode_date_time(dt) + bytes((dow, fractions, reason))


@dataclass(frozen=True, slots=True)
class LocalTimeInformation:
    """A decoded 0x2A0F value.  ``None`` means unknown (time zone -128, DST 255)."""

    time_zone_minutes: int | None
    dst_offset_minutes: int | None
    raw_hex: str
    warnings: tuple[str, ...]


_DST_MINUTES = {0: 0, 2: 30, 4: 60, 8: 120}


def parse_local_time_information(data: bytes) -> LocalTimeInformation:
    """Parse a 0x2A0F value: time zone (sint8, 15-minute steps) + DST offset code (uint8)."""
    data = bytes(data)
    warnings = require_layout(data, "2A0F", [("time_zone", 1), ("dst_offset", 1)])
    reader = Reader(data, "2A0F")
    zone = reader.s8("time_zone")
    dst = reader.u8("dst_offset")
    zone_minutes: int | None = None
    if zone != -128:
        if not -48 <= zone <= 56:
            raise reader.fail(f"time_zone {zone} out of range -48..56 (or -128 unknown)")
        zone_minutes = zone * 15
    dst_minutes: int | None = None
    if dst != 255:
        if dst not in _DST_MINUTES:
            warnings.append(f"reserved DST offset code {dst}")
        dst_minutes = _DST_MINUTES.get(dst)
    return LocalTimeInformation(zone_minutes, dst_minutes, data.hex(), tuple(warnings))
