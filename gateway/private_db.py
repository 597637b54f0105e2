"""Open the outbox's SQLite file so that only the gateway's user can read it, and deletes erase.

The outbox holds readings (PHI) until ingest confirms them. The file is created 0600 before SQLite
touches it; SQLite creates the ``-wal`` and ``-shm`` files with the database file's mode, and files
left by an older version are tightened on open. ``secure_delete`` overwrites deleted rows with
zeros, and ``journal_size_limit=0`` truncates the WAL each time it restarts, so a confirmed
reading's payload does not linger on the SD card (see docs/gateway.md, "Outbox at rest"). The last
connection to close checkpoints and removes the WAL on its own.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

FILE_MODE = 0o600
_SIDE_FILES = ("-wal", "-shm", "-journal")


def _tighten(path: Path) -> None:
    for candidate in (path, *(path.with_name(path.name + s) for s in _SIDE_FILES)):
        try:
            os.chmod(candidate, FILE_MODE)
        except FileNotFoundError:
            continue


def open_private(path: Path) -> sqlite3.Connection:
    """A WAL-mode, synchronous=FULL connection to ``path``, created 0600, with secure deletes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        # Create it 0600 before SQLite does. Only when absent: closing any descriptor of an open
        # SQLite file drops that process's POSIX locks on it (the collector and the publisher each
        # hold a connection), which lets another connection reset the WAL under them.
        with contextlib.suppress(FileExistsError):  # another process won the race: tightened below
            os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, FILE_MODE))
    _tighten(path)
    db = sqlite3.connect(str(path), timeout=30.0, isolation_level=None)
    db.execute("PRAGMA secure_delete=ON")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA journal_size_limit=0")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("PRAGMA busy_timeout=30000")
    _tighten(path)
    return db

