"""Ingest's receive path (ingest/paho_receive.py): the same bytes and callbacks as paho's, checked
against paho's own classes and against a real Mosquitto."""

# mypy: disable-error-code=no-untyped-call
# (paho's Properties methods are untyped)
from __future__ import annotations

import secrets
import select
import socket
import threading
from collections.abc import Iterator
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.exception import MQTTException
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ingest import paho_receive
from ingest.paho_receive import IngestClient, ReadBuffer, SharedTableProperties
from simulators.embedded_mosquitto import EmbeddedMosquitto
from tests.ingest.helpers import Publisher
from tests.waiting import wait_for

# A value for each property, by paho's compressed name (types as paho's pack/unpack expect).
VALUES: dict[str, Any] = {
    "PayloadFormatIndicator": 1, "MessageExpiryInterval": 3600, "ContentType": "application/json",
    "ResponseTopic": "rpm/v1/gw/acks", "CorrelationData": b"\x01\x02", "SubscriptionIdentifier": [7],
    "SessionExpiryInterval": 600, "AssignedClientIdentifier": "x", "ServerKeepAlive": 30,
    "AuthenticationMethod": "m", "AuthenticationData": b"d", "RequestProblemInformation": 1,
    "WillDelayInterval": 5, "RequestResponseInformation": 1, "ResponseInformation": "r",
    "ServerReference": "s", "ReasonString": "why", "ReceiveMaximum": 2000, "TopicAliasMaximum": 10,
    "TopicAlias": 3, "MaximumQoS": 1, "RetainAvailable": 1, "UserProperty": [("k", "v"), ("k2", "v2")],
    "MaximumPacketSize": 65536, "WildcardSubscriptionAvailable": 1, "SubscriptionIdentifierAvailable": 1,
    "SharedSubscriptionAvailable": 1,
}


def _applicable(packet_type: int) -> list[str]:
    stock = Properties(packet_type)
    return [name.replace(" ", "") for name, ident in stock.names.items()
            if packet_type in stock.properties[ident][1]]


@pytest.mark.parametrize("packet_type", [PacketTypes.PUBLISH, PacketTypes.CONNECT, PacketTypes.CONNACK,
                                         PacketTypes.SUBSCRIBE, PacketTypes.DISCONNECT, PacketTypes.PUBACK])
def test_shared_table_properties_pack_and_unpack_exactly_as_paho_does(packet_type: int) -> None:
    names = _applicable(packet_type)
    assert names, "every packet type here has properties"
    ours, theirs = SharedTableProperties(packet_type), Properties(packet_type)
    for name in names:
        setattr(ours, name, VALUES[name])
        setattr(theirs, name, VALUES[name])
    packed = theirs.pack()
    assert ours.pack() == packed
    again, back = SharedTableProperties(packet_type), Properties(packet_type)
    again.unpack(packed)
    back.unpack(packed)
    assert again.json() == back.json() == theirs.json()
    assert str(again) == str(back)
    again.unpack(b"\x00")  # a second unpack clears what the first set, as paho's does
    assert again.isEmpty() and again.json() == {}


def test_shared_table_properties_refuse_what_paho_refuses() -> None:
    ours = SharedTableProperties(PacketTypes.PUBLISH)
    with pytest.raises(MQTTException):
        ours.SessionExpiryInterval = 5  # a CONNECT property
    with pytest.raises(MQTTException):
        ours.TopicAlias = 0  # out of range


def test_the_tables_are_shared_not_rebuilt() -> None:
    a, b = SharedTableProperties(PacketTypes.PUBLISH), SharedTableProperties(PacketTypes.CONNACK)
    assert a.names is b.names and a.properties is b.properties
    a.ContentType = "x"
    assert not hasattr(b, "ContentType")


def test_install_makes_paho_decode_publish_properties_with_the_shared_tables() -> None:
    paho_receive.install_properties()
    paho_receive.install_properties()  # idempotent
    for module in paho_receive.decoders():
        assert module.Properties is SharedTableProperties


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, ReadBuffer]]:
    a, b = socket.socketpair()
    b.setblocking(False)
    buffered = ReadBuffer(b)
    try:
        yield a, buffered
    finally:
        a.close()
        buffered.close()


def test_read_buffer_serves_small_reads_from_one_recv_and_reports_what_it_holds(
        pair: tuple[socket.socket, ReadBuffer]) -> None:
    writer, buf = pair
    with pytest.raises(BlockingIOError):
        buf.recv(1)  # nothing yet: non-blocking, as paho expects
    writer.sendall(b"\x30\x05hello" + b"\x30\x03abc")
    wait_for(lambda: _readable(buf), 5, "bytes on the socket")
    assert buf.recv(1) == b"\x30"
    assert buf.pending() == buf.buffered() == 11
    assert buf.recv(1) == b"\x05"
    assert buf.recv(5) == b"hello"
    assert buf.recv(100) == b"\x30\x03abc"  # never more than was asked, never past the buffer
    assert buf.pending() == 0
    with pytest.raises(BlockingIOError):
        buf.recv(1)
    writer.close()
    wait_for(lambda: _readable(buf), 5, "end of stream")
    assert buf.recv(1) == b""  # EOF reaches paho as before


