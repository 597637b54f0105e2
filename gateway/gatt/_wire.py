"""Bounds-checked reading of a characteristic value (internal to ``gateway.gatt``).

Parsers first declare the fields the flags say are present (:func:`require_layout`), so a short
frame is refused with the names of the missing fields before any slice; then a :class:`Reader`
walks the bytes.  Trailing bytes are *not* an error (DOMAIN A7.1: ``decoded_with_warnings``): the
parser decodes the declared fields and :func:`require_layout` returns a warning naming the extra
bytes.
"""

from __future__ import annotations

from collections.abc import Sequence

from gateway.errors import MalformedMeasurement
from gateway.gatt.ieee11073 import MedFloat, decode_float32, decode_sfloat


def require_layout(
    data: bytes, characteristic: str, layout: Sequence[tuple[str, int]], flags_note: str = ""
) -> list[str]:
    """Refuse ``data`` shorter than ``layout``; return a warning list mentioning trailing bytes."""
    expected = sum(size for _, size in layout)
    if len(data) < expected:
        missing: list[str] = []
        offset = 0
        for name, size in layout:
            if offset + size > len(data):
                got = max(0, len(data) - offset)
                missing.append(name if got == 0 else f"{name} ({got} of {size} bytes)")
            offset += size
        note = f" for {flags_note}" if flags_note else ""
        raise MalformedMeasurement(
            characteristic,
            f"too short: expected {expected} bytes{note}, got {len(data)}; missing {', '.join(missing)}",
            data.hex(),
        )
    if len(data) > expected:
        extra = data[expected:]
        return [f"{len(extra)} trailing byte(s) ignored: {extra.hex()}"]
    return []


class Reader:
    """A cursor over ``data``; every read is bounds-checked and names its field when it fails."""

    __slots__ = ("_data", "_offset", "characteristic")

    def __init__(self, data: bytes, characteristic: str) -> None:
        self._data = data
        self._offset = 0
        self.characteristic = characteristic

    @property
    def offset(self) -> int:
        return self._offset

    def fail(self, reason: str) -> MalformedMeasurement:
        return MalformedMeasurement(self.characteristic, reason, self._data.hex())

    def take(self, size: int, field: str) -> bytes:
        end = self._offset + size
        if end > len(self._data):
            have = len(self._data) - self._offset
            raise self.fail(
                f"too short: missing {field} (needs {size} bytes at offset {self._offset}, has {have})"
            )
        chunk = self._data[self._offset : end]
        self._offset = end
        return chunk

    def u8(self, field: str) -> int:
        return self.take(1, field)[0]

    def s8(self, field: str) -> int:
        return int.from_bytes(self.take(1, field), "little", signed=True)

    def u16(self, field: str) -> int:
        return int.from_bytes(self.take(2, field), "little")

    def s16(self, field: str) -> int:
        return int.from_bytes(self.take(2, field), "little", signed=True)

    def u32(self, field: str) -> int:
        return int.from_bytes(self.take(4, field), "little")

    def sfloat(self, field: str) -> MedFloat:
        return decode_sfloat(self.u16(field))

    def float32(self, field: str) -> MedFloat:
        return decode_float32(self.u32(field))

    def rest(self) -> bytes:
        chunk = self._data[self._offset :]
        self._offset = len(self._data)
        return chunk


def reserved_name(code: int) -> str:
    """Name printed for an RFU enum code (DOMAIN Part B: ``reserved_<n>``)."""
    return f"reserved_{code}"
