"""Worker processes behind one receiver: a dead worker costs a resend, never a reading.

``rpmflow-ingest run`` is a real subprocess with 2 workers; the test SIGKILLs one worker (the
receiver must notice, restart it and resend its uncommitted batches), then SIGKILLs another worker
together with the receiver (nothing of theirs may have been acked: the broker resends it to the
next run). Every published reading must end up stored exactly once.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from simulators.embedded_mosquitto import EmbeddedMosquitto
from simulators.embedded_postgres import DatabaseUrls
from simulators.fleet import FleetConfig, provision
from tests.ingest.helpers import FleetThread, IngestProcess, assert_stored_exactly_once, count, make_settings
from tests.waiting import wait_for

Conn = psycopg.Connection[tuple[Any, ...]]


def _worker_pids(ingest: IngestProcess) -> dict[int, int]:
    """slot → pid of the latest worker started in that slot (from the receiver's log)."""
    found = re.findall(r"worker (\d+) started \(pid (\d+)\)", ingest.log_path.read_text(errors="replace"))
    return {int(slot): int(pid) for slot, pid in found}


def _gone(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "State:\tZ" in status


def _rows(db: Conn) -> int:
    return count(db, "SELECT count(*) FROM readings")


def _waiting_on_lock(db: Conn, client_id: str) -> list[int]:
    """Slots of the workers whose commit is blocked on a lock (each holds an uncommitted batch)."""
    names = db.execute("SELECT DISTINCT application_name FROM pg_stat_activity"
                       " WHERE application_name LIKE %s AND wait_event_type = 'Lock'",
                       (f"rpmflow-ingest:{client_id}:w%",)).fetchall()
    return sorted(int(name.rsplit(":w", 1)[1]) for (name,) in names)


@contextlib.contextmanager
def _readings_locked(database_url: str) -> Iterator[None]:
    """Every worker's next commit blocks on this lock: each holds a batch it has not committed."""
    with psycopg.connect(database_url) as lock:
        lock.execute("LOCK TABLE readings IN SHARE MODE")
        try:
            yield
        finally:
            lock.rollback()


@pytest.mark.slow
def test_worker_killed_then_worker_and_receiver_killed_every_reading_stored_once(
    database_urls: DatabaseUrls, broker: EmbeddedMosquitto, database_url: str, db: Conn, tmp_path: Path
) -> None:
    total = 10_000
    settings = make_settings(database_urls.ingest, broker.add_ingest(), batch_size=200, workers=2)
    ingest = IngestProcess(settings, tmp_path / "ingest.log")
    config = FleetConfig(gateways=3, devices_per_gateway=4, rate=0, count=total, window=300,
                         prefix=f"w{secrets.token_hex(3)}", seed=11)
    creds = provision(broker, config)
    ingest.start()
    try:
        fleet = FleetThread(broker.port, creds, config, enrol_in=database_url)
        wait_for(lambda: _rows(db) >= 1000, 30, "some readings committed")
        first = _worker_pids(ingest)
        assert sorted(first) == [0, 1], ingest.tail()
        with _readings_locked(database_url):
            wait_for(lambda: _waiting_on_lock(db, settings.session_id) == [0, 1], 15,
                     "both workers mid-batch")
            os.kill(first[0], signal.SIGKILL)
            resent = wait_for(lambda: re.search(r"restarted it and resent (\d+)", ingest.tail()), 15,
                              "the receiver replacing worker 0")
            assert resent is not None and int(resent.group(1)) >= 1, ingest.tail()
        assert _worker_pids(ingest)[0] != first[0]
        at_restart = _rows(db)
        wait_for(lambda: _rows(db) >= at_restart + 200, 30, "storing after the restart")
        assert ingest.alive, ingest.tail()

        # A worker dies holding an uncommitted batch and the receiver dies before it can resend it:
        # had anything been acked before its commit, the broker would not resend it and it is lost.
        pids = _worker_pids(ingest)
        with _readings_locked(database_url):
            busy = wait_for(lambda: _waiting_on_lock(db, settings.session_id), 15, "a worker mid-batch")
            assert _rows(db) < total
            os.kill(pids[busy[-1]], signal.SIGKILL)
            ingest.kill()
        wait_for(lambda: all(_gone(p) for p in pids.values()), 15, "orphaned workers exiting")

        ingest.start()  # same client id: the persistent session still holds the un-acked messages
        report = fleet.join()
        wait_for(lambda: _rows(db) == total, 60, f"all {total} readings stored")
        assert ingest.terminate() == 0, ingest.tail()  # SIGTERM: drain, commit, ack, exit 0
        assert "stopped" in ingest.tail()
    finally:
        ingest.cleanup()
    assert_stored_exactly_once(db, report.message_ids)
