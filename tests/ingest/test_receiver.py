"""When the receiver hands a batch to a worker (pure: no broker, no database, no processes)."""

from __future__ import annotations

from ingest.receiver import batch_due


def _due(waiting: int, waited_ms: float, *, idle: bool, size: int = 500, ms: int = 200) -> bool:
    return batch_due(waiting, 100.0, 100.0 + waited_ms / 1000, idle_worker=idle, batch_size=size, batch_ms=ms)


def test_an_idle_worker_gets_what_is_waiting_at_once() -> None:
    # the half-load case: waiting up to batch_ms for a full batch was most of publish → commit
    assert _due(1, 0, idle=True)
    assert _due(37, 3, idle=True)


def test_busy_workers_let_the_batch_grow_to_size_or_age() -> None:
    assert not _due(37, 3, idle=False)
    assert not _due(499, 199, idle=False)
    assert _due(500, 0, idle=False)  # full
    assert _due(1, 200, idle=False)  # the oldest waited batch_ms


def test_nothing_waiting_is_never_due() -> None:
    assert not _due(0, 10_000, idle=True)
