"""Issue 14 item 2: no MQTT client can take over another's client id or session.

Over the real Mosquitto of the embedded stack (the shipped configuration: every listener binds a
client's id to its username, ``use_username_as_clientid``) and the real ingest. A hostile gateway
uses its own valid credentials and asks for ingest's client id, or another gateway's, with a clean
start and a zero session expiry (the request that used to wipe ingest's queued readings). The
broker replaces the requested id by the account's name, so the hostile client only ever reaches
its own session: the victims stay connected, ingest's session keeps what it queued, nothing is
lost. Ingest itself refuses to run twice on one identity (ingest/identity.py) and says so when the
broker no longer has the session it had (ingest/session.py).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from ingest.settings import Settings
from simulators.embedded_mosquitto import EmbeddedMosquitto
from tests.ingest.helpers import (
    EXAMPLE,
    Publisher,
    count,
    dumps,
    enrol,
    make_settings,
    running_consumer,
    unique_reading,
)
from tests.waiting import wait_for

REPO = Path(__file__).resolve().parent.parent


class Client:
    """An MQTT v5 client that asks for a given client id and records every CONNACK and cut-off."""

    def __init__(self, broker: EmbeddedMosquitto, user: str, client_id: str, *, clean_start: bool = True,
                 expiry: int = 0) -> None:
        self.connacks: list[ReasonCode] = []
        self.disconnects: list[ReasonCode] = []
        self.messages: list[bytes] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        self.client.username_pw_set(user, broker.accounts[user])
        self.client.on_connect = lambda c, u, f, rc, p: self.connacks.append(rc)
        self.client.on_disconnect = lambda c, u, f, rc, p: self.disconnects.append(rc)
        self.client.on_message = self._on_message
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = expiry
        self.client.connect("127.0.0.1", broker.port, clean_start=clean_start, properties=props)
        self.client.loop_start()
        wait_for(lambda: self.connacks, 10, f"the CONNACK of {user} asking for {client_id!r}")

    def _on_message(self, c: Any, u: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append(bytes(msg.payload))

    @property
    def accepted(self) -> bool:
        return bool(self.connacks) and not self.connacks[-1].is_failure

    def round_trip(self, topic: str) -> bytes:
        """Subscribe to ``topic``, publish a marker on it, wait for it: this connection still works."""
        done = threading.Event()
        self.client.on_subscribe = lambda *a: done.set()
        self.client.subscribe(topic, qos=1)
        wait_for(done.is_set, 10, f"the SUBACK for {topic}")
        marker = b"still-here-" + secrets.token_hex(4).encode()
        self.client.publish(topic, marker, qos=1).wait_for_publish(10)
        wait_for(lambda: marker in self.messages, 10, f"the marker back on {topic}")
        return marker

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _hostile_connects(broker: EmbeddedMosquitto, hostile: str, victim_ids: list[str]) -> None:
    """The attack: the hostile gateway's valid account asking for each victim's id with a clean
    start and no session expiry. Each is let in, as itself (the broker rewrites the id)."""
    for victim in victim_ids:
        c = Client(broker, hostile, victim, clean_start=True, expiry=0)
        try:
            assert c.accepted, f"{hostile} was refused: {c.connacks}"
            # Its own status topic works (it is itself), ingest's subscription is not its to read.
            c.round_trip(f"rpm/v1/{hostile}/status")
        finally:
            c.close()


def test_a_gateway_cannot_take_over_another_gateways_connection(broker: EmbeddedMosquitto) -> None:
    victim, hostile = f"gw-{secrets.token_hex(4)}", f"gw-{secrets.token_hex(4)}"
    broker.add_gateways([victim, hostile])
    v = Client(broker, victim, f"rpmflow-gateway-{victim}", clean_start=False, expiry=300)
    try:
        _hostile_connects(broker, hostile, [f"rpmflow-gateway-{victim}", victim])
        v.round_trip(f"rpm/v1/{victim}/status")
        assert v.disconnects == [] and len(v.connacks) == 1, (v.disconnects, v.connacks)
    finally:
        v.close()


def _ingest(database_url: str, broker: EmbeddedMosquitto, **changes: Any) -> Settings:
    return make_settings(database_url, broker.add_ingest(), workers=0, **changes)


def test_ingest_stays_connected_and_stores_everything_through_a_hostile_connect(
        broker: EmbeddedMosquitto, gateway_id: str, database_urls: Any, db: psycopg.Connection[Any]) -> None:
    hostile = f"gw-{secrets.token_hex(4)}"
    broker.add_gateways([hostile])
    settings = _ingest(database_urls.ingest, broker)
    enrol(db, EXAMPLE["device"]["id"], gateway_id)  # ingest takes readings of enrolled devices only
    pub = Publisher(broker, gateway_id)
    topic = f"rpm/v1/{gateway_id}/readings"
    try:
        with running_consumer(settings) as consumer:
            pub.publish_all([(topic, dumps(unique_reading(gateway_id, n))) for n in range(8)])
            _hostile_connects(broker, hostile, [settings.session_id, gateway_id])
            pub.publish_all([(topic, dumps(unique_reading(gateway_id, n))) for n in range(8, 16)])
            wait_for(lambda: count(db, "SELECT count(*) FROM readings") == 16, 30, "all 16 readings stored")
            assert consumer.connected.is_set() and consumer.mqtt.connections == 1  # never cut off
    finally:
        pub.close()


def test_ingests_persistent_session_survives_a_hostile_clean_start(
        broker: EmbeddedMosquitto, gateway_id: str, database_urls: Any, db: psycopg.Connection[Any],
        caplog: pytest.LogCaptureFixture) -> None:
    """The case of the issue: ingest away, readings queued in its session, a gateway asks for
    ingest's id with clean start. Before the binding, 10 of 16 were lost with server acks off."""
    hostile = f"gw-{secrets.token_hex(4)}"
    broker.add_gateways([hostile])
    settings = _ingest(database_urls.ingest, broker)
    enrol(db, EXAMPLE["device"]["id"], gateway_id)
    with running_consumer(settings, forget=False):
        pass  # the session exists and is subscribed; now ingest is away
    pub = Publisher(broker, gateway_id)
    topic = f"rpm/v1/{gateway_id}/readings"
    try:
        pub.publish_all([(topic, dumps(unique_reading(gateway_id, n))) for n in range(8)])
        _hostile_connects(broker, hostile, [settings.session_id])
        pub.publish_all([(topic, dumps(unique_reading(gateway_id, n))) for n in range(8, 16)])
    finally:
        pub.close()
    caplog.set_level("INFO", logger="ingest.consumer")
    with running_consumer(settings) as consumer:
        wait_for(lambda: count(db, "SELECT count(*) FROM readings") == 16, 30, "the 16 queued readings")
        assert consumer.metrics.registry.get_sample_value("rpmflow_ingest_mqtt_sessions_lost_total") == 0
    said = [r.getMessage() for r in caplog.records]
    assert f"connected as {settings.session_id} (session present: True)" in said, said


