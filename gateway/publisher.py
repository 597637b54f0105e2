"""Drain the outbox to the broker at QoS 1; forget a reading only once ingest confirms it.

The service creates the paho client (``make_client``) and hands it to :class:`Publisher`; there
is no module-level client. One pump thread owns everything stateful: it claims rows from its own
outbox connection, publishes them, keeps ``mid → row id`` and applies acknowledgements. paho's
callbacks (network thread) only put events on a queue, so an ``on_publish`` that fires before
``publish()`` has returned is simply processed after the pump has registered the mid: no lock,
no race. In-flight messages are bounded by ``window`` (paho overwrites beyond ~65k queued QoS 1
messages, DOMAIN I2). While the link is down paho keeps the un-acked messages in memory and
resends them (DUP) after its automatic reconnect; if the process dies instead, the outbox moves
them back to pending on the next start. Either way ingest sees at-least-once, deduplicated by
``message_id``.

Two acknowledgements (``server_acks=True``, the default): the PUBACK moves a row to
``published``; ingest's ``rpmflow.ack.v1`` on ``rpm/v1/<id>/acks`` (subscribed on every connect:
sessions are clean) deletes it once the reading is committed in PostgreSQL. A PUBACK alone is not
enough because Mosquitto keeps its queue in memory: a broker crash, or a fresh broker without
ingest's subscription yet, drops messages it has acknowledged. Rows left unconfirmed past their
deadline go back to pending and are sent again. ``server_acks=False`` deletes on PUBACK (ingest
versions that send no acks).

The retained status (``rpm/v1/<id>/status``) is published on every connect, every
``status_interval_s`` and when asked; its last will says ``online: false``.

Errors are classified by :mod:`gateway.runtime.broker`. A PUBACK refusing the topic (0x87, the
ACL) is logged as such and the row goes back to pending, never counted as delivered. A refused
connection is logged once per reason; refused credentials for ``auth_timeout_s`` make the
publisher ``fatal`` and stop the service (one line, exit 3). A connection that fails before any
CONNACK (refused, unreachable, TLS) is diagnosed (:mod:`gateway.runtime.reach`) and logged once
per reason instead of paho's silent retry. Publish back-off is exponential with full jitter.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from gateway import wire
from gateway.acks import MalformedAck, acks_topic, parse_ack
from gateway.link_watch import LinkWatch
from gateway.mqtt_client import make_client, software_version
from gateway.outbox import CONFIRM_TIMEOUT_S, Outbox
from gateway.runtime import broker
from gateway.runtime.fatal import Fatal
from gateway.runtime.retry import AUTH_TIMEOUT_S, Backoff
from gateway.settings import Settings

__all__ = ["Publisher", "PublisherStats", "make_client", "software_version"]

log = logging.getLogger(__name__)

# PUBACK reason codes that will not change on a retry: keep the row as rejected with the reason.
TERMINAL_PUBACK_CODES = broker.PUBACK_TERMINAL  # topic name invalid, packet too large, payload format invalid
PUBLISH_BACKOFF = Backoff(base_s=0.5, cap_s=30.0)

DevicesSource = Callable[[], dict[str, dict[str, Any]]]
EXPIRE_EVERY_S = 1.0  # how often published rows are checked against their confirmation deadline


@dataclass
class PublisherStats:
    published: int = 0
    acked: int = 0  # PUBACKs (the broker has it)
    confirmed: int = 0  # rows deleted on ingest's acknowledgement
    resent: int = 0  # published rows sent again after their confirmation deadline
    malformed_acks: int = 0
    refused_by_ingest: int = 0  # readings ingest dead-lettered (wrong gateway, not enrolled, ...)
    released: int = 0
    rejected: int = 0
    connects: int = 0
    refused_topic: int = 0  # PUBACKs 0x87: the ACL refuses our readings topic
    last_error: str | None = None


class Publisher:
    """The pump thread between the outbox file and one paho client."""

    def __init__(
        self,
        client: mqtt.Client,
        *,
        gateway_id: str,
        outbox_path: Path,
        outbox_capacity: int,
        host: str,
        port: int,
        window: int = 100,
        status_interval_s: float = 30.0,
        devices: DevicesSource | None = None,
        software: str | None = None,
        server_acks: bool = True,
        confirm_timeout_s: float = CONFIRM_TIMEOUT_S,
        tls: bool = False,
        ca_file: Path | None = None,
        auth_timeout_s: float = AUTH_TIMEOUT_S,
    ) -> None:
        self.client = client
        self.gateway_id = gateway_id
        self.outbox_path = outbox_path
        self.outbox_capacity = outbox_capacity
        self.host = host
        self.port = port
        self.window = window
        self.status_interval_s = status_interval_s
        self.devices = devices or dict
        self.software = software or software_version()
        self.server_acks = server_acks
        self.confirm_timeout_s = confirm_timeout_s
        self.link = LinkWatch(host, port, f"gateway {gateway_id}", tls=tls, ca_file=ca_file,
                              auth_timeout_s=auth_timeout_s)
        self.fatal: Fatal | None = None  # set when the broker refused us past the bound
        self.on_fatal: Callable[[], None] = lambda: None  # the service stops when it is set
        self.stats = PublisherStats()
        self.connected = threading.Event()
        self.acks_subscribed = threading.Event()  # set once the broker granted the acks subscription
        self.ready = threading.Event()
        self._events: queue.SimpleQueue[tuple[str, Any, Any]] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._inflight: dict[int, int] = {}  # mid → outbox row id (pump thread only)
        self._pause_until = 0.0
        self._status_wanted = False
        self._last_status = 0.0
        self._failures = 0
        self._readings_topic = wire.readings_topic(gateway_id)
        self._status_topic = wire.status_topic(gateway_id)
        self._acks_topic = acks_topic(gateway_id)
        self._acks_sub_mid: int | None = None
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        client.on_connect_fail = self._on_connect_fail

    @classmethod
    def from_settings(cls, client: mqtt.Client, settings: Settings,
                      devices: DevicesSource | None = None) -> Publisher:
        target = settings.mqtt
        return cls(client, gateway_id=settings.gateway_id, outbox_path=settings.outbox_path,
                   outbox_capacity=settings.outbox_capacity, host=target.host, port=target.port,
                   window=settings.inflight_window, status_interval_s=settings.status_interval_s,
                   devices=devices, server_acks=settings.server_acks,
                   confirm_timeout_s=settings.confirm_timeout_s, tls=target.tls,
                   ca_file=settings.mqtt_ca_file, auth_timeout_s=settings.auth_timeout_s)

    # -- paho callbacks (network thread): enqueue only ---------------------------------------
    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: ReasonCode,
                    properties: Properties | None) -> None:
        if self.server_acks and not reason_code.is_failure:
            # Clean sessions: the subscription dies with every connection, so make it again here.
            _rc, self._acks_sub_mid = client.subscribe(self._acks_topic, qos=1)
        self._events.put(("connect", reason_code, None))

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: ReasonCode,
                       properties: Properties | None) -> None:
        self.acks_subscribed.clear()
        self._events.put(("disconnect", reason_code, None))

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reason_codes: list[ReasonCode],
                      properties: Properties | None) -> None:
        if mid != self._acks_sub_mid:
            return
        if reason_codes and not reason_codes[0].is_failure:
            self.acks_subscribed.set()
        else:
            log.error("broker refused the acks subscription %s (%s): readings will be re-sent every "
                      "confirmation timeout; check the ACL or set RPMFLOW_GATEWAY_SERVER_ACKS=false",
                      self._acks_topic, reason_codes)

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        self._events.put(("connect_fail", None, None))

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        self._events.put(("ack", message.topic, bytes(message.payload)))

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason_code: ReasonCode,
                    properties: Properties | None) -> None:
        self._events.put(("puback", mid, reason_code))

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        self.client.connect_async(self.host, self.port, keepalive=30, clean_start=True)
        self.client.loop_start()
        self._thread = threading.Thread(target=self._run, name="rpmflow-publisher", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """New rows are in the outbox (or the status changed): look now rather than at the next tick."""
        self._events.put(("wake", None, None))

    def request_status(self) -> None:
        self._events.put(("status", None, None))

    def stop(self, timeout: float = 5.0) -> None:
        """Publish ``online: false`` (retained), wait briefly for its PUBACK, then disconnect."""
        self._stop.set()
        self._events.put(("wake", None, None))
        if self._thread is not None:
            self._thread.join(timeout)
        try:
            if self.connected.is_set():
                with Outbox(self.outbox_path, self.outbox_capacity) as outbox:
                    info = self._publish_status(outbox, online=False)
                info.wait_for_publish(timeout=2.0)
        except (RuntimeError, ValueError, OSError) as exc:
            log.warning("could not publish the offline status: %s", exc)
        finally:
            self.client.disconnect()
            self.client.loop_stop()

    # -- the pump --------------------------------------------------------------------------------
    def _run(self) -> None:
        outbox = Outbox(self.outbox_path, self.outbox_capacity, confirm_timeout_s=self.confirm_timeout_s)
        self.ready.set()
        next_status = time.monotonic() + self.status_interval_s
        next_expiry = time.monotonic()
        try:
            while not self._stop.is_set():
                self._drain_events(outbox, timeout=0.2)
                now = time.monotonic()
                if not self.connected.is_set() and (fatal := self.link.gave_up(now)) is not None:
                    self.fatal = fatal
                    log.error("%s", fatal)
                    self.on_fatal()
                    break
                if self.server_acks and now >= next_expiry:
                    self._expire(outbox)
                    next_expiry = now + min(EXPIRE_EVERY_S, self.confirm_timeout_s / 2)
                due = now >= next_status or (self._status_wanted and now - self._last_status >= 1.0)
                if due and self.connected.is_set():
                    self._publish_status(outbox, online=True)
                    self._status_wanted = False
                    next_status = now + self.status_interval_s
                self._fill_window(outbox)
        except Exception:
            log.exception("publisher pump crashed")
            raise
        finally:
            outbox.close()

    def _drain_events(self, outbox: Outbox, timeout: float) -> None:
        """Apply every queued event; PUBACKs and ingest's confirmations are written in one
        transaction each per drain (order between them does not matter: a confirmation deletes a
        row in any state, and a PUBACK for a deleted row moves nothing)."""
        acked: list[int] = []
        confirmed: list[str] = []
        try:
            event = self._events.get(timeout=timeout)
            while True:
                self._handle(event, outbox, acked, confirmed)
                event = self._events.get_nowait()
        except queue.Empty:
            pass
        if acked:
            if self.server_acks:
                outbox.published(acked)
            else:
                outbox.ack(acked)
            self.stats.acked += len(acked)
        if confirmed:
            deleted = outbox.confirm(confirmed)
            self.stats.confirmed += deleted
            if deleted < len(confirmed):
                log.debug("acks named %d ids, %d were still queued (duplicates or already confirmed)",
                          len(confirmed), deleted)

    def _handle(self, event: tuple[str, Any, Any], outbox: Outbox, acked: list[int],
                confirmed: list[str]) -> None:
        kind, a, b = event
        if kind == "puback":
            row_id = self._inflight.pop(int(a), None)
            if row_id is None:
                return  # a status message, or an ack for a mid we no longer track
            self._puback(outbox, row_id, b, acked)
        elif kind == "connect":
            code = a
            if code.is_failure:
                self.link.refused(code.value, time.monotonic())
                self.stats.last_error = self.link.last_error
                return
            self.link.connected()
            self.stats.connects += 1
            self.connected.set()
            log.info("connected to %s:%d as %s", self.host, self.port, self.gateway_id)
            self._publish_status(outbox, online=True)
        elif kind == "disconnect":
            if self.connected.is_set():
                log.warning("broker connection lost (%s); %d messages in flight wait for the reconnect",
                            a, len(self._inflight))
            self.connected.clear()
        elif kind == "connect_fail":
            self.link.unreachable()
            self.stats.last_error = self.link.last_error
        elif kind == "status":
            self._status_wanted = True
        elif kind == "ack":
            confirmed.extend(self._parse_ack(str(a), b))

    def _parse_ack(self, topic: str, payload: bytes) -> list[str]:
        """The ids ingest stored or refused (the outbox forgets both); a bad ack is logged and
        ignored (its readings get re-sent)."""
        if topic != self._acks_topic:
            log.warning("ignoring a message on unexpected topic %s", topic)
            return []
        try:
            ack = parse_ack(payload, self.gateway_id)
        except MalformedAck as exc:
            self.stats.malformed_acks += 1
            log.warning("%s: ignored (the readings it names will be re-sent and acked again)", exc)
            return []
        for mid, reason in ack.rejected:
            log.error("ingest refused reading %s: %s (kept there as a dead letter for an admin;"
                      " see docs/enrolling-a-gateway.md)", mid, reason)
        self.stats.refused_by_ingest += len(ack.rejected)
        return ack.done

    def _expire(self, outbox: Outbox) -> None:
        n = outbox.expire_published()
        if n:
            self.stats.resent += n
            log.warning("%d published readings were not confirmed by ingest in time: sending them again", n)

    def _puback(self, outbox: Outbox, row_id: int, code: ReasonCode, acked: list[int]) -> None:
        kind = broker.puback_kind(code.value)
        if kind is None:
            acked.append(row_id)
            self._failures = 0
        elif code.value in TERMINAL_PUBACK_CODES:
            outbox.reject(row_id, f"broker refused: {broker.describe(code.value)}")
            self.stats.rejected += 1
        else:
            outbox.release([row_id])  # back to pending: never counted as delivered
            self.stats.released += 1
            if code.value == broker.NOT_AUTHORIZED:
                self.stats.refused_topic += 1
                why = (f"broker refused topic {self._readings_topic}: {broker.describe(code.value)}; "
                       f"check the ACL of {self.gateway_id} (readings stay in the outbox)")
            else:
                why = f"broker answered {broker.describe(code.value)}"
            self._backoff(why, error=code.value == broker.NOT_AUTHORIZED)

    def _backoff(self, why: str, *, error: bool = False) -> None:
        self._failures += 1
        delay = PUBLISH_BACKOFF.delay(self._failures)
        self._pause_until = time.monotonic() + delay
        self.stats.last_error = why
        level = logging.ERROR if error else logging.WARNING
        log.log(level, "publish failed (%s); pausing %.1f s", why, delay)

    def _fill_window(self, outbox: Outbox) -> None:
        if not self.connected.is_set() or time.monotonic() < self._pause_until:
            return
        room = self.window - len(self._inflight)
        if room <= 0:
            return
        for row in outbox.claim(room):
            info = self.client.publish(self._readings_topic, row.payload.encode(), qos=1)
            if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
                outbox.release([row.id])  # paho did not take it: back to pending
                self.stats.released += 1
                self._backoff(f"paho publish rc {info.rc}")
                return
            # NO_CONN: paho queued it and sends it after reconnecting, so it stays in flight.
            self._inflight[info.mid] = row.id
            self.stats.published += 1

    def _publish_status(self, outbox: Outbox, *, online: bool) -> mqtt.MQTTMessageInfo:
        self._last_status = time.monotonic()
        counts = outbox.counts()
        depth = counts["pending"] + counts["in_flight"] + counts["published"]
        msg = wire.status_message(
            gateway_id=self.gateway_id, online=online, at=datetime.now(UTC), outbox_depth=depth,
            outbox_capacity=self.outbox_capacity, outbox_full=depth >= self.outbox_capacity,
            devices=self.devices(), software=self.software,
        )
        msg["awaiting_confirmation"] = counts["published"]
        return self.client.publish(self._status_topic, json.dumps(msg, separators=(",", ":")), qos=1,
                                   retain=True)

    @property
    def in_flight(self) -> int:
        return len(self._inflight)
