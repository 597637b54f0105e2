"""Bare IEEE-11073 numbers as byte strings (the decode command's ``sfloat`` / ``float32``, for debugging)."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.gatt._wire import Reader, require_layout
from gateway.gatt.ieee11073 import MedFloat

__all__ = ["RawNumber", "parse_float32_bytes", "parse_sfloat_bytes"]


@dataclass(frozen=True, slots=True)
class RawNumber:
    value: MedFloat
    raw_hex: str
    warnings: tuple[str, ...]


def parse_sfloat_bytes(data: bytes) -> RawNumber:
    """Two little-endian bytes (``BD F0`` → 18.9)."""
    data = bytes(data)
    warnings = require_layout(data, "sfloat", [("sfloat", 2)])
    return RawNumber(Reader(data, "sfloat").sfloat("sfloat"), data.hex(), tuple(warnings))


def parse_float32_bytes(data: bytes) -> RawNumber:
    """Four little-endian bytes (``87 D6 12 FE`` → 12345.67)."""
    data = bytes(data)
    warnings = require_layout(data, "float32", [("float32", 4)])
    return RawNumber(Reader(data, "float32").float32("float32"), data.hex(), tuple(warnings))
