"""The embedded stack: real servers on free ports, credentials and ACLs enforced, restartable."""

from __future__ import annotations

import socket
import threading

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from simulators.embedded_mosquitto import EmbeddedMosquitto, mosquitto_password_hash
from simulators.embedded_postgres import EmbeddedPostgres
from tests.waiting import wait_for


def _client(broker: EmbeddedMosquitto, user: str | None, password: str | None) -> mqtt.Client:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"t-{user}-{id(object())}", protocol=mqtt.MQTTv5)
    if user is not None:
        c.username_pw_set(user, password)
    return c


def _connect_result(broker: EmbeddedMosquitto, user: str | None, password: str | None) -> ReasonCode:
    done = threading.Event()
    result: list[ReasonCode] = []

    def on_connect(_c: mqtt.Client, _u: object, _f: object, rc: ReasonCode, _p: object) -> None:
        result.append(rc)
        done.set()

    c = _client(broker, user, password)
    c.on_connect = on_connect
    c.connect("127.0.0.1", broker.port)
    c.loop_start()
    try:
        assert done.wait(10), "no CONNACK within 10 s"
    finally:
        c.disconnect()
        c.loop_stop()
    return result[0]


def test_password_hash_has_mosquitto_format() -> None:
    entry = mosquitto_password_hash("secret", salt=b"0123456789ab")
    parts = entry.split("$")
    assert parts[1:3] == ["7", "101"]
    assert len(parts[4]) == 88  # base64 of a 64-byte PBKDF2-SHA512 digest


@pytest.mark.parametrize(
    ("user", "password"),
    [(None, None), ("rpmflow-ingest", "wrong"), ("nobody-here", "x")],
)
def test_broker_refuses_anonymous_and_bad_credentials(
    broker: EmbeddedMosquitto, user: str | None, password: str | None
) -> None:
    rc = _connect_result(broker, user, password)
    assert rc.is_failure, f"connection should be refused, got {rc}"


def test_gateway_cannot_publish_under_another_gateways_topic(broker: EmbeddedMosquitto) -> None:
    broker.add_gateways(["acl-a", "acl-b"])
    got: list[str] = []
    sub = _client(broker, "rpmflow-observer", broker.accounts["rpmflow-observer"])
    sub.on_message = lambda _c, _u, m: got.append(m.topic)
    sub.on_connect = lambda c, _u, _f, _rc, _p: c.subscribe("rpm/v1/#", qos=1)
    sub.connect("127.0.0.1", broker.port)
    sub.loop_start()
    pub = _client(broker, "acl-a", broker.accounts["acl-a"])
    pub.connect("127.0.0.1", broker.port)
    pub.loop_start()
    try:
        wait_for(lambda: sub.is_connected() and pub.is_connected(), 10, "both clients connected")
        # The observer's subscription must be in place before we publish.
        probe = pub.publish("rpm/v1/acl-a/status", b"probe", qos=1)
        wait_for(lambda: "rpm/v1/acl-a/status" in got, 10, "probe on own status topic")
        pub.publish("rpm/v1/acl-b/readings", b"spoofed", qos=1).wait_for_publish(10)
        pub.publish("rpm/v1/acl-a/readings", b"own", qos=1).wait_for_publish(10)
        wait_for(lambda: "rpm/v1/acl-a/readings" in got, 10, "own reading delivered")
        assert probe.is_published()
        assert "rpm/v1/acl-b/readings" not in got
    finally:
        for c in (pub, sub):
            c.disconnect()
            c.loop_stop()


def test_postgres_keeps_data_across_stop_and_crash(private_postgres: EmbeddedPostgres) -> None:
    pg = private_postgres
    with psycopg.connect(pg.url, autocommit=True) as conn:
        conn.execute("CREATE TABLE survive (x int)")
        conn.execute("INSERT INTO survive VALUES (1)")
    pg.stop()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(pg.url, connect_timeout=2)
    pg.start()
    pg.kill()
    pg.start()
    with psycopg.connect(pg.url) as conn:
        row = conn.execute("SELECT count(*) FROM survive").fetchone()
    assert row == (1,)


def test_tls_listener_accepts_verified_clients_only() -> None:
    import ssl

    b = EmbeddedMosquitto.create(tls=True)
    b.start()
    try:
        assert b.tls_port is not None
        done = threading.Event()
        codes: list[ReasonCode] = []
        c = _client(b, "rpmflow-observer", b.accounts["rpmflow-observer"])
        c.tls_set(ca_certs=str(b.ca_file), cert_reqs=ssl.CERT_REQUIRED)

        def on_connect(_c: mqtt.Client, _u: object, _f: object, rc: ReasonCode, _p: object) -> None:
            codes.append(rc)
            done.set()

        c.on_connect = on_connect
        c.connect("127.0.0.1", b.tls_port)
        c.loop_start()
        try:
            assert done.wait(10), "no CONNACK over TLS"
            assert not codes[0].is_failure
        finally:
            c.disconnect()
            c.loop_stop()
        # A client that does not trust the local CA refuses the broker's certificate.
        ctx = ssl.create_default_context()
        with (
            socket.create_connection(("127.0.0.1", b.tls_port), timeout=5) as raw,
            pytest.raises(ssl.SSLCertVerificationError),
        ):
            ctx.wrap_socket(raw, server_hostname="127.0.0.1")
    finally:
        b.destroy()
