"""IEEE-11073-20601 SFLOAT (16 bit) and FLOAT (32 bit) numbers.

Specials (NaN, NRes, ±INF, reserved) are matched on the whole raw word (exponent 0) before any sign
extension and are kept as :class:`Special`; they never become numbers (DOMAIN A1, A7.2).  Ordinary
values keep their exact mantissa and exponent; :attr:`MedFloat.value` converts through
:class:`decimal.Decimal` so ``189e-1`` is the float nearest to 18.9, not ``189 * 0.1``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import Decimal

__all__ = [
    "MedFloat",
    "Special",
    "decode_float32",
    "decode_sfloat",
    "encode_float32",
    "encode_sfloat",
    "exact_float",
]


class Special(enum.Enum):
    """IEEE-11073 special values; ``.value`` is the string the decode command prints."""

    NAN = "NaN"
    NRES = "NRes"
    POSITIVE_INFINITY = "+INF"
    NEGATIVE_INFINITY = "-INF"
    RESERVED = "reserved"


_SFLOAT_SPECIALS = {
    0x07FF: Special.NAN,
    0x0800: Special.NRES,
    0x07FE: Special.POSITIVE_INFINITY,
    0x0802: Special.NEGATIVE_INFINITY,
    0x0801: Special.RESERVED,
}
_FLOAT_SPECIALS = {
    0x007FFFFF: Special.NAN,
    0x00800000: Special.NRES,
    0x007FFFFE: Special.POSITIVE_INFINITY,
    0x00800002: Special.NEGATIVE_INFINITY,
    0x00800001: Special.RESERVED,
}
_SFLOAT_RAW = {v: k for k, v in _SFLOAT_SPECIALS.items()}
_FLOAT_RAW = {v: k for k, v in _FLOAT_SPECIALS.items()}


def exact_float(mantissa: int, exponent: int) -> float:
    """``mantissa × 10**exponent`` rounded once, to the nearest float (so 189e-1 prints as 18.9)."""
    return float(Decimal(mantissa).scaleb(exponent))


@dataclass(frozen=True, slots=True)
class MedFloat:
    """One decoded IEEE-11073 number: either ``special`` is set, or ``mantissa × 10**exponent``.

    ``raw`` is the little-endian word as received (16 or 32 bit, see ``bits``).
    """

    raw: int
    bits: int
    mantissa: int
    exponent: int
    special: Special | None = None

    @property
    def is_number(self) -> bool:
        return self.special is None

    @property
    def is_absent(self) -> bool:
        """NaN, NRes and reserved mean "no value" (measurement failed / not at this resolution)."""
        return self.special in (Special.NAN, Special.NRES, Special.RESERVED)

    @property
    def decimal(self) -> Decimal | None:
        """The exact value, or ``None`` for a special."""
        if self.special is not None:
            return None
        return Decimal(self.mantissa).scaleb(self.exponent)

    @property
    def value(self) -> float | None:
        """The value as a float, or ``None`` for any special (never 2047)."""
        if self.special is not None:
            return None
        return exact_float(self.mantissa, self.exponent)

    def scaled(self, power_of_ten: int) -> float | Special:
        """The value × 10**power_of_ten, exact in decimal (unit conversion kg/L→mg/dL is ×10**5)."""
        if self.special is not None:
            return self.special
        return exact_float(self.mantissa, self.exponent + power_of_ten)

    def json_value(self) -> float | str:
        """What the decode command prints: a number, or the special's string."""
        if self.special is not None:
            return self.special.value
        return exact_float(self.mantissa, self.exponent)

    def __str__(self) -> str:
        if self.special is not None:
            return self.special.value
        return str(self.decimal)


def _signed(value: int, bits: int) -> int:
    sign = 1 << (bits - 1)
    return (value ^ sign) - sign


def decode_sfloat(raw16: int) -> MedFloat:
    """Decode a 16-bit SFLOAT word (already assembled little-endian): 4-bit exponent, 12-bit mantissa."""
    if not 0 <= raw16 <= 0xFFFF:
        raise ValueError(f"SFLOAT word out of range: {raw16}")
    special = _SFLOAT_SPECIALS.get(raw16)
    if special is not None:
        return MedFloat(raw16, 16, 0, 0, special)
    return MedFloat(raw16, 16, _signed(raw16 & 0x0FFF, 12), _signed(raw16 >> 12, 4))


def decode_float32(raw32: int) -> MedFloat:
    """Decode a 32-bit FLOAT word (already assembled little-endian): 8-bit exponent, 24-bit mantissa."""
    if not 0 <= raw32 <= 0xFFFFFFFF:
        raise ValueError(f"FLOAT word out of range: {raw32}")
    special = _FLOAT_SPECIALS.get(raw32)
    if special is not None:
        return MedFloat(raw32, 32, 0, 0, special)
    return MedFloat(raw32, 32, _signed(raw32 & 0xFFFFFF, 24), _signed(raw32 >> 24, 8))


def encode_sfloat(mantissa: int, exponent: int) -> int:
    """The raw word for ``mantissa × 10**exponent``; refuses mantissas that would collide with specials."""
    if not -2045 <= mantissa <= 2045 or not -8 <= exponent <= 7:
        raise ValueError(f"SFLOAT cannot hold {mantissa}e{exponent}")
    return ((exponent & 0xF) << 12) | (mantissa & 0x0FFF)


def encode_sfloat_special(special: Special) -> int:
    """The raw SFLOAT word of a special value."""
    return _SFLOAT_RAW[special]


def encode_float32(mantissa: int, exponent: int) -> int:
    """The raw FLOAT word for ``mantissa × 10**exponent``."""
    if not -(2**23 - 3) <= mantissa <= 2**23 - 3 or not -128 <= exponent <= 127:
        raise ValueError(f"FLOAT cannot hold {mantissa}e{exponent}")
    return ((exponent & 0xFF) << 24) | (mantissa & 0xFFFFFF)


def encode_float32_special(special: Special) -> int:
    """The raw FLOAT word of a special value."""
    return _FLOAT_RAW[special]
