"""What the outbox file remembers per device, next to the readings: the glucose high-water mark
(with the base time of the record it names), the identities already queued, the meter resets
detected, and the Device Information / clock offset.

These live in the same SQLite file as the readings so a mark can be written in the *same*
transaction as the reading it covers (:meth:`gateway.outbox.Outbox.add`): the mark never runs
ahead of what is durably queued.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from gateway.outbox_schema import Transaction, now_iso

SENT_KEEP = 200_000  # identities remembered for re-download dedupe (oldest forgotten first)


@dataclass(frozen=True, slots=True)
class HighWater:
    """The newest glucose record durably queued for a device: its sequence number and base time."""

    seq: int
    base_time: str | None = None  # ISO device-local base time; None when unknown (or an old file)


@dataclass(frozen=True, slots=True)
class SequenceReset:
    device_id: str
    old_seq: int | None
    old_base: str | None
    meter_last: int | None
    reason: str
    detected_at: str


Mark = tuple[str, int] | tuple[str, int, str | None]  # (device_id, seq[, base_time])


class DeviceMemory:
    """Per-device tables of the outbox file (a base of :class:`gateway.outbox.Outbox`)."""

    _db: sqlite3.Connection

    def _tx(self) -> Transaction:
        return Transaction(self._db)

    def _remember(self, message_id: str, device_id: str) -> None:
        cur = self._db.execute("INSERT OR IGNORE INTO sent (message_id, device_id, created_at)"
                               " VALUES (?, ?, ?)", (message_id, device_id, now_iso()))
        if cur.lastrowid and cur.lastrowid % 1000 == 0:  # prune now and then, oldest first
            self._db.execute("DELETE FROM sent WHERE rowid <= ?", (cur.lastrowid - SENT_KEEP,))

    def was_sent(self, message_id: str) -> bool:
        """Whether ``message_id`` was queued with ``remember=True`` (inspection, tests)."""
        row = self._db.execute("SELECT 1 FROM sent WHERE message_id = ?", (message_id,)).fetchone()
        return row is not None

    def high_water(self, device_id: str) -> int | None:
        """The last glucose sequence number durably queued for ``device_id``."""
        row = self._db.execute("SELECT last_seq FROM high_water WHERE device_id = ?", (device_id,)).fetchone()
        return None if row is None else int(row[0])

    def mark(self, device_id: str) -> HighWater | None:
        """The high-water mark with the base time of the record it names (reset detection)."""
        row = self._db.execute("SELECT last_seq, base_time FROM high_water WHERE device_id = ?",
                               (device_id,)).fetchone()
        return None if row is None else HighWater(int(row[0]), row[1])

    def _set_high_water(self, device_id: str, seq: int, base_time: str | None = None) -> None:
        self._db.execute(
            "INSERT INTO high_water (device_id, last_seq, base_time, updated_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (device_id) DO UPDATE SET last_seq = excluded.last_seq,"
            " base_time = excluded.base_time, updated_at = excluded.updated_at",
            (device_id, seq, base_time, now_iso()),
        )

    def set_high_water(self, device_id: str, seq: int, base_time: str | None = None) -> None:
        with self._tx():
            self._set_high_water(device_id, seq, base_time)

    def record_reset(self, device_id: str, meter_last: int | None, reason: str) -> SequenceReset:
        """The meter's sequence went backwards: keep what we knew, then forget the mark.

        One transaction: the reset row (old mark, the meter's newest sequence, why) and the mark's
        removal, so the next download asks for every record (identities already sent are
        remembered and not published again).
        """
        with self._tx():
            old = self.mark(device_id)
            at = now_iso()
            self._db.execute(
                "INSERT INTO sequence_resets (device_id, old_seq, old_base, meter_last, reason, detected_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (device_id, old.seq if old else None, old.base_time if old else None, meter_last, reason, at),
            )
            self._db.execute("DELETE FROM high_water WHERE device_id = ?", (device_id,))
        return SequenceReset(device_id, old.seq if old else None, old.base_time if old else None,
                             meter_last, reason, at)

    def resets(self, device_id: str) -> list[SequenceReset]:
        return [SequenceReset(str(r[0]), r[1], r[2], r[3], str(r[4]), str(r[5])) for r in self._db.execute(
            "SELECT device_id, old_seq, old_base, meter_last, reason, detected_at FROM sequence_resets"
            " WHERE device_id = ? ORDER BY id", (device_id,))]

    def save_device(self, device_key: str, info: dict[str, Any]) -> None:
        """Device information and the last measured clock offset, keyed by address or serial."""
        with self._tx():
            self._db.execute(
                "INSERT INTO devices (device_key, info, updated_at) VALUES (?, ?, ?)"
                " ON CONFLICT (device_key) DO UPDATE SET info = excluded.info,"
                " updated_at = excluded.updated_at",
                (device_key, json.dumps(info, sort_keys=True), now_iso()),
            )

    def load_device(self, device_key: str) -> dict[str, Any] | None:
        row = self._db.execute("SELECT info FROM devices WHERE device_key = ?", (device_key,)).fetchone()
        if row is None:
            return None
        info: dict[str, Any] = json.loads(row[0])
        return info