def test_each_ingest_process_is_its_own_identity_and_a_second_one_on_it_refuses_to_start(
        broker: EmbeddedMosquitto, gateway_id: str, database_urls: Any, db: psycopg.Connection[Any],
        tmp_path: Path) -> None:
    group = f"g{secrets.token_hex(3)}"
    one = _ingest(database_urls.ingest, broker, shared=True, group=group)
    two = _ingest(database_urls.ingest, broker, shared=True, group=group)
    assert one.session_id != two.session_id  # two accounts, two client ids, two sessions
    enrol(db, EXAMPLE["device"]["id"], gateway_id)
    pub = Publisher(broker, gateway_id)
    try:
        with running_consumer(one) as a, running_consumer(two) as b:
            pub.publish_all([(f"rpm/v1/{gateway_id}/readings", dumps(unique_reading(gateway_id, n)))
                             for n in range(40)])
            wait_for(lambda: count(db, "SELECT count(*) FROM readings") == 40, 30, "40 readings stored")
            # A third process configured with the first one's account: it would take that session
            # over and the two would cut each other off for ever. It refuses before connecting.
            env = {k: v for k, v in os.environ.items() if not k.startswith("RPMFLOW_")}
            env.update(RPMFLOW_DATABASE_URL=database_urls.ingest, RPMFLOW_MQTT_URL=one.mqtt_url,
                       RPMFLOW_INGEST_SHARED="true", RPMFLOW_INGEST_GROUP=group)
            out = subprocess.run([sys.executable, "-m", "ingest.cli", "run", "--no-migrate"], cwd=REPO,
                                 env=env, capture_output=True, text=True, timeout=60, check=False)
            assert a.mqtt.connections == 1 and b.mqtt.connections == 1, "an ingest process was cut off"
            assert a.connected.is_set() and b.connected.is_set()
    finally:
        pub.close()
    assert out.returncode == 2, out.stderr
    fatal = [line for line in out.stderr.splitlines() if line.startswith("rpmflow-ingest: ")]
    assert len(fatal) == 1, out.stderr
    assert f"MQTT identity {one.session_id!r} is in use by another ingest process" in fatal[0]
    assert f"rpmflow-ingest:{one.session_id}:identity" in fatal[0]  # names the holder
    assert one.mqtt.password and one.mqtt.password not in out.stderr


def test_a_lost_session_is_said_once_and_counted(
        private_broker: EmbeddedMosquitto, database_urls: Any, caplog: pytest.LogCaptureFixture) -> None:
    """The broker comes back without its persistence file: ingest's session is gone. Ingest cannot
    bring back what was queued in it, but it must not carry on as if nothing happened."""
    settings = _ingest(database_urls.ingest, private_broker)
    caplog.set_level("INFO", logger="ingest.consumer")
    with running_consumer(settings) as consumer:
        private_broker.stop()
        for saved in (private_broker.state_dir / "data").glob("*.db"):
            saved.unlink()
        private_broker.start()
        wait_for(lambda: consumer.mqtt.connections == 2 and consumer.subscribed.is_set(), 30,
                 "ingest back on the restarted broker")
        lost = consumer.metrics.registry.get_sample_value("rpmflow_ingest_mqtt_sessions_lost_total")
    assert lost == 1
    loud = [r for r in caplog.records if "SESSION LOST" in r.getMessage()]
    assert len(loud) == 1 and loud[0].levelname == "ERROR", [r.getMessage() for r in caplog.records]
    assert settings.session_id in loud[0].getMessage()
