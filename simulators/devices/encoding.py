"""GATT byte encoders for the simulated devices, written independently of the gateway's parsers.

The simulators must produce the exact bytes a real device sends, so they carry their own encoders
(importing the gateway's code would let one bug hide on both sides of the seam).
"""

from __future__ import annotations

from datetime import datetime

SFLOAT_NAN = 0x07FF
SFLOAT_NRES = 0x0800
SFLOAT_POS_INF = 0x07FE
SFLOAT_NEG_INF = 0x0802


def sfloat(mantissa: int, exponent: int = 0) -> bytes:
    """IEEE-11073 SFLOAT: 4-bit two's-complement exponent over a 12-bit two's-complement mantissa."""
    if not -2045 <= mantissa <= 2045 or not -8 <= exponent <= 7:
        raise ValueError(f"SFLOAT out of range: {mantissa}e{exponent}")
    word = ((exponent & 0xF) << 12) | (mantissa & 0x0FFF)
    return word.to_bytes(2, "little")


def sfloat_word(word: int) -> bytes:
    """A raw SFLOAT word (for the specials NaN, NRes, ±INF)."""
    return word.to_bytes(2, "little")


def sfloat_of(value: float, decimals: int = 0) -> bytes:
    """``value`` with ``decimals`` digits after the point (exponent ``-decimals``)."""
    return sfloat(round(value * 10**decimals), -decimals)


def date_time(value: datetime | None) -> bytes:
    """Date Time (0x2A08 layout): year uint16, month, day, hours, minutes, seconds; None → unknown."""
    if value is None:
        return bytes(7)
    return value.year.to_bytes(2, "little") + bytes(
        (value.month, value.day, value.hour, value.minute, value.second)
    )


def current_time(value: datetime, adjust_reason: int = 0) -> bytes:
    """Current Time 0x2A2B: Date Time + day of week (1 = Monday) + fractions256 + adjust reason."""
    return date_time(value) + bytes((value.isoweekday(), value.microsecond * 256 // 1_000_000, adjust_reason))


def decode_current_time(data: bytes) -> datetime:
    """What a CTS write asks the device to set (the device side of 0x2A2B)."""
    if len(data) < 7:
        raise ValueError("current time write shorter than 7 bytes")
    return datetime(int.from_bytes(data[0:2], "little"), data[2], data[3], data[4], data[5], data[6])


def u16(value: int) -> bytes:
    return (value & 0xFFFF).to_bytes(2, "little")


def racp_response(request_opcode: int, response_code: int) -> bytes:
    """RACP Response Code indication: ``06 00 <request op code> <response code>``."""
    return bytes((0x06, 0x00, request_opcode, response_code))


def racp_count(count: int) -> bytes:
    """RACP Number of Stored Records response: ``05 00 <uint16>``."""
    return bytes((0x05, 0x00)) + u16(count)
