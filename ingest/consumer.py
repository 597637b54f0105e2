"""The MQTT side of ingest: receive, batch, commit, then acknowledge, in that order.

Delivery guarantees (DOMAIN.md Part I):

- MQTT v5, a fixed client id, ``clean_start=False`` and a Session Expiry Interval: the broker
  keeps our subscriptions and queues QoS 1 messages while we are away, and resends every message
  we did not acknowledge when we come back.
- ``manual_ack=True``: paho does not PUBACK when ``on_message`` returns; we PUBACK each message
  only after the batch holding it is committed, in receive order. Receive Maximum bounds how many
  un-acked messages the broker lets us hold (Mosquitto's 3.1.1 default of 20 would stall us).
- The insert is idempotent (``reading_keys``), so a redelivery after a crash stores nothing twice.
- Database outage: the batch is kept and retried with back-off, nothing is acked, the broker stops
  sending at Receive Maximum and queues the rest. SIGTERM: commit what was received, ack, exit.
- Acks only go to the connection a message arrived on: after a reconnect the broker resends
  un-acked messages anyway, and those copies are the ones we acknowledge.
- After each commit, and before its PUBACKs, the committed readings are acknowledged end to end to
  their gateways on ``rpm/v1/<gw>/acks`` (``ingest/acks.py``; ``send_acks=False`` turns it off).
"""

from __future__ import annotations

import logging
import queue
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, NamedTuple

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from gateway.contract import READINGS_FILTER, STATUS_FILTER
from gateway.link_watch import LinkWatch
from gateway.runtime.fatal import Fatal
from gateway.runtime.retry import ErrorKind, GaveUp
from ingest.acks import AckSender
from ingest.commit import Outcome, commit, items_of
from ingest.errors import BrokerUnavailable
from ingest.items import Item
from ingest.metrics import Metrics
from ingest.settings import Settings
from ingest.writer import BatchWriter

log = logging.getLogger(__name__)

_IDLE_POLL_S = 0.002  # how often the collector looks at an empty inbox


class Received(NamedTuple):
    """One message as paho handed it over (a tuple: the receive callback must stay cheap)."""

    generation: int  # which connection it arrived on
    at: float  # time.monotonic() at receipt
    message: mqtt.MQTTMessage

    @property
    def topic(self) -> str:
        return self.message.topic

    @property
    def payload(self) -> bytes:
        return bytes(self.message.payload)  # paho hands over a bytearray


def make_client(settings: Settings) -> mqtt.Client:
    """The one paho client of this consumer (callbacks are attached by :class:`Consumer`)."""
    target = settings.mqtt
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=settings.client_id, protocol=mqtt.MQTTv5, manual_ack=True,
    )
    if target.username:
        client.username_pw_set(target.username, target.password)
    if target.tls:
        client.tls_set_context(ssl.create_default_context(cafile=settings.mqtt_ca_file or None))
    client.reconnect_delay_set(min_delay=1, max_delay=5)
    return client


def connect_properties(settings: Settings) -> Properties:
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = settings.session_expiry_s
    props.ReceiveMaximum = settings.receive_maximum
    return props


