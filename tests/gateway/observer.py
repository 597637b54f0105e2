"""Test helpers for the gateway tests and bench: a counting MQTT subscriber (``rpmflow-observer``)
and a stand-in for ingest that acknowledges readings (``rpmflow-ingest``)."""

from __future__ import annotations

import json
import secrets
import threading
from collections import defaultdict
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from simulators.embedded_mosquitto import INGEST_USER, OBSERVER_USER, EmbeddedMosquitto


class Observer:
    """Subscribes to ``rpm/v1/<gateway>/#`` with a persistent session (fresh at its first connect),
    so a broker restart or a reconnect loses nothing, and records every reading and status it
    receives."""

    def __init__(self, broker: EmbeddedMosquitto, gateway_id: str) -> None:
        self.gateway_id = gateway_id
        self.readings: list[dict[str, Any]] = []
        self.statuses: list[dict[str, Any]] = []
        self.acks: list[bytes] = []
        self.by_id: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.subscribed = threading.Event()
        self.subscriptions = 0  # SUBACKs so far: one more after every reconnect
        self._lock = threading.Lock()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"observer-{secrets.token_hex(4)}", protocol=mqtt.MQTTv5
        )
        self.client.username_pw_set(OBSERVER_USER, broker.accounts[OBSERVER_USER])
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.client.reconnect_delay_set(1, 2)
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 600
        # Clean on the first connect only: the broker binds the client id to the shared observer
        # account, so resuming would inherit an earlier test's subscriptions and queued messages
        # (other gateways' readings); later reconnects resume this observer's own session.
        self.client.connect_async("127.0.0.1", broker.port, clean_start=mqtt.MQTT_CLEAN_START_FIRST_ONLY,
                                  properties=props)
        self.client.loop_start()

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        client.subscribe(f"rpm/v1/{self.gateway_id}/#", qos=1)

    def _on_subscribe(self, *args: Any) -> None:
        with self._lock:
            self.subscriptions += 1
        self.subscribed.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if msg.topic.endswith("/acks"):  # ingest's acknowledgements (tests may send malformed ones)
            with self._lock:
                self.acks.append(bytes(msg.payload))
            return
        payload = json.loads(msg.payload)
        with self._lock:
            if msg.topic.endswith("/readings"):
                self.readings.append(payload)
                self.by_id[payload["message_id"]].append(payload)
            else:
                self.statuses.append(payload)

    def keys(self) -> set[tuple[str, str]]:
        """(device id, measurement raw hex) of every reading received."""
        with self._lock:
            return {(r["device"]["id"], r["raw"].split("+")[0]) for r in self.readings}

    def count(self) -> int:
        with self._lock:
            return len(self.readings)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Acker:
    """Plays ingest for the gateway tests: the ``rpmflow-ingest`` account subscribes to one
    gateway's readings and, with ``auto=True``, answers each with an ``rpmflow.ack.v1`` on
    ``rpm/v1/<gateway>/acks``. ``received`` counts every delivery per message id."""

    def __init__(self, broker: EmbeddedMosquitto, gateway_id: str, *, auto: bool = True,
                 user: str | None = None) -> None:
        self.gateway_id = gateway_id
        self.auto = auto
        self.received: dict[str, int] = defaultdict(int)
        self.subscribed = threading.Event()
        self._lock = threading.Lock()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"acker-{secrets.token_hex(4)}", protocol=mqtt.MQTTv5
        )
        # An ingest account of its own: the broker binds client ids to usernames, so sharing one
        # with another client of the same test would cut one of them off. ``user``: an account
        # provisioned earlier (no reload now, see EmbeddedMosquitto.reload).
        user = user or f"{INGEST_USER}-{secrets.token_hex(3)}"
        broker.add_ingest(user)
        self.client.username_pw_set(user, broker.accounts[user])
        self.client.on_connect = lambda c, *a: c.subscribe(f"rpm/v1/{gateway_id}/readings", qos=1)
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(1, 2)
        self.client.connect_async("127.0.0.1", broker.port, clean_start=True)
        self.client.loop_start()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        message_id = json.loads(msg.payload)["message_id"]
        with self._lock:
            self.received[message_id] += 1
        if self.auto:
            self.ack([message_id])

    def ack(self, message_ids: list[str]) -> None:
        """Publish one ack naming ``message_ids`` (as ingest does after its commit)."""
        self.send(json.dumps({"schema": "rpmflow.ack.v1", "gateway_id": self.gateway_id,
                              "message_ids": message_ids, "committed_at": "2026-01-01T00:00:00Z"}).encode())

    def send(self, payload: bytes) -> None:
        self.client.publish(f"rpm/v1/{self.gateway_id}/acks", payload, qos=1)

    def ids(self) -> set[str]:
        with self._lock:
            return set(self.received)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
