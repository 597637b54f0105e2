"""Glucose sequence numbers on the 16-bit circle, and the session's high-water mark (pure).

A meter numbers its records with a uint16 that wraps (65535 is followed by 0) and restarts after a
memory reset or battery swap. These functions tell a wrap from a restart by serial-number
arithmetic (RFC 1982), so the collector never re-downloads on a wrap nor misses a reset.
"""

from __future__ import annotations

from gateway.gatt import GlucoseMeasurement
from gateway.outbox import HighWater

Mark = tuple[str, int, str | None]  # (device_id, seq, base_time): what the outbox stores


def next_sequence(seq: int) -> int:
    """The sequence number after ``seq``: 65535 is followed by 0."""
    return (seq + 1) & 0xFFFF


def sequence_after(a: int, b: int) -> bool:
    """Whether ``a`` comes after ``b`` on the uint16 circle (serial-number arithmetic, RFC 1982).

    ``sequence_after(0, 65535)`` is True (a wrap); ``sequence_after(3, 500)`` is False (went back).
    """
    distance = (a - b) & 0xFFFF
    return 0 < distance < 0x8000


def restart_reason(mark: HighWater, meter_seq: int, meter_base: str | None, *,
                   same_record: bool) -> str | None:
    """Decide from one record of the meter whether its numbering restarted behind ``mark`` (pure).

    ``same_record``: the meter's record *at* our mark (its base time must match what we sent);
    otherwise the meter's newest record (it must not be behind our mark on the circle).
    """
    if same_record or meter_seq == mark.seq:
        if mark.base_time is not None and meter_base is not None and meter_base != mark.base_time:
            return f"record {meter_seq} now has base time {meter_base}, the one we sent had {mark.base_time}"
        return None
    if not sequence_after(meter_seq, mark.seq):
        return f"meter's newest sequence {meter_seq} is behind our mark {mark.seq}"
    return None


def base_iso(m: GlucoseMeasurement) -> str | None:
    """The measurement's device-local base time as ISO text (how marks and resets store it)."""
    return m.base_time.isoformat() if m.base_time is not None else None


class MarkTracker:
    """The newest sequence committed so far in this session (moves only forward on the circle)."""

    def __init__(self, mark: HighWater | None, reliable: bool) -> None:
        self.initial = mark.seq if mark else None
        self._current = mark
        self._previous = mark
        self._reliable = reliable

    def advance(self, device_id: str, seq: int, base_time: str | None) -> Mark | None:
        """The mark to store with this record, or None when it is not newer (or seq is unreliable)."""
        self._previous = self._current
        if not self._reliable:
            return None
        if self._current is not None and not sequence_after(seq, self._current.seq):
            return None
        self._current = HighWater(seq, base_time)
        return (device_id, seq, base_time)

    def undo(self) -> None:
        """The record was refused (outbox full): its mark was not stored."""
        self._current = self._previous
