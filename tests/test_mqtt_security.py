"""The broker's access rules, proved against the real Mosquitto (DOMAIN.md Part F: per-gateway
credentials, own-topic ACLs, TLS in transit).

"Not delivered" is never proved by waiting: the forbidden message is published first (its PUBACK
awaited, so the single-threaded broker has routed it), then a marker on an allowed topic; once the
marker has arrived, the forbidden message would have arrived before it.
"""

from __future__ import annotations

import secrets
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from simulators.embedded_mosquitto import INGEST_USER, OBSERVER_USER, EmbeddedMosquitto
from tests.waiting import wait_for


class Probe:
    """One MQTT v5 client that records its CONNACK, SUBACKs and every message it receives."""

    def __init__(self, port: int, user: str | None, password: str | None, *,
                 ca_file: Path | None = None) -> None:
        self.connack: ReasonCode | None = None
        self.failed = threading.Event()
        self.subacks: dict[int, list[ReasonCode]] = {}
        self.messages: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"probe-{secrets.token_hex(4)}",
                                  protocol=mqtt.MQTTv5)
        if user is not None:
            self.client.username_pw_set(user, password)
        if ca_file is not None:
            self.client.tls_set_context(ssl.create_default_context(cafile=str(ca_file)))
        self.client.on_connect = self._on_connect
        self.client.on_connect_fail = lambda *a: self.failed.set()
        self.client.on_disconnect = self._on_disconnect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.client.connect_async("127.0.0.1", port, keepalive=10)
        self.client.loop_start()

    def _on_connect(self, c: mqtt.Client, u: Any, flags: Any, rc: ReasonCode, props: Any) -> None:
        self.connack = rc

    def _on_disconnect(self, c: mqtt.Client, u: Any, flags: Any, rc: ReasonCode, props: Any) -> None:
        if self.connack is None:
            self.failed.set()

    def _on_subscribe(self, c: mqtt.Client, u: Any, mid: int, rcs: list[ReasonCode], props: Any) -> None:
        self.subacks[mid] = list(rcs)

    def _on_message(self, c: mqtt.Client, u: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((msg.topic, bytes(msg.payload)))

    def connected(self) -> bool:
        return self.connack is not None and not self.connack.is_failure

    def refused(self) -> bool:
        return (self.connack is not None and self.connack.is_failure) or self.failed.is_set()

    def wait_connected(self) -> Probe:
        wait_for(lambda: self.connected() or self.refused(), 10, "the CONNACK")
        assert self.connected(), f"connection refused: {self.connack}"
        return self

    def subscribe(self, topic: str) -> list[ReasonCode]:
        rc, mid = self.client.subscribe(topic, qos=1)
        assert rc == mqtt.MQTT_ERR_SUCCESS
        assert mid is not None
        return wait_for(lambda: self.subacks.get(mid, []), 10, f"the SUBACK for {topic}")

    def publish(self, topic: str, payload: bytes) -> None:
        info = self.client.publish(topic, payload, qos=1)
        info.wait_for_publish(10)  # the broker has routed (or refused) it: ordering is now fixed

    def got(self, payload: bytes) -> bool:
        with self._lock:
            return any(p == payload for _, p in self.messages)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def probes() -> Iterator[list[Probe]]:
    made: list[Probe] = []
    yield made
    for p in made:
        p.close()


def _probe(probes: list[Probe], broker: EmbeddedMosquitto, user: str | None, password: str | None = None,
           **kw: Any) -> Probe:
    if password is None and user is not None:
        password = broker.accounts[user]
    p = Probe(broker.port, user, password, **kw)
    probes.append(p)
    return p


def _watcher(probes: list[Probe], broker: EmbeddedMosquitto) -> Probe:
    w = _probe(probes, broker, OBSERVER_USER).wait_connected()
    assert not w.subscribe("rpm/v1/#")[0].is_failure
    return w


def _marker_then_absent(watcher: Probe, sender: Probe, allowed_topic: str, forbidden: bytes) -> None:
    marker = b"marker-" + secrets.token_hex(6).encode()
    sender.publish(allowed_topic, marker)
    wait_for(lambda: watcher.got(marker), 10, "the marker on an allowed topic")
    assert not watcher.got(forbidden), "a forbidden publish reached a subscriber"


def test_anonymous_client_is_refused(broker: EmbeddedMosquitto, probes: list[Probe]) -> None:
    p = _probe(probes, broker, None)
    wait_for(lambda: p.refused() or p.connected(), 10, "the broker's answer to an anonymous client")
    assert p.refused() and not p.connected()


@pytest.mark.parametrize("user", ["gateway", INGEST_USER, OBSERVER_USER, "nobody-we-know"])
def test_wrong_password_is_refused(broker: EmbeddedMosquitto, gateway_id: str, probes: list[Probe],
                                   user: str) -> None:
    name = gateway_id if user == "gateway" else user
    p = _probe(probes, broker, name, "not-the-password")
    wait_for(lambda: p.refused() or p.connected(), 10, f"the broker's answer to {name}")
    assert p.refused() and not p.connected()


def test_a_gateway_cannot_spoof_another_gateways_topics(broker: EmbeddedMosquitto, gateway_id: str,
                                                        probes: list[Probe]) -> None:
    other = f"gw-{secrets.token_hex(4)}"
    broker.add_gateways([other])
    watcher = _watcher(probes, broker)
    me = _probe(probes, broker, gateway_id).wait_connected()
    forbidden = b"spoof-" + secrets.token_hex(6).encode()
    for topic in (f"rpm/v1/{other}/readings", f"rpm/v1/{other}/status", "rpm/v1/x/readings",
                  f"rpm/v2/{gateway_id}/readings", f"rpm/v1/{gateway_id}/other"):
        me.publish(topic, forbidden)
    _marker_then_absent(watcher, me, f"rpm/v1/{gateway_id}/readings", forbidden)


@pytest.mark.parametrize("topic", [
    "rpm/v1/+/readings", "rpm/v1/#", "#", "rpm/v1/{other}/readings", "rpm/v1/{other}/status",
    "$share/g/rpm/v1/+/readings", "$SYS/#",
])
def test_a_gateway_cannot_subscribe_beyond_its_own_status(broker: EmbeddedMosquitto, gateway_id: str,
                                                          probes: list[Probe], topic: str) -> None:
    other = f"gw-{secrets.token_hex(4)}"
    broker.add_gateways([other])
    me = _probe(probes, broker, gateway_id).wait_connected()
    codes = me.subscribe(topic.format(other=other))
    # Prove nothing arrives, with the other gateway publishing a reading and a status.
    them = _probe(probes, broker, other).wait_connected()
    secret = b"theirs-" + secrets.token_hex(6).encode()
    them.publish(f"rpm/v1/{other}/readings", secret)
    them.publish(f"rpm/v1/{other}/status", secret)
    assert me.subscribe(f"rpm/v1/{gateway_id}/status")[0].value < 0x80
    marker = b"mine-" + secrets.token_hex(6).encode()
    me.publish(f"rpm/v1/{gateway_id}/status", marker)
    wait_for(lambda: me.got(marker), 10, "the gateway's own status echo")
    assert not me.got(secret), f"{gateway_id} read another gateway's message via {topic}"
    # Mosquitto 2.0 grants such a SUBACK and enforces the ACL per message (measured): the proof
    # that counts is that nothing arrives, checked above; a refusal would be fine too.
    assert len(codes) == 1


def test_the_ingest_account_cannot_publish_readings(broker: EmbeddedMosquitto, gateway_id: str,
                                                    probes: list[Probe]) -> None:
    watcher = _watcher(probes, broker)
    ingest = _probe(probes, broker, INGEST_USER).wait_connected()
    forbidden = b"ingest-writes-" + secrets.token_hex(6).encode()
    ingest.publish(f"rpm/v1/{gateway_id}/readings", forbidden)
    ingest.publish(f"rpm/v1/{gateway_id}/status", forbidden)
    gateway = _probe(probes, broker, gateway_id).wait_connected()
    _marker_then_absent(watcher, gateway, f"rpm/v1/{gateway_id}/readings", forbidden)
    # ... while it may read every gateway's readings through the shared subscription.
    assert not ingest.subscribe("$share/sec/rpm/v1/+/readings")[0].is_failure


def test_the_observer_account_cannot_publish(broker: EmbeddedMosquitto, gateway_id: str,
                                             probes: list[Probe]) -> None:
    watcher = _watcher(probes, broker)
    forbidden = b"observer-writes-" + secrets.token_hex(6).encode()
    watcher.publish(f"rpm/v1/{gateway_id}/readings", forbidden)
    gateway = _probe(probes, broker, gateway_id).wait_connected()
    _marker_then_absent(watcher, gateway, f"rpm/v1/{gateway_id}/readings", forbidden)


# -- TLS ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tls_broker() -> Iterator[EmbeddedMosquitto]:
    b = EmbeddedMosquitto.create(tls=True)
    b.start()
    try:
        yield b
    finally:
        b.destroy()


def test_a_gateway_publishes_over_tls_with_the_ca_file(tls_broker: EmbeddedMosquitto, tmp_path: Path,
                                                       probes: list[Probe]) -> None:
    gw = f"gw-tls-{secrets.token_hex(3)}"
    tls_broker.add_gateways([gw])
    watcher = _watcher(probes, tls_broker)  # the plain loopback listener, observer account
    env = {
        "PATH": "/usr/bin:/bin",
        "RPMFLOW_GATEWAY_ID": gw,
        "RPMFLOW_MQTT_URL": tls_broker.tls_url_for(gw),
        "RPMFLOW_GATEWAY_MQTT_CA_FILE": str(tls_broker.ca_file),
        "RPMFLOW_GATEWAY_OUTBOX": str(tmp_path / "outbox.sqlite3"),
        "RPMFLOW_GATEWAY_BACKEND": "sim",
        "RPMFLOW_GATEWAY_SIM_SCENARIO": "normal",
        "RPMFLOW_GATEWAY_SIM_INTERVAL_S": "0",
        "RPMFLOW_GATEWAY_SIM_EPOCH": "2026-03-15T12:00:00",
        "RPMFLOW_GATEWAY_SIM_DEVICES": "bp:TLS-BP-1,glucose:TLS-GL-1",
        "RPMFLOW_GATEWAY_SCAN_INTERVAL_S": "0.5",
        "RPMFLOW_GATEWAY_SESSION_IDLE_S": "0.5",
    }
    exe = str(Path(sys.executable).parent / "rpmflow-gateway")
    log = (tmp_path / "gateway.log").open("wb")
    proc = subprocess.Popen([exe, "run"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        # normal scenario: 4 stored cuff readings + 6 meter records, all over the TLS listener
        wait_for(lambda: sum(t.endswith("/readings") for t, _ in watcher.messages) >= 10, 30,
                 "10 readings published over mqtts://")
        assert all(t == f"rpm/v1/{gw}/readings" for t, _ in watcher.messages if t.endswith("/readings"))
    finally:
        proc.terminate()
        proc.wait(20)
        log.close()
    assert f"connected to 127.0.0.1:{tls_broker.tls_port}" in (tmp_path / "gateway.log").read_text()


def test_plaintext_to_the_tls_port_fails(tls_broker: EmbeddedMosquitto, probes: list[Probe]) -> None:
    assert tls_broker.tls_port is not None
    p = Probe(tls_broker.tls_port, OBSERVER_USER, tls_broker.accounts[OBSERVER_USER])
    probes.append(p)
    wait_for(p.refused, 15, "the TLS listener to drop a plaintext client")
    assert not p.connected()


def test_tls_without_the_private_ca_fails(tls_broker: EmbeddedMosquitto) -> None:
    """The system CAs do not vouch for the broker's certificate: the handshake must fail (a bare
    TLS handshake, so no client library's retry loop hides the outcome)."""
    assert tls_broker.tls_port is not None
    with socket.create_connection(("127.0.0.1", tls_broker.tls_port), timeout=10) as raw, \
            pytest.raises(ssl.SSLCertVerificationError):
        ssl.create_default_context().wrap_socket(raw, server_hostname="127.0.0.1")
    trusted = ssl.create_default_context(cafile=str(tls_broker.ca_file))
    with socket.create_connection(("127.0.0.1", tls_broker.tls_port), timeout=10) as raw, \
            trusted.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        assert tls.version() in ("TLSv1.2", "TLSv1.3")


def test_tls_with_the_ca_and_good_credentials_connects(tls_broker: EmbeddedMosquitto,
                                                       probes: list[Probe]) -> None:
    assert tls_broker.tls_port is not None
    p = Probe(tls_broker.tls_port, OBSERVER_USER, tls_broker.accounts[OBSERVER_USER],
              ca_file=tls_broker.ca_file)
    probes.append(p)
    p.wait_connected()
    bad = Probe(tls_broker.tls_port, OBSERVER_USER, "wrong", ca_file=tls_broker.ca_file)
    probes.append(bad)
    wait_for(bad.refused, 15, "a wrong password over TLS to be refused")
