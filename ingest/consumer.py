"""Ingest in one process: receive, batch, validate, commit, then acknowledge, in that order.

The broker side (persistent session, manual in-order PUBACKs, end-to-end acks, the watch on the
connection) is :class:`~ingest.session.MqttSession`, which :class:`Consumer` owns; the commit is
``ingest/commit.py``. ``RPMFLOW_INGEST_WORKERS=0`` runs this; otherwise
:class:`~ingest.receiver.Receiver` owns the same session and hands batches to worker processes.

- The insert is idempotent (the dedupe on ``message_id``), so a redelivery after a crash stores nothing twice.
- Database outage: the batch is kept and retried with back-off, nothing is acked, the broker stops
  sending at Receive Maximum and queues the rest. SIGTERM: commit what was received, ack, exit.
- After each commit, and before its PUBACKs, the committed readings are acknowledged end to end to
  their gateways on ``rpm/v1/<gw>/acks`` (``ingest/acks.py``; ``send_acks=False`` turns it off).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from gateway.runtime.fatal import Fatal
from gateway.runtime.retry import ErrorKind, GaveUp
from ingest.commit import Outcome, commit, items_of, record
from ingest.items import Item
from ingest.metrics import Metrics
from ingest.session import MqttSession, Received, connect_properties, make_client
from ingest.settings import Settings
from ingest.writer import BatchWriter

__all__ = ["Consumer", "Received", "connect_properties", "make_client"]

log = logging.getLogger(__name__)

_IDLE_POLL_S = 0.002  # how often the collector looks at an empty inbox


class Consumer:
    """Runs until ``stop`` is set; ``on_commit`` (optional) sees each committed batch."""

    def __init__(self, settings: Settings, *, metrics: Metrics | None = None,
                 on_commit: Callable[[list[Received], Outcome], None] | None = None) -> None:
        self.settings = settings
        self.metrics = metrics or Metrics()
        self.mqtt = MqttSession(settings, self.metrics)
        self._on_commit = on_commit
        self._batches: queue.Queue[tuple[list[Received], list[Item]] | None] = queue.Queue(maxsize=2)
        self._crash: BaseException | None = None
        self._writer = BatchWriter(settings.database_url,
                                   application_name=f"rpmflow-ingest:{settings.session_id}")

    @property
    def connected(self) -> threading.Event:
        return self.mqtt.connected

    @property
    def subscribed(self) -> threading.Event:
        return self.mqtt.subscribed

    # -- two stages: collect + validate (caller's thread), write + ack (writer thread) ----------------
    #
    # While the writer thread waits on PostgreSQL (psycopg releases the GIL), the caller's thread
    # validates the next batch. The writer handles batches one at a time, in order, so acks still
    # go out in receive order. The hand-over queue is small: back-pressure, not buffering.

    def run(self, stop: threading.Event) -> None:
        if self.settings.metrics_port:
            self.metrics.watch_timescale_jobs(self.settings.database_url)
        self.metrics.serve(self.settings.metrics_port)
        self.mqtt.start()
        writer = threading.Thread(target=self._write_loop, args=(stop,), name="ingest-writer", daemon=True)
        writer.start()
        try:
            while not stop.is_set() and not self._broker_gave_up(stop):
                batch = self._collect()
                if batch:
                    self._handover(batch, stop)
            self._drain(stop)
        finally:
            self._batches.put(None)
            writer.join()
            self.mqtt.stop()
            self._writer.close()
        if self._crash is not None:
            raise self._crash

    def _broker_gave_up(self, stop: threading.Event) -> bool:
        fatal = self.mqtt.gave_up()
        if fatal is None:
            return False
        log.error("%s; stopping", fatal)
        self._crash = fatal
        stop.set()
        return True

    def _collect(self) -> list[Received]:
        """Up to ``batch_size`` messages, once that many are waiting or the oldest is ``batch_ms`` old."""
        inbox, size = self.mqtt.inbox, self.settings.batch_size
        idle_until = time.monotonic() + 0.1
        while not inbox:
            if time.monotonic() > idle_until:
                return []
            time.sleep(_IDLE_POLL_S)
        deadline = inbox[0].at + self.settings.batch_ms / 1000
        while len(inbox) < size and time.monotonic() < deadline:
            time.sleep(_IDLE_POLL_S)
        pop = inbox.popleft
        return [pop() for _ in range(min(len(inbox), size))]

    def _handover(self, batch: list[Received], stop: threading.Event) -> None:
        items = items_of(((m.message.topic, bytes(m.message.payload)) for m in batch), datetime.now(UTC))
        self.metrics.waiting.set(len(self.mqtt.inbox) + len(batch))
        self._batches.put((batch, items))

    def _drain(self, stop: threading.Event) -> None:
        """On stop: hand over what was already received; the writer commits it within the timeout."""
        pending: list[Received] = []
        while self.mqtt.inbox:
            pending.append(self.mqtt.inbox.popleft())
        log.info("draining %d received messages before exit", len(pending))
        size = self.settings.batch_size
        for i in range(0, len(pending), size):
            self._handover(pending[i:i + size], stop)

    def _write_loop(self, stop: threading.Event) -> None:
        gave_up = False
        while True:
            job = self._batches.get()
            if job is None:
                return
            if gave_up:
                continue  # un-acked: the broker resends these to our next session
            batch, items = job
            try:
                committed = self._commit_and_ack(batch, items, stop)
            except Fatal as exc:  # credentials refused past the bound, or the database is gone
                log.error("%s; stopping without acking this batch (the broker resends it)", exc)
                self._crash = exc
                stop.set()
                gave_up = True
                continue
            except BaseException as exc:  # a bug, not bad input: stop rather than lose messages
                log.exception("writer failed; stopping without acking this batch")
                self._crash = exc
                stop.set()
                gave_up = True
                continue
            if not committed:
                log.warning("drain timed out: the remaining messages stay un-acked (the broker resends them)")
                gave_up = True

    def _commit_and_ack(self, batch: list[Received], items: list[Item], stop: threading.Event) -> bool:
        """Commit (``ingest/commit.py``; once a stop is requested, retrying for at most
        ``drain_timeout_s``), then tell the gateways, then PUBACK in receive order."""
        drain_deadline: list[float] = []

        def deadline() -> float | None:
            if not drain_deadline and stop.is_set():
                drain_deadline.append(time.monotonic() + self.settings.drain_timeout_s)
            return drain_deadline[0] if drain_deadline else None

        def on_retry(exc: BaseException, kind: ErrorKind, delay: float) -> None:
            self.metrics.retries.inc()
            log.warning("batch of %d not committed, retrying in %.1fs: %s", len(batch), delay, exc)

        try:
            done = commit(self._writer, items, auth_timeout_s=self.settings.auth_timeout_s,
                          deadline=deadline, on_retry=on_retry)
        except GaveUp as exc:
            if exc.kind is ErrorKind.TRANSIENT:
                return False  # the drain deadline passed
            raise
        self.mqtt.send_acks(done.acks, done.rejected)
        self.mqtt.ack_in_order(batch)
        record(self.metrics, done, retries=False)
        if self._on_commit is not None:
            self._on_commit(batch, done)
        return True
