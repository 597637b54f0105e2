"""The gateway's state directory (the outbox): created private to the service user, or a clear refusal.

The outbox holds readings of identified patients. A directory the gateway creates is mode 0700
and the outbox file 0600 (SQLite gives its ``-wal`` / ``-shm`` files the database file's mode).
An existing directory is left as the operator made it (it may be shared, e.g. systemd's
``StateDirectory=``), but one this user cannot write ends the start-up with one line naming the
fix, instead of a SQLite traceback later.
"""

from __future__ import annotations

import os
from pathlib import Path

from gateway.errors import StateDirUnusable

DIR_MODE = 0o700
FILE_MODE = 0o600


def prepare_state_dir(outbox: Path) -> None:
    """Make ``outbox``'s directory (0700, with any missing parents) and the empty file (0600)."""
    directory = outbox.parent
    fix = (f"create it for the service user: sudo install -d -o rpmflow -g rpmflow -m 0700 {directory}"
           " (the systemd unit's StateDirectory= does this)")
    try:
        if not directory.exists():
            _make_private_dirs(directory)
        if not os.access(directory, os.W_OK | os.X_OK):
            reason = f"not writable by uid {os.geteuid()} (owner uid {directory.stat().st_uid})"
            raise StateDirUnusable(str(directory), reason, fix)
        if not outbox.exists():
            os.close(os.open(outbox, os.O_CREAT | os.O_WRONLY, FILE_MODE))
    except OSError as exc:
        raise StateDirUnusable(str(directory), exc.strerror or str(exc), fix) from exc


def _make_private_dirs(directory: Path) -> None:
    """Create ``directory`` and missing parents with mode 0700 (not left to the umask)."""
    missing = [d for d in (directory, *directory.parents) if not d.exists()]
    for path in reversed(missing):
        path.mkdir(mode=DIR_MODE)
        os.chmod(path, DIR_MODE)  # mkdir's mode is filtered by the umask
