"""The gateway's durable outbox: one SQLite file, an explicit state machine per reading.

::

    add() ──► pending ──claim()──► in_flight ──published()──► published ──confirm()──► (deleted:
                 ▲  │                  │                         │          ingest committed it)
                 │  │                  ├──ack()──► (deleted)     └─expire_published()──► pending
                 │  │                  │   SERVER_ACKS=false:       (no confirmation in time: re-send)
                 │  │                  │   the PUBACK is enough
                 │  └─reject()──┐      ├──release()──► pending   (publish failed, retry)
                 │              ▼      └──reject()───► rejected(reason)  (kept, never published)
                 └── on open: every in_flight goes back to pending (we crashed before PUBACK);
                     published stays published and its confirmation timer restarts
    confirm(message_ids) deletes pending / in_flight / published rows alike (ingest's
    acknowledgement can overtake our PUBACK processing); unknown ids are ignored.
    add_rejected() ──► rejected(reason)   (malformed frames: kept with their hex, never lost)

Why ``published`` exists: a PUBACK only means the broker holds the message in memory. Mosquitto
saves its queue once a second, so a crash can lose messages it has already acknowledged, and a
fresh broker drops messages published before ingest subscribes. A reading is therefore deleted
only when ingest says it committed it (``rpm/v1/<id>/acks``); a published row that waits longer
than its confirmation delay (the timeout, doubled per attempt, capped at
:data:`CONFIRM_BACKOFF_CAP_S`) is sent again. Ingest is idempotent, so a re-send is harmless.

Every move is one method and one transaction, so a crash leaves each row in exactly one state.
The same file keeps what must survive a restart next to the readings: the per-device glucose
high-water mark with the base time of the record it names (written in the *same* transaction as
the reading it covers, so the mark can never run ahead of what is durably queued; the base time
lets the collector notice a meter whose sequence numbers restarted), the identities already
queued (``sent``: a re-download after a meter reset does not publish a record twice), the resets
detected, and the device information / clock offsets.

The outbox is bounded: when ``pending + in_flight + published`` reaches ``capacity`` it refuses
new readings with :class:`~gateway.errors.OutboxFull` (logged once per episode, surfaced as
``outbox_full`` in the status message) so the collector leaves records on the device instead of
dropping them. Readings the device has already handed over and cannot send again (BP indications)
are stored past the bound (``must_keep=True``) rather than lost.

One :class:`Outbox` object per thread (sqlite3 connections are not shared across threads);
WAL mode lets the collector and the publisher use the same file at once.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.errors import OutboxFull
from gateway.private_db import open_private

log = logging.getLogger(__name__)

SCHEMA_VERSION = 3
CONFIRM_TIMEOUT_S = 60.0  # default wait for ingest's acknowledgement before a re-send
CONFIRM_BACKOFF_CAP_S = 600.0  # the wait doubles per attempt up to this
SENT_KEEP = 200_000  # identities remembered for re-download dedupe (oldest forgotten first)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id  TEXT UNIQUE,
    kind        TEXT NOT NULL,
    device_id   TEXT NOT NULL,
    payload     TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('pending', 'in_flight', 'published', 'rejected')),
    reason      TEXT,
    created_at  TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    published_at TEXT,
    confirm_due REAL
);
CREATE INDEX IF NOT EXISTS outbox_state_id ON outbox (state, id);
CREATE TABLE IF NOT EXISTS high_water (
    device_id   TEXT PRIMARY KEY,
    last_seq    INTEGER NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sent (
    message_id  TEXT PRIMARY KEY,
    device_id   TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sequence_resets (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id    TEXT NOT NULL,
    old_seq      INTEGER,
    old_base     TEXT,
    meter_last   INTEGER,
    reason       TEXT NOT NULL,
    detected_at  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS devices (
    device_key  TEXT PRIMARY KEY,
    info        TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
"""


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


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    message_id: str | None
    kind: str
    device_id: str
    payload: str
    state: str
    reason: str | None
    attempts: int


def _now() -> str:
    return datetime.now(UTC).isoformat()


def confirm_delay(timeout_s: float, attempts: int, cap_s: float = CONFIRM_BACKOFF_CAP_S) -> float:
    """Seconds to wait for ingest's acknowledgement after publish number ``attempts`` (1, 2, ...):
    the timeout doubled per earlier attempt, capped (a long ingest outage must not turn into a
    re-send storm, nor into hours of silence)."""
    return min(cap_s, timeout_s * 2.0 ** min(max(attempts, 1) - 1, 30))


