"""The outbox file's schema, its upgrades from older files, and the transaction helper.

Existing outboxes on gateways in the field must keep opening: version 1 had no base time on the
high-water mark, version 2's ``outbox`` table had no ``published`` state (SQLite cannot alter a
CHECK, so that table is rebuilt inside the opening transaction; a crash leaves the old one).
The state names in the CHECK are :class:`gateway.outbox_states.State` values.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

SCHEMA_VERSION = 3
SCHEMA = """
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

OUTBOX_COLUMNS = "id, message_id, kind, device_id, payload, state, reason, created_at, attempts"


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def migrate(db: sqlite3.Connection) -> None:
    """Create what is missing and upgrade older files (inside one transaction)."""
    with Transaction(db):
        _upgrade_outbox_table(db)
        for stmt in filter(None, (s.strip() for s in SCHEMA.split(";"))):
            db.execute(stmt)
        columns = {str(r[1]) for r in db.execute("PRAGMA table_info(high_water)")}
        if "base_time" not in columns:  # a version-1 file: the mark had no base time
            db.execute("ALTER TABLE high_water ADD COLUMN base_time TEXT")
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _upgrade_outbox_table(db: sqlite3.Connection) -> None:
    """A version-2 file: its CHECK does not allow ``published`` and it lacks the timer columns.

    SQLite cannot alter a CHECK constraint, so the table is rebuilt (inside the caller's
    transaction: a crash leaves the old table intact).
    """
    row = db.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'outbox'").fetchone()
    if row is None or "'published'" in str(row[0]):
        return
    db.execute("ALTER TABLE outbox RENAME TO outbox_v2")
    db.execute("DROP INDEX IF EXISTS outbox_state_id")
    db.execute(SCHEMA.split(";")[0])
    db.execute(f"INSERT INTO outbox ({OUTBOX_COLUMNS}) SELECT {OUTBOX_COLUMNS} FROM outbox_v2")
    db.execute("DROP TABLE outbox_v2")


class Transaction:
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
