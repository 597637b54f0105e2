"""End-to-end acks to gateways: a committed reading is confirmed on ``rpm/v1/<gw>/acks``.

The pure part (which ids, which topic, how split) is tested with plain values; the rest with the
real broker and database: gateways listen with their own accounts, the observer account sees every
ack on every topic (so an ack on the wrong gateway's topic cannot hide).
"""

from __future__ import annotations

import json
import secrets
import threading
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from ingest.acks import ack_groups, ack_payloads, dead_letter_message_id, readings_gateway, rejection_groups
from ingest.consumer import Consumer
from ingest.items import Rejection
from ingest.pipeline import classify
from ingest.receiver import Receiver
from ingest.settings import parse_mqtt_url
from simulators.embedded_mosquitto import OBSERVER_USER, EmbeddedMosquitto
from simulators.embedded_postgres import DatabaseUrls
from tests.ingest.helpers import (
    EXAMPLE,
    Publisher,
    count,
    dumps,
    enrol,
    make_settings,
    reading,
    running_consumer,
    status,
    unique_reading,
)
from tests.waiting import wait_for

Conn = psycopg.Connection[tuple[Any, ...]]
NOW = datetime(2025, 11, 23, 15, 0, tzinfo=UTC)


# -- pure ------------------------------------------------------------------------------------------


def test_ack_groups_by_topic_gateway_with_dead_letters_rejected_and_without_statuses() -> None:
    good = unique_reading("gw-a", 1)
    bad_with_id = unique_reading("gw-a", 2, kind="thermometer")
    spoofed = unique_reading("gw-a", 3)  # claims gw-a, arrives on gw-b's topic
    foreign = unique_reading("gw-a", 4)  # refused by the binding (the writer says so)
    items = [
        classify("rpm/v1/gw-a/readings", dumps(good), now=NOW),
        classify("rpm/v1/gw-a/readings", dumps(good), now=NOW),  # twice in a batch: acked once
        classify("rpm/v1/gw-a/readings", dumps(bad_with_id), now=NOW),
        classify("rpm/v1/gw-a/readings", b"\xff not json", now=NOW),
        classify("rpm/v1/gw-a/readings", b'{"message_id": 7}', now=NOW),
        classify("rpm/v1/gw-a/readings", b'{"message_id": "not-hex"}', now=NOW),
        classify("rpm/v1/gw-a/readings", b"[1, 2]", now=NOW),
        classify("rpm/v1/gw-a/status", dumps(status("gw-a", "2025-11-23T12:00:00Z")), now=NOW),
        classify("rpm/v1/gw-a/status", b'{"message_id": "0123"}', now=NOW),  # a bad status: no ack
        classify("rpm/v1/gw-b/readings", dumps(spoofed), now=NOW),
        classify("rpm/v1/gw-a/readings", dumps(foreign), now=NOW),
    ]
    batch = [x for x in items if x is not None]
    binding = [Rejection("gw-a", foreign["message_id"], "wrong_gateway")]
    assert ack_groups(batch, binding) == {"gw-a": [good["message_id"]]}  # ok: stored only
    assert rejection_groups(batch, binding) == {
        "gw-a": [(foreign["message_id"], "wrong_gateway"), (bad_with_id["message_id"], "contract_violation")],
        "gw-b": [(spoofed["message_id"], "contract_violation")],
    }


def test_topic_and_dead_letter_id_extraction() -> None:
    assert readings_gateway("rpm/v1/gw!odd/readings") == "gw!odd"
    assert readings_gateway("rpm/v1/gw-1/status") is None
    assert readings_gateway("rpm/v1//readings") is None
    assert readings_gateway("rpm/v1/a/b/readings") is None
    mid = "0123456789abcdef0123456789abcdef"
    assert dead_letter_message_id(b'{"message_id": "%s", "kind": 1}' % mid.encode()) == mid
    # The gateway refuses a whole ack listing a malformed id: such ids are never acked.
    assert dead_letter_message_id(b'{"message_id": "abc"}') is None
    assert dead_letter_message_id(b'{"message_id": "%s"}' % mid.upper().encode()) is None
    assert dead_letter_message_id(b'{"message_id": ""}') is None
    assert dead_letter_message_id(b"[" * 100_000) is None
    assert dead_letter_message_id(b'"0123456789abcdef0123456789abcdef"') is None


def test_ack_payloads_split_at_1000_ids() -> None:
    ids = [f"{i:032x}" for i in range(2001)]
    out = ack_payloads("gw-a", ids, datetime(2025, 11, 23, 14, 0, 1, 500_000, tzinfo=UTC))
    assert [n for n, _ in out] == [1000, 1000, 1]
    bodies = [json.loads(p) for _, p in out]
    assert [i for b in bodies for i in b["message_ids"]] == ids
    assert bodies[0] == {"schema": "rpmflow.ack.v1", "gateway_id": "gw-a", "message_ids": ids[:1000],
                         "committed_at": "2025-11-23T14:00:01.500Z"}


