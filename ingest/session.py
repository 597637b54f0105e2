"""Ingest's MQTT side, owned by both ways of running ingest (composition, not inheritance).

:class:`~ingest.consumer.Consumer` (validate and write on this process's threads) and
:class:`~ingest.receiver.Receiver` (worker processes) each own one :class:`MqttSession`: the paho
client with its persistent session, the inbox paho appends to, the end-to-end ack sender, the
in-order PUBACKs, and the watch on the broker connection (``gateway/link_watch.py``).

Delivery guarantees (DOMAIN.md Part I):

- MQTT v5, a fixed client id, ``clean_start=False`` and a Session Expiry Interval: the broker
  keeps our subscriptions and queues QoS 1 messages while we are away, and resends every message
  we did not acknowledge when we come back.
- ``manual_ack=True``: paho does not PUBACK when ``on_message`` returns; the owner calls
  :meth:`MqttSession.ack_in_order` only after the batch holding a message is committed. Receive
  Maximum bounds how many un-acked messages the broker lets us hold.
- Acks only go to the connection a message arrived on: after a reconnect the broker resends
  un-acked messages anyway, and those copies are the ones we acknowledge.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections import deque
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
from ingest import paho_receive
from ingest.acks import AckGroups, AckSender, Rejections
from ingest.errors import BrokerUnavailable
from ingest.identity import IdentityLock
from ingest.metrics import Metrics
from ingest.settings import Settings

log = logging.getLogger("ingest.consumer")


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
    """The one paho client of an ingest process (callbacks are attached by :class:`MqttSession`),
    with the cheaper receive path of ``ingest/paho_receive.py``."""
    target = settings.mqtt
    client = paho_receive.make(
        CallbackAPIVersion.VERSION2, client_id=settings.session_id, protocol=mqtt.MQTTv5, manual_ack=True,
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


class MqttSession:
    """The broker side of one ingest process."""

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.settings = settings
        # paho's thread appends, the owner pops from the left: deque operations are atomic, so the
        # receive callback takes no lock and wakes nobody (the owner polls while idle).
        self.inbox: deque[Received] = deque()
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.metrics = metrics
        self.identity = IdentityLock(settings.database_url, settings.session_id,
                                     application_name=f"rpmflow-ingest:{settings.session_id}:identity",
                                     auth_timeout_s=settings.auth_timeout_s,
                                     startup_timeout_s=settings.startup_timeout_s)
        self._had_session = False  # a CONNACK of this process said "session present" (or made one)
        self._generation = 0
        self._gen_lock = threading.Lock()
        target = settings.mqtt
        self.link = LinkWatch(target.host, target.port, f"ingest {settings.session_id}", tls=target.tls,
                              ca_file=None, auth_timeout_s=settings.auth_timeout_s, logger=log.name)
        self.client = make_client(settings)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_connect_fail = self._on_connect_fail
        self.client.on_subscribe = self._on_subscribe
        self.acks = AckSender(self.client, metrics, enabled=settings.send_acks)
        self.client.on_publish = self.acks.on_publish

    @property
    def connections(self) -> int:
        """How many times this process has connected (1 = never cut off since it started)."""
        with self._gen_lock:
            return self._generation

    @property
    def readings_filter(self) -> str:
        if self.settings.shared:
            return f"$share/{self.settings.group}/{READINGS_FILTER}"
        return READINGS_FILTER

    def claim(self) -> None:
        """Take this process's MQTT identity (ingest/identity.py) or raise; once is enough."""
        if not self.identity.held:
            self.identity.acquire()

    def start(self) -> None:
        """Claim this process's MQTT identity, then connect to its session."""
        self.claim()
        s = self.settings
        target = s.mqtt
        self.client.connect_async(target.host, target.port, keepalive=30, clean_start=False,
                                  properties=connect_properties(s))
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        self.identity.release()

    def gave_up(self) -> Fatal | None:
        """Another process took our identity (exit 2), or the broker refused our credentials past
        ``auth_timeout_s`` (exit 3): the owner stops."""
        if self.identity.taken is not None:
            return self.identity.taken
        if self.connected.is_set():
            return None
        return self.link.gave_up(time.monotonic())

    def send_acks(self, groups: AckGroups, rejected: Rejections | None = None) -> None:
        """Committed: tell the gateways (before the PUBACKs, which may wait for the order)."""
        self.acks.send(groups, rejected=rejected)

    def ack_in_order(self, batch: list[Received]) -> None:
        """PUBACK a committed batch, in receive order, on the connection it arrived on."""
        with self._gen_lock:
            current = self._generation
        stale = 0
        mids: list[int] = []
        for generation, _, msg in batch:
            if msg.qos == 0:
                continue
            if generation != current:
                stale += 1  # the broker resends it on the new connection; that copy gets the ack
                continue
            mids.append(msg.mid)  # QoS 1: the only QoS ingest subscribes with
        if isinstance(self.client, paho_receive.IngestClient):
            self.client.ack_many(mids)
        else:
            for mid in mids:
                self.client.ack(mid, 1)
        if stale:
            log.info("%d committed messages arrived on an earlier connection: not acked here", stale)

    # -- paho thread ---------------------------------------------------------------------------------

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: mqtt.ConnectFlags,
                    reason_code: ReasonCode, properties: Properties | None) -> None:
        if reason_code.is_failure:
            self.link.refused(reason_code.value, time.monotonic())  # logged once per reason
            return
        self.link.connected()
        with self._gen_lock:
            self._generation += 1
        self._check_session(flags.session_present)
        client.subscribe([
            (self.readings_filter, SubscribeOptions(qos=1)),
            (STATUS_FILTER, SubscribeOptions(qos=1, retainHandling=SubscribeOptions.RETAIN_SEND_IF_NEW_SUB)),
        ])
        self.connected.set()

    def _check_session(self, present: bool) -> None:
        """A broker that answers "no session" after this process had one has lost it (expired,
        broker restarted without its persistence file): what was queued for us is gone, and only
        the gateways' re-sends of unconfirmed readings bring it back. Said once per loss, counted."""
        sid = self.settings.session_id
        if present or not self._had_session:
            log.info("connected as %s (session present: %s)", sid, present)
            if not present:
                log.info("the broker had no session for %s: it starts one now (new account or first start "
                         "on this broker); messages queue for it once it has subscribed", sid)
        else:
            self.metrics.sessions_lost.inc()
            log.error("SESSION LOST: the broker had no session for %s although this process had one: "
                      "messages queued for ingest while it was away are gone (expired after "
                      "RPMFLOW_INGEST_SESSION_EXPIRY_S, or the broker lost its persistence); gateways "
                      "re-send readings ingest never confirmed", sid)
        self._had_session = True

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reason_codes: list[ReasonCode],
                      properties: Properties | None) -> None:
        refused = [str(rc) for rc in reason_codes if rc.is_failure]
        if refused:
            log.error("%s", BrokerUnavailable(f"subscription refused: {refused}; check the ingest "
                                              "account's ACL (read rpm/v1/+/readings and rpm/v1/+/status)"))
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
        self.inbox.append(Received(self._generation, time.monotonic(), msg))
