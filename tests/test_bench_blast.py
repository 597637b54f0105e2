"""The benchmarks' lean publisher (bench/mqtt_blast.py): its packets as plain values, and a real run
against Mosquitto whose messages a paho subscriber receives exactly as ``run_fleet``'s builders
make them (same schedule, same devices), all acked; a refused CONNECT fails loudly."""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections import defaultdict
from datetime import datetime
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from bench.mqtt_blast import (
    DEFAULT_RECEIVE_MAXIMUM,
    Connack,
    ConnectRefused,
    blast,
    connect_packet,
    decode_varint,
    parse_connack,
    publish_packet,
    varint,
)
from gateway import contract
from simulators.embedded_mosquitto import EmbeddedMosquitto
from simulators.fleet import FleetConfig, make_devices
from simulators.fleet_messages import build_reading


@pytest.mark.parametrize(("n", "encoded"), [
    (0, b"\x00"), (127, b"\x7f"), (128, b"\x80\x01"), (16_383, b"\xff\x7f"), (16_384, b"\x80\x80\x01"),
    (2_097_151, b"\xff\xff\x7f"), (268_435_455, b"\xff\xff\xff\x7f"),
])
def test_varint_lengths(n: int, encoded: bytes) -> None:
    assert varint(n) == encoded
    assert decode_varint(b"\x30" + encoded + b"rest", 1) == (n, 1 + len(encoded))


def test_varint_out_of_range_and_cut_short() -> None:
    with pytest.raises(ValueError, match="out of range"):
        varint(268_435_456)
    assert decode_varint(b"\x80\x80", 0) is None  # more bytes to come


def test_connect_packet() -> None:
    body = (b"\x00\x04MQTT\x05\xc2\x00\x3c\x00"  # protocol, v5, clean start + user + password, 60 s, no props
            b"\x00\x04gw-1\x00\x02gw\x00\x03pwd")
    assert connect_packet("gw-1", "gw", "pwd", keepalive=60) == b"\x10" + bytes([len(body)]) + body


def test_publish_packet_qos1() -> None:
    assert publish_packet("a/b", 513, b"{}") == b"\x32\x0a\x00\x03a/b\x02\x01\x00{}"
    big = publish_packet("t", 1, b"x" * 200)  # remaining length 3 + 2 + 1 + 200 = 206: two bytes
    assert big[:3] == b"\x32\xce\x01" and len(big) == 3 + 206


def test_connack_receive_maximum() -> None:
    assert parse_connack(b"\x00\x00") == Connack(0, DEFAULT_RECEIVE_MAXIMUM)
    props = b"\x21\x03\xe8" + b"\x22\x00\x0a" + b"\x12\x00\x02id" + b"\x26\x00\x01k\x00\x01v"
    assert parse_connack(b"\x00\x00" + varint(len(props)) + props) == Connack(0, 1000)
    assert parse_connack(b"\x00\x86\x00").reason == 0x86


def _subscribe(broker: EmbeddedMosquitto, got: dict[str, list[bytes]], total: int,
               done: threading.Event) -> mqtt.Client:
    name = f"blast-sub-{secrets.token_hex(3)}"
    broker.add_ingest(name)
    ready = threading.Event()
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=name, protocol=mqtt.MQTTv5)
    c.username_pw_set(name, broker.accounts[name])
    c.on_subscribe = lambda *a: ready.set()

    def on_message(client: Any, userdata: Any, msg: Any) -> None:
        got[msg.topic].append(bytes(msg.payload))
        if sum(len(v) for v in got.values()) >= total:
            done.set()

    c.on_message = on_message
    c.on_connect = lambda client, *a: client.subscribe(contract.READINGS_FILTER, qos=1)
    c.connect("127.0.0.1", broker.port)
    c.loop_start()
    assert ready.wait(10), "subscriber did not subscribe"
    return c


