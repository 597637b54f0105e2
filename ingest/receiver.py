"""One ingest process on both cores: a receiver (MQTT) and N worker processes (validate + write).

The receiver owns the same MQTT side as :class:`~ingest.consumer.Consumer`
(:class:`~ingest.session.MqttSession`: paho MQTT v5, fixed client id, persistent session,
``manual_ack``, plain subscription). Instead of validating and
writing on its own threads (which share one GIL), it hands batches of raw ``(topic, payload)``
bytes to worker processes (``ingest/worker.py``) and acknowledges a batch only when its worker
reported the commit, strictly in receive order (:class:`~ingest.ackorder.AckOrder`). The
gateway acks (``ingest/acks.py``) of a batch go out as soon as its worker reports the commit.

Failure handling:

- A worker dies (its process sentinel fires): whatever it had not reported is not acked; a new
  worker takes its place and gets those batches again (a replay of a committed batch stores
  nothing twice). More than ``_MAX_RESTARTS`` deaths within a minute: stop without acking and
  exit non-zero (:class:`~ingest.errors.WorkerFailed`); the broker resends to the next run.
- Database outage: workers retry with back-off; each worker holds at most ``_DEPTH`` batches, so
  the receiver stops handing out, the inbox fills up to Receive Maximum and the broker queues the
  rest. Nothing is acked.
- SIGTERM: hand out what was received, wait (``drain_timeout_s``) for the commits, ack, stop.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.context import SpawnProcess

from ingest.ackorder import AckOrder
from ingest.commit import Raw, record
from ingest.errors import WorkerFailed, WorkerLost
from ingest.metrics import Metrics
from ingest.session import MqttSession, Received
from ingest.settings import Settings
from ingest.worker import Failed, Report, Task, worker_main

log = logging.getLogger(__name__)

_DEPTH = 2  # batches per worker: one being written, one waiting (back-pressure, not buffering)
_IDLE_POLL_S = 0.01  # at 20k msg/s a 500-message batch fills in 25 ms
_MAX_RESTARTS = 5  # per _RESTART_WINDOW_S
_RESTART_WINDOW_S = 60.0


def batch_due(waiting: int, oldest_at: float, now: float, *, idle_worker: bool, batch_size: int,
              batch_ms: int) -> bool:
    """Whether to hand out a batch of the ``waiting`` messages now (pure).

    Yes when a full batch is waiting, when the oldest has waited ``batch_ms``, and also as soon as
    a worker is idle: waiting for size or time then only adds latency (at half load it was most
    of publish → commit). Batches still grow with the load, by themselves: while every worker is
    busy the inbox fills, and the next worker to finish takes up to ``batch_size`` at once."""
    if waiting <= 0:
        return False
    return waiting >= batch_size or idle_worker or now >= oldest_at + batch_ms / 1000


class _Feeder:
    """Sends tasks down a worker's pipe on a thread of its own: a batch is larger than the pipe
    buffer, and the receiver loop must never block on a busy (or dead) worker. (Not an
    ``mp.Queue``: its worker side holds both pipe ends, so a receiver killed mid-send leaves the
    worker waiting forever for the rest of the message.)"""

    def __init__(self, conn: Connection, slot: int) -> None:
        self._conn = conn
        self._queue: queue.SimpleQueue[Task | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=f"ingest-feeder-{slot}", daemon=True)
        self._thread.start()

    def put(self, task: Task | None) -> None:
        self._queue.put(task)

    def _run(self) -> None:
        while True:
            task = self._queue.get()
            try:
                self._conn.send(task)
            except OSError:
                break  # the worker died: the receiver resends its batches elsewhere
            if task is None:
                break
        self._conn.close()

    def close(self, timeout: float = 1.0) -> None:
        self._queue.put(None)
        self._thread.join(timeout)


@dataclass
class _Worker:
    slot: int
    process: SpawnProcess
    tasks: _Feeder
    reports: Connection
    outstanding: dict[int, list[Raw]] = field(default_factory=dict)  # seq → raw, in hand-out order


class Receiver:
    """The MQTT session of this process, with validation and writing in ``settings.workers``
    worker processes (composition: it owns an :class:`MqttSession`, as the consumer does)."""

    def __init__(self, settings: Settings, *, metrics: Metrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics or Metrics()
        self.mqtt = MqttSession(settings, self.metrics)
        self._crash: BaseException | None = None
        self._ctx = mp.get_context("spawn")
        self._order: AckOrder[list[Received]] = AckOrder()
        self._deaths: deque[float] = deque()
        self._workers: list[_Worker] = []

    @property
    def connected(self) -> threading.Event:
        return self.mqtt.connected

    @property
    def subscribed(self) -> threading.Event:
        return self.mqtt.subscribed

    def run(self, stop: threading.Event) -> None:
        s = self.settings
        if s.metrics_port:
            self.metrics.watch_timescale_jobs(s.database_url)
        self.metrics.serve(s.metrics_port)
        self.mqtt.claim()  # first: this process's MQTT identity, or stop (ingest/identity.py)
        self._workers = [self._spawn(i) for i in range(s.workers)]
        self.mqtt.start()
        try:
            while not stop.is_set() and not self._broker_gave_up(stop):
                if not self._ready():
                    self._service(self._idle_wait())
                elif not self._dispatch():
                    self._service(0.05)  # every worker is full: a report (or a death) wakes us
            if self._crash is None:
                self._drain_into_workers()
        except WorkerFailed as exc:
            log.error("%s; stopping without acking the open batches (the broker resends them)", exc)
            self._crash = exc
        finally:
            self._stop_workers()
            self.mqtt.stop()
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

    # -- workers ---------------------------------------------------------------------------------------

    def _spawn(self, slot: int) -> _Worker:
        task_out, task_in = self._ctx.Pipe(duplex=False)
        report_in, report_out = self._ctx.Pipe(duplex=False)
        name = f"{self.settings.session_id}:w{slot}"
        process = self._ctx.Process(
            target=worker_main, name=f"rpmflow-ingest-worker-{slot}", daemon=True,
            args=(task_out, report_out, self.settings.database_url, name,
                  logging.getLogger().getEffectiveLevel(), self.settings.auth_timeout_s),
        )
        process.start()
        task_out.close()  # each side keeps only its own ends: a death reads as EOF on the other
        report_out.close()
        log.info("worker %d started (pid %s)", slot, process.pid)
        return _Worker(slot, process, _Feeder(task_in, slot), report_in)

    def _replace(self, dead: _Worker) -> None:
        """A worker died: read what it managed to report, then resend the rest to a new worker."""
        exc = WorkerLost(dead.slot, dead.process.exitcode)
        self._drain_reports(dead)
        now = time.monotonic()
        self._deaths.append(now)
        while self._deaths and self._deaths[0] < now - _RESTART_WINDOW_S:
            self._deaths.popleft()
        if len(self._deaths) > _MAX_RESTARTS:
            raise WorkerFailed(f"{len(self._deaths)} worker deaths within {_RESTART_WINDOW_S:.0f} s ({exc})")
        dead.reports.close()
        dead.tasks.close(timeout=0)
        fresh = self._spawn(dead.slot)
        self._workers[dead.slot] = fresh
        log.warning("%s; restarted it and resent %d uncommitted batch(es)", exc, len(dead.outstanding))
        for seq, raw in dead.outstanding.items():
            fresh.outstanding[seq] = raw
            fresh.tasks.put((seq, raw))

    def _drain_reports(self, worker: _Worker) -> None:
        try:
            while worker.reports.poll():
                self._handle(worker, worker.reports.recv())
        except (EOFError, OSError) as exc:  # closed, or cut mid-message by the kill
            log.debug("worker %d report pipe closed: %s", worker.slot, exc)

    def _stop_workers(self) -> None:
        for w in self._workers:
            if self._crash is None and w.process.is_alive() and not w.outstanding:
                w.tasks.put(None)
        for w in self._workers:
            w.process.join(5 if self._crash is None and not w.outstanding else 0)
            if w.process.is_alive():
                w.process.kill()  # stuck retrying a dead database: its batches stay un-acked
                w.process.join(5)
            w.tasks.close()
            w.reports.close()

    # -- the receiver loop -----------------------------------------------------------------------------

    def _ready(self) -> bool:
        """Hand out a batch now (:func:`batch_due`)."""
        inbox = self.mqtt.inbox
        if not inbox:
            return False
        s = self.settings
        idle = any(not w.outstanding for w in self._workers)
        return batch_due(len(inbox), inbox[0].at, time.monotonic(), idle_worker=idle,
                         batch_size=s.batch_size, batch_ms=s.batch_ms)

    def _idle_wait(self) -> float:
        """How long to wait for reports before looking at the inbox again: until the oldest
        message's deadline, at most ``_IDLE_POLL_S`` (paho appends without waking us; waking less
        often leaves the GIL to paho's thread, the receiver's bottleneck)."""
        inbox = self.mqtt.inbox
        if not inbox:
            return _IDLE_POLL_S
        return max(min(inbox[0].at + self.settings.batch_ms / 1000 - time.monotonic(), _IDLE_POLL_S), 0.0)

    def _dispatch(self) -> bool:
        """Hand the next batch to the least busy worker with room; False when all are full."""
        worker = min(self._workers, key=lambda w: len(w.outstanding))
        if len(worker.outstanding) >= _DEPTH:
            return False
        inbox = self.mqtt.inbox
        pop = inbox.popleft
        batch = [pop() for _ in range(min(len(inbox), self.settings.batch_size))]
        raw = [(m.topic, bytes(m.payload)) for _, _, m in batch]  # paho hands over a bytearray
        seq = self._order.add(batch)
        worker.outstanding[seq] = raw
        worker.tasks.put((seq, raw))
        self.metrics.handout_wait.observe(time.monotonic() - batch[0].at)
        self.metrics.waiting.set(len(inbox) + sum(len(b) for b in self._pending_batches()))
        return True

    def _pending_batches(self) -> list[list[Received]]:
        return [self._order.batch(seq) for w in self._workers for seq in w.outstanding]

    def _service(self, timeout: float) -> None:
        """Wait up to ``timeout`` for reports or deaths and handle them."""
        by_handle: dict[object, _Worker] = {}
        for w in self._workers:
            by_handle[w.reports] = w
            by_handle[w.process.sentinel] = w
        handles: list[Connection | int] = [h for w in self._workers for h in (w.reports, w.process.sentinel)]
        for handle in wait(handles, timeout):
            worker = by_handle[handle]
            if worker is not self._workers[worker.slot]:
                continue  # already replaced in this round
            if handle is worker.reports:
                try:
                    self._handle(worker, worker.reports.recv())
                    continue
                except (EOFError, OSError):
                    worker.process.join(1)  # the pipe closed: the process is gone or going
            if not worker.process.is_alive():
                self._replace(worker)

    def _handle(self, worker: _Worker, report: Report | Failed) -> None:
        if isinstance(report, Failed):
            if report.fatal:
                raise WorkerFailed(report.error)
            raise WorkerFailed(f"worker {worker.slot} failed on a batch: {report.error}")
        if worker.outstanding.pop(report.seq, None) is not None:
            self.metrics.receipt_to_commit.observe(time.monotonic() - self._order.batch(report.seq)[0].at)
        # committed: tell the gateways, PUBACKs wait for the order
        self.mqtt.send_acks(report.outcome.acks, report.outcome.rejected)
        for batch in self._order.committed(report.seq):
            self.mqtt.ack_in_order(batch)
        record(self.metrics, report.outcome, retries=True)

    def _drain_into_workers(self) -> None:
        """On stop: hand out what was received, wait for every commit (bounded), ack in order."""
        log.info("draining %d received messages before exit", len(self.mqtt.inbox))
        deadline = time.monotonic() + self.settings.drain_timeout_s
        while (self.mqtt.inbox or len(self._order)) and time.monotonic() < deadline:
            if self.mqtt.inbox and self._dispatch():
                continue
            self._service(0.05)
        if self.mqtt.inbox or len(self._order):
            log.warning("drain timed out: the remaining messages stay un-acked (the broker resends them)")
