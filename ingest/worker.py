"""The worker process: validate a batch of raw ``(topic, payload)``, write it, commit, report.

Runs in a ``spawn``-ed process (a fresh interpreter: no paho threads or sockets inherited). The
receiver (``ingest/receiver.py``) owns MQTT and every acknowledgement; a worker only ever says
"batch ``seq`` is committed" (and which message ids, per gateway, the receiver may ack to the
gateways), so a worker that dies before saying so costs a resend, never a message. Database
outages are retried here with back-off, indefinitely: the receiver decides when to give up (drain
timeout on SIGTERM) and kills the worker. Refused credentials (or a database that no longer
exists) are retried only for ``auth_timeout_s``; then the worker reports :class:`Failed` with the
one-line reason and the receiver stops, non-zero, without acking.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from typing import NamedTuple

from gateway.runtime.gc_tuning import tune_gc
from gateway.runtime.retry import ErrorKind, GaveUp
from ingest.commit import Outcome, Raw, commit, items_of
from ingest.writer import BatchWriter

log = logging.getLogger(__name__)

Task = tuple[int, list[Raw]]  # (sequence number, messages in receive order)


class Report(NamedTuple):
    """Batch ``seq`` is committed; what the receiver acknowledges and counts."""

    seq: int
    outcome: Outcome


class Failed(NamedTuple):
    """Batch ``seq`` hit an unexpected error (a bug), or the database refused us past the bound
    (``fatal``: the error is the operator's one line): the receiver stops without acking it."""

    seq: int
    error: str
    fatal: bool = False


class Orphaned(Exception):
    """The receiver died while this worker was retrying: nobody can ack the batch any more."""


def write_batch(writer: BatchWriter, seq: int, raw: list[Raw],
                orphaned: Callable[[], bool] = lambda: False, auth_timeout_s: float = 30.0) -> Report:
    """Classify and commit one batch (``ingest/commit.py``), retrying while the database is
    unavailable, unless the receiver is gone."""

    def on_retry(exc: BaseException, kind: ErrorKind, delay: float) -> None:
        log.warning("batch of %d not committed, retrying in %.1fs: %s", len(raw), delay, exc)
        if orphaned():
            raise Orphaned from exc

    items = items_of(raw, datetime.now(UTC))
    return Report(seq, commit(writer, items, auth_timeout_s=auth_timeout_s, on_retry=on_retry))


def worker_main(tasks: Connection, reports: Connection, database_url: str, name: str,
                log_level: int, auth_timeout_s: float = 30.0) -> None:
    """Entry point of a worker process: ``None`` (or the receiver going away) ends it.

    ``tasks`` and ``reports`` are one-way pipes of which this process holds only its own end, so
    the receiver's death reads as EOF here, even in the middle of a message."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the receiver alone decides when workers stop
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(level=log_level, format=f"%(asctime)s %(levelname)s {name} %(name)s: %(message)s")
    tune_gc()
    writer = BatchWriter(database_url, application_name=f"rpmflow-ingest:{name}")
    receiver = os.getppid()

    def orphaned() -> bool:
        return os.getppid() != receiver

    try:
        while True:
            try:
                task: Task | None = tasks.recv()
            except (EOFError, OSError):
                log.info("the receiver is gone; exiting")
                return
            if task is None:
                return
            seq, raw = task
            try:
                report: Report | Failed = write_batch(writer, seq, raw, orphaned, auth_timeout_s)
            except Orphaned:
                log.warning("the receiver is gone while batch %d waited for the database; exiting", seq)
                return
            except GaveUp as exc:
                log.error("batch %d: %s", seq, exc)
                report = Failed(seq, str(exc), fatal=True)
            except Exception as exc:
                log.exception("batch %d failed", seq)
                report = Failed(seq, f"{type(exc).__name__}: {exc}"[:500])
            try:
                reports.send(report)
            except OSError:
                return
            if isinstance(report, Failed):
                return
    finally:
        writer.close()