_OUTBOX_COLUMNS = "id, message_id, kind, device_id, payload, state, reason, created_at, attempts"


class Outbox:
    """The state machine above, on one SQLite connection owned by the calling thread."""

    def __init__(self, path: Path | str, capacity: int, *, recover: bool = False,
                 confirm_timeout_s: float = CONFIRM_TIMEOUT_S) -> None:
        self.path = Path(path)
        self.capacity = capacity
        self.confirm_timeout_s = confirm_timeout_s
        self._db = open_private(self.path)  # 0600, WAL, synchronous=FULL, secure_delete
        # one definition of the back-off, callable from SQL
        self._db.create_function("confirm_delay", 2, lambda t, a: confirm_delay(float(t), int(a)),
                                 deterministic=True)
        with self._tx():
            self._upgrade_outbox_table()
            for stmt in filter(None, (s.strip() for s in _SCHEMA.split(";"))):
                self._db.execute(stmt)
            columns = {str(r[1]) for r in self._db.execute("PRAGMA table_info(high_water)")}
            if "base_time" not in columns:  # a version-1 file: the mark had no base time
                self._db.execute("ALTER TABLE high_water ADD COLUMN base_time TEXT")
            self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        self._full_logged = False
        if recover:
            n = self.reset_in_flight()
            if n:
                log.warning("outbox %s: %d in-flight readings were not acknowledged before exit; "
                            "they go back to pending", self.path, n)
            n = self.restart_confirm_timers()
            if n:
                log.info("outbox %s: %d published readings still await ingest's confirmation",
                         self.path, n)

    def _upgrade_outbox_table(self) -> None:
        """A version-2 file: its CHECK does not allow ``published`` and it lacks the timer columns.

        SQLite cannot alter a CHECK constraint, so the table is rebuilt (inside the caller's
        transaction: a crash leaves the old table intact).
        """
        row = self._db.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'outbox'"
                               ).fetchone()
        if row is None or "'published'" in str(row[0]):
            return
        self._db.execute("ALTER TABLE outbox RENAME TO outbox_v2")
        self._db.execute("DROP INDEX IF EXISTS outbox_state_id")
        self._db.execute(_SCHEMA.split(";")[0])
        self._db.execute(f"INSERT INTO outbox ({_OUTBOX_COLUMNS}) SELECT {_OUTBOX_COLUMNS} FROM outbox_v2")
        self._db.execute("DROP TABLE outbox_v2")

    # -- plumbing ---------------------------------------------------------------------------
    def _tx(self) -> _Transaction:
        return _Transaction(self._db)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- counts -----------------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        """Rows per state (``pending``, ``in_flight``, ``published``, ``rejected``)."""
        out = {"pending": 0, "in_flight": 0, "published": 0, "rejected": 0}
        for state, n in self._db.execute("SELECT state, count(*) FROM outbox GROUP BY state"):
            out[str(state)] = int(n)
        return out

    def depth(self) -> int:
        """Readings not yet confirmed delivered (pending + in flight + published)."""
        row = self._db.execute("SELECT count(*) FROM outbox WHERE state != 'rejected'").fetchone()
        return int(row[0])

    @property
    def full(self) -> bool:
        return self.depth() >= self.capacity

    def _check_capacity(self, must_keep: bool) -> None:
        depth = self.depth()
        if depth < self.capacity:
            if self._full_logged:
                log.warning("outbox %s drained below its bound (%d/%d): accepting readings again",
                            self.path, depth, self.capacity)
                self._full_logged = False
            return
        if not self._full_logged:
            log.error("outbox %s FULL (%d/%d): new records stay on the devices until it drains",
                      self.path, depth, self.capacity)
            self._full_logged = True
        if not must_keep:
            raise OutboxFull(self.capacity)
        log.error("outbox over its bound: keeping an already-delivered reading (depth %d)", depth)

    # -- transitions ------------------------------------------------------------------------
    def add(
        self,
        message_id: str,
        kind: str,
        device_id: str,
        payload: str,
        *,
        must_keep: bool = False,
        high_water: Mark | None = None,
        remember: bool = False,
    ) -> bool:
        """New reading → ``pending``; False when the same ``message_id`` is already queued.

        ``high_water=(device_id, seq[, base_time])`` moves the device's mark in the same
        transaction. ``remember=True`` also refuses a ``message_id`` queued before and already
        acknowledged (kept in ``sent``), so re-downloading a meter publishes nothing twice.
        Raises :class:`OutboxFull` (nothing written) when the bound is reached and not ``must_keep``.
        """
        with self._tx():
            if remember and self._db.execute("SELECT 1 FROM sent WHERE message_id = ?",
                                             (message_id,)).fetchone():
                if high_water is not None:
                    self._set_high_water(*high_water)
                return False
            self._check_capacity(must_keep)
            cur = self._db.execute(
                "INSERT OR IGNORE INTO outbox (message_id, kind, device_id, payload, state, created_at)"
                " VALUES (?, ?, ?, ?, 'pending', ?)",
                (message_id, kind, device_id, payload, _now()),
            )
            if remember:
                self._remember(message_id, device_id)
            if high_water is not None:
                self._set_high_water(*high_water)
            return cur.rowcount == 1

    def _remember(self, message_id: str, device_id: str) -> None:
        cur = self._db.execute("INSERT OR IGNORE INTO sent (message_id, device_id, created_at)"
                               " VALUES (?, ?, ?)", (message_id, device_id, _now()))
        if cur.lastrowid and cur.lastrowid % 1000 == 0:  # prune now and then, oldest first
            self._db.execute("DELETE FROM sent WHERE rowid <= ?", (cur.lastrowid - SENT_KEEP,))

    def was_sent(self, message_id: str) -> bool:
        """Whether ``message_id`` was queued with ``remember=True`` (inspection, tests)."""
        row = self._db.execute("SELECT 1 FROM sent WHERE message_id = ?", (message_id,)).fetchone()
        return row is not None

    def add_rejected(self, device_id: str, characteristic: str, reason: str, payload_hex: str,
                     received_at: str, *, high_water: Mark | None = None) -> int:
        """A frame that cannot become a reading → ``rejected`` with its reason and bytes.

        ``high_water`` moves the device's mark past it in the same transaction (the record is kept
        here, so downloading it again would only repeat the rejection).
        """
        payload = json.dumps({"device_id": device_id, "characteristic": characteristic,
                              "payload_hex": payload_hex, "received_at": received_at})
        with self._tx():
            cur = self._db.execute(
                "INSERT INTO outbox (message_id, kind, device_id, payload, state, reason, created_at)"
                " VALUES (NULL, 'frame', ?, ?, 'rejected', ?, ?)",
                (device_id, payload, reason, _now()),
            )
            if high_water is not None:
                self._set_high_water(*high_water)
        log.warning("rejected %s frame from %s (%d bytes; reason and payload kept in the outbox)",
                    characteristic, device_id, len(payload_hex or "") // 2)
        return int(cur.lastrowid or 0)

    def claim(self, limit: int) -> list[OutboxRow]:
        """Oldest ``pending`` rows → ``in_flight`` (about to be published)."""
        with self._tx():
            rows = [self._row(r) for r in self._db.execute(
                "SELECT id, message_id, kind, device_id, payload, state, reason, attempts FROM outbox"
                " WHERE state = 'pending' ORDER BY id LIMIT ?", (limit,))]
            self._db.executemany(
                "UPDATE outbox SET state = 'in_flight', attempts = attempts + 1 WHERE id = ?",
                [(r.id,) for r in rows],
            )
        return [OutboxRow(r.id, r.message_id, r.kind, r.device_id, r.payload, "in_flight", r.reason,
                          r.attempts + 1) for r in rows]

    def ack(self, ids: Iterable[int]) -> int:
        """``in_flight`` → gone on PUBACK (``SERVER_ACKS=false``: the broker's word is enough)."""
        with self._tx():
            cur = self._db.executemany("DELETE FROM outbox WHERE id = ? AND state = 'in_flight'",
                                       [(i,) for i in ids])
            return cur.rowcount

    def published(self, ids: Iterable[int]) -> int:
        """``in_flight`` → ``published``: the broker has it (PUBACK); now wait for ingest.

        Rows already deleted by an early confirmation are skipped. The confirmation deadline is
        :func:`confirm_delay` after now, from each row's attempt count.
        """
        now, at = time.time(), _now()
        with self._tx():
            n = 0
            for row_id in ids:
                n += self._db.execute(
                    "UPDATE outbox SET state = 'published', published_at = ?,"
                    " confirm_due = ? + confirm_delay(?, attempts)"
                    " WHERE id = ? AND state = 'in_flight'",
                    (at, now, self.confirm_timeout_s, row_id),
                ).rowcount
            return n

    def confirm(self, message_ids: Iterable[str]) -> int:
        """Ingest committed these readings: delete them in whichever state they are.

        Pending, in-flight and published rows alike (the acknowledgement may overtake the PUBACK,
        or follow a re-send). Unknown ids are ignored (already confirmed, or a duplicate ack);
        rejected rows are kept for a person. Returns the number of rows deleted.
        """
        with self._tx():
            cur = self._db.executemany(
                "DELETE FROM outbox WHERE message_id = ? AND state IN ('pending', 'in_flight', 'published')",
                [(m,) for m in message_ids],
            )
            return cur.rowcount

    def expire_published(self, now: float | None = None) -> int:
        """``published`` → ``pending`` once a row's confirmation deadline has passed (re-send).

        A deadline further ahead than the cap can only come from the wall clock going back (a
        Pi without RTC syncing NTP): such rows are re-sent too rather than left waiting for hours.
        """
        now = time.time() if now is None else now
        with self._tx():
            return self._db.execute(
                "UPDATE outbox SET state = 'pending' WHERE state = 'published'"
                " AND (confirm_due IS NULL OR confirm_due <= ? OR confirm_due > ?)",
                (now, now + CONFIRM_BACKOFF_CAP_S + 1.0),
            ).rowcount

    def restart_confirm_timers(self) -> int:
        """Start-up: published rows stay published, their confirmation wait starts again now."""
        with self._tx():
            return self._db.execute(
                "UPDATE outbox SET confirm_due = ? + confirm_delay(?, attempts) WHERE state = 'published'",
                (time.time(), self.confirm_timeout_s),
            ).rowcount

    def release(self, ids: Iterable[int]) -> None:
        """``in_flight`` → ``pending``: the publish failed in a way worth retrying."""
        with self._tx():
            self._db.executemany("UPDATE outbox SET state = 'pending' WHERE id = ? AND state = 'in_flight'",
                                 [(i,) for i in ids])

    def reject(self, row_id: int, reason: str) -> None:
        """``pending``/``in_flight`` → ``rejected(reason)``: kept for a person, never published."""
        with self._tx():
            self._db.execute("UPDATE outbox SET state = 'rejected', reason = ? WHERE id = ?"
                             " AND state IN ('pending', 'in_flight')", (reason, row_id))
        log.error("outbox row %d rejected: %s", row_id, reason)

    def reset_in_flight(self) -> int:
        """Start-up recovery: every ``in_flight`` row goes back to ``pending``."""
        with self._tx():
            return self._db.execute("UPDATE outbox SET state = 'pending' WHERE state = 'in_flight'").rowcount

    def rows(self, state: str | None = None) -> list[OutboxRow]:
        """Inspection (tests, troubleshooting)."""
        sql = "SELECT id, message_id, kind, device_id, payload, state, reason, attempts FROM outbox"
        args: Sequence[Any] = ()
        if state is not None:
            sql += " WHERE state = ?"
            args = (state,)
        return [self._row(r) for r in self._db.execute(sql + " ORDER BY id", args)]

    @staticmethod
    def _row(r: Sequence[Any]) -> OutboxRow:
        return OutboxRow(int(r[0]), r[1], str(r[2]), str(r[3]), str(r[4]), str(r[5]), r[6], int(r[7]))

    # -- per-device state -------------------------------------------------------------------
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
            (device_id, seq, base_time, _now()),
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
            at = _now()
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
                (device_key, json.dumps(info, sort_keys=True), _now()),
            )

    def load_device(self, device_key: str) -> dict[str, Any] | None:
        row = self._db.execute("SELECT info FROM devices WHERE device_key = ?", (device_key,)).fetchone()
        if row is None:
            return None
        info: dict[str, Any] = json.loads(row[0])
        return info


class _Transaction:
    """``BEGIN IMMEDIATE`` … ``COMMIT`` (or ``ROLLBACK`` on error) on an autocommit connection."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if exc_type is None:
            self._db.execute("COMMIT")
        else:
            self._db.execute("ROLLBACK")