def _readable(buf: ReadBuffer) -> bool:
    return bool(select.select([buf], [], [], 0)[0])


def test_read_buffer_passes_the_rest_of_the_socket_through(pair: tuple[socket.socket, ReadBuffer]) -> None:
    writer, buf = pair
    assert buf.fileno() == buf._sock.fileno()
    assert buf.getsockname() == buf._sock.getsockname()  # anything else: the socket's own
    assert buf.send(b"x") == 1
    assert writer.recv(1) == b"x"


# -- against the real broker ----------------------------------------------------------------------


class _Subscriber:
    """An ingest account's persistent session read through :func:`paho_receive.make`."""

    def __init__(self, broker: EmbeddedMosquitto, name: str) -> None:
        self.messages: list[mqtt.MQTTMessage] = []
        self.subscribed = threading.Event()
        self.client = paho_receive.make(CallbackAPIVersion.VERSION2, client_id=name, protocol=mqtt.MQTTv5,
                                        manual_ack=True)
        self.client.username_pw_set(name, broker.accounts[name])
        self.client.on_message = lambda c, u, m: self.messages.append(m)
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 300
        props.ReceiveMaximum = 2000  # ingest's window: the whole burst un-acked at once
        self.client.on_connect = lambda c, *a: c.subscribe("rpm/v1/+/readings", 1)
        self.client.connect("127.0.0.1", broker.port, clean_start=False, properties=props)
        self.client.loop_start()
        assert self.subscribed.wait(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _messages(gw: str, n: int) -> list[tuple[str, bytes]]:
    return [(f"rpm/v1/{gw}/readings", f'{{"n": {i}, "pad": "{"x" * (i % 700)}"}}'.encode()) for i in range(n)]


@pytest.mark.parametrize("ack", [True, False])
def test_a_burst_arrives_whole_and_ack_many_settles_it_with_the_broker(
        broker: EmbeddedMosquitto, gateway_id: str, ack: bool) -> None:
    """1,500 messages of 10 to 800 bytes (many per 64 KiB read, some split across reads): every
    payload arrives once and in order; after ``ack_many`` the broker resends none of them to the
    resumed session, and without it (the control) it resends them all."""
    name = f"ingest-recv-{secrets.token_hex(3)}"
    broker.add_ingest(name)
    sent = _messages(gateway_id, 1500)
    sub = _Subscriber(broker, name)
    assert isinstance(sub.client, IngestClient)
    pub = Publisher(broker, gateway_id)
    try:
        pub.publish_all(sent)
        wait_for(lambda: len(sub.messages) >= len(sent), 30, "the burst")
        assert [bytes(m.payload) for m in sub.messages] == [p for _, p in sent]
        assert {m.qos for m in sub.messages} == {1}
        if ack:
            sub.client.ack_many([m.mid for m in sub.messages])
            _read_by_broker(sub.client, gateway_id)
    finally:
        pub.close()
        sub.close()
    again = _Subscriber(broker, name)
    try:
        if ack:
            marker = [(f"rpm/v1/{gateway_id}/readings", b"marker")]
            pub = Publisher(broker, gateway_id)
            pub.publish_all(marker)
            pub.close()
            wait_for(lambda: len(again.messages) >= 1, 10, "the marker")
            assert [bytes(m.payload) for m in again.messages] == [b"marker"]
            again.client.ack_many([again.messages[0].mid])  # type: ignore[attr-defined]
            _read_by_broker(again.client, gateway_id)
        else:
            wait_for(lambda: len(again.messages) >= len(sent), 30, "the resent burst")
            assert sorted(bytes(m.payload) for m in again.messages) == sorted(p for _, p in sent)
            again.client.ack_many([m.mid for m in again.messages])  # type: ignore[attr-defined]
            _read_by_broker(again.client, gateway_id)
    finally:
        again.close()
        _forget(broker, name)


def _read_by_broker(client: mqtt.Client, gateway_id: str) -> None:
    """Returns once the broker has read everything this connection sent so far: it answers a QoS 1
    PUBLISH (an end-to-end ack, which the ingest account may send) only after the packets before it."""
    info = client.publish(f"rpm/v1/{gateway_id}/acks", b"{}", qos=1)
    info.wait_for_publish(10)
    assert info.is_published()


def _forget(broker: EmbeddedMosquitto, name: str) -> None:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=name, protocol=mqtt.MQTTv5)
    c.username_pw_set(name, broker.accounts[name])
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 0
    done = threading.Event()
    c.on_connect = lambda *a: done.set()
    c.connect("127.0.0.1", broker.port, clean_start=True, properties=props)
    c.loop_start()
    done.wait(10)
    c.disconnect()
    c.loop_stop()
