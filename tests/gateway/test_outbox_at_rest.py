"""Issue 14: the outbox file and its WAL are private (0600) and a confirmed reading is erased."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from gateway.outbox import Outbox

MARKER = "PHI-MARKER-7f3a9c"


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_outbox_wal_and_shm_are_0600_even_with_a_permissive_umask(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    old = os.umask(0o022)
    try:
        with Outbox(path, 10) as ob:
            assert ob.add(f"{1:032x}", "glucose", "DEV-1", '{"n": 1}')
            side = [path.with_name(path.name + s) for s in ("-wal", "-shm")]
            assert all(p.exists() for p in side)
            assert [_mode(p) for p in (path, *side)] == [0o600, 0o600, 0o600]
    finally:
        os.umask(old)


def test_an_older_world_readable_outbox_is_tightened_on_open(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    Outbox(path, 10).close()
    os.chmod(path, 0o644)
    with Outbox(path, 10):
        assert _mode(path) == 0o600


def test_a_confirmed_reading_leaves_no_payload_in_the_file_or_its_wal(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    mid = f"{7:032x}"
    with Outbox(path, 10) as ob:
        assert ob.add(mid, "glucose", "DEV-1", f'{{"note": "{MARKER}"}}')
        assert ob.confirm([mid]) == 1
        wal = path.with_name(path.name + "-wal")
        assert MARKER.encode() not in path.read_bytes()  # secure_delete zeroed the page
    assert not wal.exists() or MARKER.encode() not in wal.read_bytes()
    assert MARKER.encode() not in path.read_bytes()