def test_rejected_readings_go_in_their_own_list_with_the_reason() -> None:
    at = datetime(2025, 11, 23, 14, 0, 1, tzinfo=UTC)
    out = ack_payloads("gw-a", ["a" * 32], at, [("b" * 32, "wrong_gateway")] * 1001)
    assert [n for n, _ in out] == [1, 1000, 1]
    bodies = [json.loads(p) for _, p in out]
    assert "rejected" not in bodies[0]
    assert bodies[1]["message_ids"] == [] and bodies[1]["rejected"][0] == {"message_id": "b" * 32,
                                                                            "reason": "wrong_gateway"}


def _sample(consumer: Consumer | Receiver, name: str, **labels: str) -> float:
    return consumer.metrics.registry.get_sample_value(name, labels) or 0.0


# -- end to end ------------------------------------------------------------------------------------


class AckListener:
    """Collects (topic, ack payload) from ``topic_filter``; with ``database_url``, also records
    which acked ids were already committed when their ack arrived. With ``on``, it listens on that
    gateway publisher's own connection, as a real gateway does: the broker binds client ids to
    usernames, so a second connection with the same account would take the first one's place."""

    def __init__(self, broker: EmbeddedMosquitto, user: str, topic_filter: str,
                 database_url: str | None = None, on: Publisher | None = None) -> None:
        self.acks: list[tuple[str, dict[str, Any]]] = []
        self.uncommitted_at_ack: list[str] = []
        self.other: list[str] = []  # topics of anything else received (e.g. the barrier status)
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self._db = psycopg.connect(database_url, autocommit=True) if database_url else None
        self._own = on is None
        if on is not None:
            self.client = on.client
            self.client.on_message = self._on_message
            self.client.on_subscribe = lambda *a: self._subscribed.set()
            self.client.subscribe(topic_filter, qos=1)
        else:
            target = parse_mqtt_url(broker.url_for(user))
            self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"acks-{secrets.token_hex(3)}",
                                      protocol=mqtt.MQTTv5)
            self.client.username_pw_set(target.username, target.password)
            self.client.on_message = self._on_message
            self.client.on_subscribe = lambda *a: self._subscribed.set()
            self.client.on_connect = lambda c, *a: c.subscribe(topic_filter, qos=1)
            self.client.connect(target.host, target.port)
            self.client.loop_start()
        wait_for(self._subscribed.is_set, 10, f"{user} subscribed to {topic_filter}")

    def _on_message(self, client: Any, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if not msg.topic.endswith("/acks"):
            with self._lock:
                self.other.append(msg.topic)
            return
        body = json.loads(msg.payload)
        missing: list[str] = []
        if self._db is not None:
            ids = [*body["message_ids"], *(r["message_id"] for r in body.get("rejected", []))]
            found = {r[0] for r in self._db.execute(
                "SELECT i FROM unnest(%s::text[]) i WHERE EXISTS"
                " (SELECT 1 FROM readings r WHERE r.message_id = i::uuid) OR EXISTS"
                " (SELECT 1 FROM dead_letters d WHERE position(convert_to(i, 'UTF8') in d.payload) > 0)",
                (ids,))}
            missing = [i for i in ids if i not in found]
        with self._lock:
            self.acks.append((msg.topic, body))
            self.uncommitted_at_ack.extend(missing)

    def ids(self, topic: str | None = None) -> list[str]:
        """The ids confirmed as stored."""
        with self._lock:
            return [i for t, b in self.acks if topic is None or t == topic for i in b["message_ids"]]

    def rejected(self) -> dict[str, str]:
        """The ids named as refused, with their reason."""
        with self._lock:
            return {r["message_id"]: r["reason"] for _, b in self.acks for r in b.get("rejected", [])}

    def close(self) -> None:
        if self._own:
            self.client.disconnect()
            self.client.loop_stop()
        if self._db is not None:
            self._db.close()


@pytest.mark.parametrize("workers", [0, 1], ids=["in-process", "default-1-worker"])
def test_committed_duplicate_and_dead_lettered_readings_are_acked_to_their_own_gateway(
    database_urls: DatabaseUrls,
    broker: EmbeddedMosquitto, gateway_id: str, database_url: str, db: Conn, workers: int
) -> None:
    gw_a, gw_b = gateway_id, f"{gateway_id}-b"
    broker.add_gateways([gw_b])
    topic_a, topic_b = f"rpm/v1/{gw_a}/readings", f"rpm/v1/{gw_b}/readings"
    stored = unique_reading(gw_a, 1)
    dead_with_id = unique_reading(gw_a, 2, kind="thermometer")
    spoofed = unique_reading(gw_a, 3)  # claims gateway A, published by B on B's own topic
    stored_b = unique_reading(gw_b, 1, device={**EXAMPLE["device"], "id": "CUFF-B"})
    marker = unique_reading(gw_a, 4)  # published after the id-less dead letters
    enrol(db, EXAMPLE["device"]["id"], gw_a)
    enrol(db, "CUFF-B", gw_b)

    observer = AckListener(broker, OBSERVER_USER, "rpm/v1/+/acks")
    pub_a, pub_b = Publisher(broker, gw_a), Publisher(broker, gw_b)
    listen_a = AckListener(broker, gw_a, f"rpm/v1/{gw_a}/acks", database_url, on=pub_a)
    listen_b = AckListener(broker, gw_b, f"rpm/v1/{gw_b}/acks", on=pub_b)
    try:
        settings = make_settings(database_urls.ingest, broker.add_ingest(), workers=workers)
        with running_consumer(settings) as consumer:
            pub_a.publish_all([
                (topic_a, dumps(stored)),
                (topic_a, dumps(dead_with_id)),
                (topic_a, b"\x00\xff not json"),
                (topic_a, b'{"schema": "rpmflow.reading.v1"}'),
                (f"rpm/v1/{gw_a}/status", dumps(status(gw_a, "2025-11-23T12:00:00Z"))),
            ])
            pub_b.publish_all([(topic_b, dumps(stored_b)), (topic_b, dumps(spoofed))])
            wait_for(lambda: stored["message_id"] in listen_a.ids()
                     and dead_with_id["message_id"] in listen_a.rejected(), 20, "gateway A's acks")
            wait_for(lambda: stored_b["message_id"] in listen_b.ids()
                     and spoofed["message_id"] in listen_b.rejected(), 20, "gateway B's acks")

            pub_a.publish_all([(topic_a, dumps(stored)), (topic_a, dumps(marker))])  # a re-send
            wait_for(lambda: listen_a.ids().count(stored["message_id"]) == 2 and
                     marker["message_id"] in listen_a.ids(), 20, "the re-send and the marker acked")
            wait_for(lambda: len(observer.acks) == len(listen_a.acks) + len(listen_b.acks), 10,
                     "the observer seeing every ack")
            sent = _sample(consumer, "rpmflow_ingest_acks_total", result="sent")
            acked = _sample(consumer, "rpmflow_ingest_acked_message_ids_total")
    finally:
        for c in (listen_a, listen_b, pub_a, pub_b, observer):
            c.close()

    assert count(db, "SELECT count(*) FROM readings WHERE message_id = %s", stored["message_id"]) == 1
    assert count(db, "SELECT count(*) FROM dead_letters WHERE gateway_id = %s", gw_a) == 3
    assert listen_a.uncommitted_at_ack == []  # every ack arrived after its commit
    assert sorted(set(listen_a.ids())) == sorted({stored["message_id"], marker["message_id"]})
    assert listen_a.rejected() == {dead_with_id["message_id"]: "contract_violation"}
    assert sorted(set(listen_b.ids())) == [stored_b["message_id"]]
    assert listen_b.rejected() == {spoofed["message_id"]: "contract_violation"}
    for topic, body in observer.acks:  # never an id on another gateway's topic
        gw = topic.split("/")[2]
        assert body["schema"] == "rpmflow.ack.v1" and body["gateway_id"] == gw
        assert set(body["message_ids"]) <= set(listen_a.ids() if gw == gw_a else listen_b.ids()), topic
        assert datetime.fromisoformat(body["committed_at"]).tzinfo is not None
    assert spoofed["message_id"] not in listen_a.ids() and spoofed["message_id"] not in listen_a.rejected()
    assert sent == len(observer.acks) and acked == len(observer.ids()) + len(observer.rejected())


def test_send_acks_false_sends_nothing(
    database_urls: DatabaseUrls, broker: EmbeddedMosquitto, gateway_id: str, database_url: str, db: Conn
) -> None:
    observer = AckListener(broker, OBSERVER_USER, f"rpm/v1/{gateway_id}/#")
    pub = Publisher(broker, gateway_id)
    settings = make_settings(database_urls.ingest, broker.add_ingest(), workers=0, send_acks=False)
    enrol(db, EXAMPLE["device"]["id"], gateway_id)
    try:
        with running_consumer(settings) as consumer:
            pub.publish_all([(f"rpm/v1/{gateway_id}/readings", dumps(reading(gateway_id=gateway_id)))])
            wait_for(lambda: count(db, "SELECT count(*) FROM readings") == 1, 20, "the reading stored")
            # Barrier: a later message through the broker reaches the observer after any ack would.
            barrier = dumps(status(gateway_id, "2025-11-23T12:00:00Z"))
            pub.publish_all([(f"rpm/v1/{gateway_id}/status", barrier)])
            wait_for(lambda: observer.other.count(f"rpm/v1/{gateway_id}/status") == 1, 10, "the barrier")
            sent = _sample(consumer, "rpmflow_ingest_acks_total", result="sent")
    finally:
        pub.close()
        observer.close()
    assert observer.acks == [] and sent == 0