class Consumer:
    """Runs until ``stop`` is set; ``on_commit`` (optional) sees each committed batch."""

    def __init__(self, settings: Settings, *, metrics: Metrics | None = None,
                 on_commit: Callable[[list[Received], Outcome], None] | None = None) -> None:
        self.settings = settings
        self.metrics = metrics or Metrics()
        self._on_commit = on_commit
        # paho's thread appends, the collector pops from the left: deque operations are atomic, so
        # the receive callback takes no lock and wakes nobody (the collector polls while idle).
        self._inbox: deque[Received] = deque()
        self._batches: queue.Queue[tuple[list[Received], list[Item]] | None] = queue.Queue(maxsize=2)
        self._crash: BaseException | None = None
        self._generation = 0
        self._gen_lock = threading.Lock()
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self._writer = BatchWriter(settings.database_url,
                                   application_name=f"rpmflow-ingest:{settings.client_id}")
        self._client = make_client(settings)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.on_connect_fail = self._on_connect_fail
        self._client.on_subscribe = self._on_subscribe
        target = settings.mqtt
        self.link = LinkWatch(target.host, target.port, f"ingest {settings.client_id}", tls=target.tls,
                              ca_file=None, auth_timeout_s=settings.auth_timeout_s, logger=__name__)
        self._acks = AckSender(self._client, self.metrics, enabled=settings.send_acks)
        self._client.on_publish = self._acks.on_publish

    @property
    def readings_filter(self) -> str:
        if self.settings.shared:
            return f"$share/{self.settings.group}/{READINGS_FILTER}"
        return READINGS_FILTER

    # -- paho thread ---------------------------------------------------------------------------------

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: mqtt.ConnectFlags,
                    reason_code: ReasonCode, properties: Properties | None) -> None:
        if reason_code.is_failure:
            self.link.refused(reason_code.value, time.monotonic())  # logged once per reason
            return
        self.link.connected()
        with self._gen_lock:
            self._generation += 1
        log.info("connected as %s (session present: %s)", self.settings.client_id, flags.session_present)
        client.subscribe([
            (self.readings_filter, SubscribeOptions(qos=1)),
            (STATUS_FILTER, SubscribeOptions(qos=1, retainHandling=SubscribeOptions.RETAIN_SEND_IF_NEW_SUB)),
        ])
        self.connected.set()

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reason_codes: list[ReasonCode],
                      properties: Properties | None) -> None:
        refused = [str(rc) for rc in reason_codes if rc.is_failure]
        if refused:
            log.error("%s", BrokerUnavailable(f"subscription refused: {refused}"))
            return
        log.info("subscribed to %s and %s", self.readings_filter, STATUS_FILTER)
        self.subscribed.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: mqtt.DisconnectFlags,
                       reason_code: ReasonCode, properties: Properties | None) -> None:
        self.connected.clear()
        self.subscribed.clear()
        if reason_code.is_failure:
            log.warning("%s", BrokerUnavailable(f"disconnected from the broker: {reason_code}"))

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        self.link.unreachable()  # paho says nothing about why: find out, say it once per reason

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        self._inbox.append(Received(self._generation, time.monotonic(), msg))

    # -- two stages: collect + validate (caller's thread), write + ack (writer thread) ----------------
    #
    # While the writer thread waits on PostgreSQL (psycopg releases the GIL), the caller's thread
    # validates the next batch. The writer handles batches one at a time, in order, so acks still
    # go out in receive order. The hand-over queue is small: back-pressure, not buffering.

    def run(self, stop: threading.Event) -> None:
        s = self.settings
        target = s.mqtt
        self.metrics.serve(s.metrics_port)
        self._client.connect_async(target.host, target.port, keepalive=30, clean_start=False,
                                   properties=connect_properties(s))
        self._client.loop_start()
        writer = threading.Thread(target=self._write_loop, args=(stop,), name="ingest-writer", daemon=True)
        writer.start()
        try:
            while not stop.is_set() and not self.broker_gave_up(stop):
                batch = self._collect()
                if batch:
                    self._handover(batch, stop)
            self._drain(stop)
        finally:
            self._batches.put(None)
            writer.join()
            self._client.disconnect()
            self._client.loop_stop()
            self._writer.close()
        if self._crash is not None:
            raise self._crash

    def broker_gave_up(self, stop: threading.Event) -> bool:
        """The broker refused our credentials past ``auth_timeout_s``: stop, exit 3 (nothing acked)."""
        if self.connected.is_set() or (fatal := self.link.gave_up(time.monotonic())) is None:
            return False
        log.error("%s; stopping", fatal)
        self._crash = fatal
        stop.set()
        return True

    def _collect(self) -> list[Received]:
        """Up to ``batch_size`` messages, once that many are waiting or the oldest is ``batch_ms`` old."""
        inbox, size = self._inbox, self.settings.batch_size
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
        self.metrics.waiting.set(len(self._inbox) + len(batch))
        self._batches.put((batch, items))

    def _drain(self, stop: threading.Event) -> None:
        """On stop: hand over what was already received; the writer commits it within the timeout."""
        pending: list[Received] = []
        while self._inbox:
            pending.append(self._inbox.popleft())
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
        self._acks.send(done.acks)  # committed: tell the gateways, then PUBACK in order
        self._ack(batch)
        self._record(done)
        if self._on_commit is not None:
            self._on_commit(batch, done)
        return True

    def _ack(self, batch: list[Received]) -> None:
        with self._gen_lock:
            current = self._generation
        stale = 0
        ack = self._client.ack
        for generation, _, msg in batch:  # receive order, as MQTT requires
            if msg.qos == 0:
                continue
            if generation != current:
                stale += 1  # the broker resends it on the new connection; that copy gets the ack
                continue
            ack(msg.mid, msg.qos)
        if stale:
            log.info("%d committed messages arrived on an earlier connection: not acked here", stale)

    def _record(self, done: Outcome) -> None:
        """Metrics of one committed batch (the receiver's worker reports come here too)."""
        m = self.metrics
        m.batches.inc()
        m.batch_seconds.observe(done.seconds)
        m.messages.labels("inserted").inc(done.inserted)
        m.messages.labels("duplicate").inc(done.duplicates)
        m.messages.labels("status").inc(done.statuses)
        m.messages.labels("dead_letter").inc(sum(done.dead_letters.values()))
        for error_class, n in done.dead_letters.items():
            m.dead_letters.labels(error_class).inc(n)
        observe = m.commit_lag.observe
        for lag in done.lags:
            observe(lag)