@pytest.mark.parametrize("rate", [4000.0, 0.0])
def test_a_real_run_delivers_run_fleets_messages(broker: EmbeddedMosquitto, rate: float) -> None:
    config = FleetConfig(gateways=2, devices_per_gateway=5, rate=rate, count=2_000, window=100,
                         prefix=f"blast{secrets.token_hex(2)}", seed=7, vitals_share=0.3)
    creds = broker.add_gateways(config.gateway_ids())
    got: dict[str, list[bytes]] = defaultdict(list)
    done = threading.Event()
    sub = _subscribe(broker, got, config.count or 0, done)
    try:
        report = blast(f"mqtt://127.0.0.1:{broker.port}", creds, config)
        assert done.wait(30), sum(len(v) for v in got.values())
    finally:
        sub.disconnect()
        sub.loop_stop()
    assert (report.published, report.acked, report.refused) == (2_000, 2_000, 0)
    # The same devices in the same order, rebuilt from each payload's own stamps: byte for byte.
    devices = make_devices(config, config.gateway_ids())
    seen: dict[str, int] = defaultdict(int)
    for n in range(2_000):
        gw, dev = devices[n % len(devices)]
        topic = contract.readings_topic(gw)
        payload = got[topic][seen[topic]]
        seen[topic] += 1
        doc = json.loads(payload)
        mid, expected = build_reading(gw, dev, datetime.fromisoformat(doc["measured_at"]),
                                      datetime.fromisoformat(doc["received_at"]))
        assert payload == expected and mid == report.message_ids[n]
    assert sorted(seen.items()) == sorted((t, len(v)) for t, v in got.items())  # nothing more


def test_a_refused_connect_says_why(broker: EmbeddedMosquitto) -> None:
    config = FleetConfig(gateways=1, count=1, prefix=f"blast{secrets.token_hex(2)}")
    broker.add_gateways(config.gateway_ids())
    wrong = dict.fromkeys(config.gateway_ids(), "not-the-password")
    with pytest.raises(ConnectRefused, match=r"refused gateway .*0x8[67]"):
        blast(f"mqtt://127.0.0.1:{broker.port}", wrong, config)


def test_a_scheduled_run_stamps_each_message_with_its_due_time_and_never_sends_early(
        broker: EmbeddedMosquitto) -> None:
    """``start_at``: every message is built beforehand, stamped ``start_at + k / rate``, and goes
    out no earlier than that stamp (a subscriber receives each after it); ``late_s`` is measured."""
    config = FleetConfig(gateways=2, devices_per_gateway=3, rate=2_000.0, count=1_000, window=100,
                         prefix=f"blast{secrets.token_hex(2)}", seed=3)
    creds = broker.add_gateways(config.gateway_ids())
    pairs: list[tuple[float, float]] = []  # (stamp, arrival)
    done = threading.Event()
    sub = _subscribe(broker, defaultdict(list), 10**9, threading.Event())

    def on_message(client: Any, userdata: Any, msg: Any) -> None:
        stamp = datetime.fromisoformat(json.loads(msg.payload)["received_at"]).timestamp()
        pairs.append((stamp, time.time()))
        if len(pairs) >= 1_000:
            done.set()

    sub.on_message = on_message
    start = time.time() + 1.0
    try:
        report = blast(f"mqtt://127.0.0.1:{broker.port}", creds, config, start_at=start)
        assert done.wait(30), len(pairs)
    finally:
        sub.disconnect()
        sub.loop_stop()
    assert (report.published, report.acked, report.refused) == (1_000, 1_000, 0)
    assert 0.0 <= report.late_s < 5.0
    assert sorted(s for s, _ in pairs) == pytest.approx([start + k / 2_000.0 for k in range(1_000)], abs=1e-6)
    early = [(s, a) for s, a in pairs if a < s - 0.001]  # 1 ms: the monotonic-to-wall mapping
    assert not early, early[:3]
