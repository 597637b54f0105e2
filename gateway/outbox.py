"""The gateway's durable outbox: one SQLite file, an explicit state machine per reading.

The lifecycle (pending → in_flight → published → deleted, or rejected) is the one transition table
in :mod:`gateway.outbox_states`; every method here is one move and one transaction, and its SQL
asks that table which states the move starts from and where it leads. The file's schema and its
upgrades are :mod:`gateway.outbox_schema`; the per-device tables :mod:`gateway.outbox_memory`.

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
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.errors import OutboxFull
from gateway.outbox_memory import SENT_KEEP, DeviceMemory, HighWater, Mark, SequenceReset
from gateway.outbox_schema import SCHEMA_VERSION, migrate, now_iso
from gateway.outbox_states import STORED, WAITING, Move, State, sources, sql_states, target
from gateway.private_db import open_private

__all__ = ["CONFIRM_BACKOFF_CAP_S", "CONFIRM_TIMEOUT_S", "SCHEMA_VERSION", "SENT_KEEP", "HighWater", "Mark",
           "Outbox", "OutboxRow", "SequenceReset", "confirm_delay"]

log = logging.getLogger(__name__)

CONFIRM_TIMEOUT_S = 60.0  # default wait for ingest's acknowledgement before a re-send
CONFIRM_BACKOFF_CAP_S = 600.0  # the wait doubles per attempt up to this


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


def confirm_delay(timeout_s: float, attempts: int, cap_s: float = CONFIRM_BACKOFF_CAP_S) -> float:
    """Seconds to wait for ingest's acknowledgement after publish number ``attempts`` (1, 2, ...):
    the timeout doubled per earlier attempt, capped (a long ingest outage must not turn into a
    re-send storm, nor into hours of silence)."""
    return min(cap_s, timeout_s * 2.0 ** min(max(attempts, 1) - 1, 30))


def _in(move: Move) -> str:
    """``state IN (...)``: the states the transition table lets ``move`` start from."""
    return "state IN " + sql_states(sources(move))


def _to(move: Move) -> str:
    """The on-disk state ``move`` leads to (never ``deleted``: those moves delete the row)."""
    state = target(move)
    if state is State.DELETED:
        raise ValueError(f"outbox move {move.value} deletes the row; it has no state to write")
    return state.value


class Outbox(DeviceMemory):
    """The state machine of :mod:`gateway.outbox_states`, on one SQLite connection owned by the
    calling thread; the per-device tables come from :class:`~gateway.outbox_memory.DeviceMemory`."""

    def __init__(self, path: Path | str, capacity: int, *, recover: bool = False,
                 confirm_timeout_s: float = CONFIRM_TIMEOUT_S) -> None:
        self.path = Path(path)
        self.capacity = capacity
        self.confirm_timeout_s = confirm_timeout_s
        self._db = open_private(self.path)  # 0600, WAL, synchronous=FULL, secure_delete
        # one definition of the back-off, callable from SQL
        self._db.create_function("confirm_delay", 2, lambda t, a: confirm_delay(float(t), int(a)),
                                 deterministic=True)
        migrate(self._db)
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

    # -- plumbing ---------------------------------------------------------------------------
    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- counts -----------------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        """Rows per state (``pending``, ``in_flight``, ``published``, ``rejected``)."""
        out = {state.value: 0 for state in STORED}
        for state, n in self._db.execute("SELECT state, count(*) FROM outbox GROUP BY state"):
            out[str(state)] = int(n)
        return out

    def depth(self) -> int:
        """Readings not yet confirmed delivered (pending + in flight + published)."""
        row = self._db.execute(f"SELECT count(*) FROM outbox WHERE state IN {sql_states(WAITING)}").fetchone()
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
                " VALUES (?, ?, ?, ?, ?, ?)",
                (message_id, kind, device_id, payload, _to(Move.ADD), now_iso()),
            )
            if remember:
                self._remember(message_id, device_id)
            if high_water is not None:
                self._set_high_water(*high_water)
            return cur.rowcount == 1

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
                " VALUES (NULL, 'frame', ?, ?, ?, ?, ?)",
                (device_id, payload, _to(Move.ADD_REJECTED), reason, now_iso()),
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
                f" WHERE {_in(Move.CLAIM)} ORDER BY id LIMIT ?", (limit,))]
            self._db.executemany(
                f"UPDATE outbox SET state = ?, attempts = attempts + 1 WHERE id = ? AND {_in(Move.CLAIM)}",
                [(_to(Move.CLAIM), r.id) for r in rows],
            )
        return [OutboxRow(r.id, r.message_id, r.kind, r.device_id, r.payload, _to(Move.CLAIM), r.reason,
                          r.attempts + 1) for r in rows]

    def ack(self, ids: Iterable[int]) -> int:
        """``in_flight`` → gone on PUBACK (``SERVER_ACKS=false``: the broker's word is enough)."""
        with self._tx():
            cur = self._db.executemany(f"DELETE FROM outbox WHERE id = ? AND {_in(Move.PUBACK_FINAL)}",
                                       [(i,) for i in ids])
            return cur.rowcount

    def published(self, ids: Iterable[int]) -> int:
        """``in_flight`` → ``published``: the broker has it (PUBACK); now wait for ingest.

        Rows already deleted by an early confirmation are skipped. The confirmation deadline is
        :func:`confirm_delay` after now, from each row's attempt count.
        """
        now, at = time.time(), now_iso()
        with self._tx():
            n = 0
            for row_id in ids:
                n += self._db.execute(
                    "UPDATE outbox SET state = ?, published_at = ?,"
                    " confirm_due = ? + confirm_delay(?, attempts)"
                    f" WHERE id = ? AND {_in(Move.PUBACK)}",
                    (_to(Move.PUBACK), at, now, self.confirm_timeout_s, row_id),
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
                f"DELETE FROM outbox WHERE message_id = ? AND {_in(Move.CONFIRM)}",
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
                f"UPDATE outbox SET state = ? WHERE {_in(Move.EXPIRE)}"
                " AND (confirm_due IS NULL OR confirm_due <= ? OR confirm_due > ?)",
                (_to(Move.EXPIRE), now, now + CONFIRM_BACKOFF_CAP_S + 1.0),
            ).rowcount

    def restart_confirm_timers(self) -> int:
        """Start-up: published rows stay published, their confirmation wait starts again now."""
        with self._tx():
            return self._db.execute(
                "UPDATE outbox SET confirm_due = ? + confirm_delay(?, attempts) WHERE state = ?",
                (time.time(), self.confirm_timeout_s, State.PUBLISHED.value),
            ).rowcount

    def release(self, ids: Iterable[int]) -> None:
        """``in_flight`` → ``pending``: the publish failed in a way worth retrying."""
        with self._tx():
            self._db.executemany(f"UPDATE outbox SET state = ? WHERE id = ? AND {_in(Move.RELEASE)}",
                                 [(_to(Move.RELEASE), i) for i in ids])

    def reject(self, row_id: int, reason: str) -> None:
        """``pending``/``in_flight`` → ``rejected(reason)``: kept for a person, never published."""
        with self._tx():
            self._db.execute(f"UPDATE outbox SET state = ?, reason = ? WHERE id = ? AND {_in(Move.REJECT)}",
                             (_to(Move.REJECT), reason, row_id))
        log.error("outbox row %d rejected: %s", row_id, reason)

    def reset_in_flight(self) -> int:
        """Start-up recovery: every ``in_flight`` row goes back to ``pending``."""
        with self._tx():
            return self._db.execute(f"UPDATE outbox SET state = ? WHERE {_in(Move.RECOVER)}",
                                    (_to(Move.RECOVER),)).rowcount

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
