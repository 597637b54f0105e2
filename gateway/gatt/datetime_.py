"""Date Time (0x2A08 layout, 7 bytes): the device's zone-less wall clock.

Year, month or day 0 means "not known" and decodes to ``None`` (never an invented date, DOMAIN A1).
Any field outside its range (year 1..1581, month 13, hour 24, 31 February ...) is refused with
:class:`~gateway.errors.MalformedMeasurement`, unlike lenient calendars that roll over.  Hours,
minutes and seconds are range-checked even when the date is unknown.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import datetime

from gateway.gatt._wire import Reader, require_layout

__all__ = [
    "DATE_TIME_SIZE",
    "DateTimeValue",
    "encode_date_time",
    "parse_date_time",
    "read_date_time",
]

DATE_TIME_SIZE = 7
_CHAR = "2A08"


def read_date_time(reader: Reader, field_name: str) -> datetime | None:
    """Read 7 bytes at the reader's cursor as a naive :class:`datetime`, or ``None`` if unknown."""
    year = reader.u16(f"{field_name}.year")
    month = reader.u8(f"{field_name}.month")
    day = reader.u8(f"{field_name}.day")
    hours = reader.u8(f"{field_name}.hours")
    minutes = reader.u8(f"{field_name}.minutes")
    seconds = reader.u8(f"{field_name}.seconds")
    checks = (
        ("year", year, 1582, 9999),
        ("month", month, 1, 12),
        ("day", day, 1, 31),
        ("hours", hours, 0, 23),
        ("minutes", minutes, 0, 59),
        ("seconds", seconds, 0, 59),
    )
    for name, value, low, high in checks:
        unknown_allowed = name in ("year", "month", "day") and value == 0
        if not unknown_allowed and not low <= value <= high:
            allowed = f"0 or {low}..{high}" if name in ("year", "month", "day") else f"{low}..{high}"
            raise reader.fail(f"{field_name}.{name} {value} out of range {allowed}")
    if year == 0 or month == 0 or day == 0:
        return None
    last_day = calendar.monthrange(year, month)[1]
    if day > last_day:
        raise reader.fail(f"{field_name}.day {day} out of range for {year:04d}-{month:02d} (1..{last_day})")
    return datetime(year, month, day, hours, minutes, seconds)  # device wall clock: no zone


def encode_date_time(value: datetime | None) -> bytes:
    """The 7-byte Date Time of ``value``'s wall-clock fields (``None`` → all-zero "unknown")."""
    if value is None:
        return bytes(DATE_TIME_SIZE)
    if not 1582 <= value.year <= 9999:
        raise ValueError(f"Date Time year {value.year} out of range 1582..9999")
    return value.year.to_bytes(2, "little") + bytes(
        (value.month, value.day, value.hour, value.minute, value.second)
    )


@dataclass(frozen=True, slots=True)
class DateTimeValue:
    """A decoded 0x2A08 Date Time characteristic."""

    timestamp: datetime | None
    raw_hex: str
    warnings: tuple[str, ...] = field(default=())


def parse_date_time(data: bytes) -> DateTimeValue:
    """Parse a Date Time (0x2A08) characteristic value."""
    warnings = require_layout(data, _CHAR, [("date_time", DATE_TIME_SIZE)])
    reader = Reader(data, _CHAR)
    timestamp = read_date_time(reader, "date_time")
    return DateTimeValue(timestamp=timestamp, raw_hex=data.hex(), warnings=tuple(warnings))
