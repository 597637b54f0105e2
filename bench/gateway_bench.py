"""Gateway throughput: decode → outbox → publish for 10,000 readings, and peak RSS.

The publish stage runs twice over the same readings: with ``SERVER_ACKS=false`` (publish →
PUBACK → delete: the broker link alone) and with ``SERVER_ACKS=true`` (publish → PUBACK →
published → ingest's ack → delete), where a stand-in for ingest in a child process (the
``rpmflow-ingest`` account, no database: it acknowledges what it receives every 20 ms, up to 1000
ids per ack, as ingest batches) confirms the readings. The second figure is the gateway's side of
the round trip; real ingest adds its commit time. The child keeps its memory out of the peak RSS.

Run: ``.venv/bin/python bench/gateway_bench.py [--readings 10000]``. Starts its own Mosquitto
(``simulators.embedded_mosquitto.EmbeddedMosquitto``); prints a table. The budget for the Pi is a peak RSS
under 60 MB. Figures are for comparison within one run on one
machine, not asserts.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway import contract, wire
from gateway.gatt import (
    merge_glucose_context,
    parse_blood_pressure_measurement,
    parse_glucose_measurement,
)
from gateway.outbox import Outbox
from gateway.publisher import Publisher, make_client
from gateway.settings import Settings
from simulators.devices.bp_cuff import encode_measurement as bp_bytes
from simulators.devices.glucose_meter import encode_measurement as glucose_bytes
from simulators.embedded_mosquitto import INGEST_USER, EmbeddedMosquitto

ACK_BATCH = 1000


def test_ingest(port: int, password: str, gateway_id: str, ready: Any, stop: Any) -> None:
    """Child process: receive the gateway's readings as ``rpmflow-ingest``, ack them in batches."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    ids: list[str] = []
    lock = threading.Lock()

    def on_message(client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with lock:
            ids.append(json.loads(msg.payload)["message_id"])

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-ingest", protocol=mqtt.MQTTv5)
    client.username_pw_set(INGEST_USER, password)
    client.on_connect = lambda c, *a: c.subscribe(contract.readings_topic(gateway_id), qos=1)
    client.on_subscribe = lambda *a: ready.set()
    client.on_message = on_message
    client.connect("127.0.0.1", port)
    client.loop_start()
    while not stop.wait(0.02):
        with lock:
            batch, ids[:ACK_BATCH] = ids[:ACK_BATCH], []
        if batch:
            client.publish(contract.acks_topic(gateway_id), json.dumps({
                "schema": contract.ACK_SCHEMA, "gateway_id": gateway_id, "message_ids": batch,
                "committed_at": datetime.now(UTC).isoformat()}), qos=1)
    client.disconnect()
    client.loop_stop()


def vm_hwm_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def frames(n: int) -> list[tuple[str, bytes]]:
    base = datetime(2026, 1, 1, 8, 0)
    out: list[tuple[str, bytes]] = []
    for i in range(n):
        when = base + timedelta(minutes=i)
        if i % 2:
            out.append(("bp", bp_bytes(110 + i % 40, 70 + i % 20, 85, timestamp=when, pulse=60 + i % 30,
                                       user_id=1, status=0)))
        else:
            out.append(("glucose", glucose_bytes(i // 2 % 65536, when, 80 + i % 100, time_offset_min=0)))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--readings", type=int, default=10_000)
    args = parser.parse_args()
    n = args.readings
    raw = frames(n)
    device = wire.DeviceIdentity("BENCH-0001", "rpmflow-sim", "SIM", "BENCH-0001", "1.0", "C0:00:00:00:00:01")
    zone = ZoneInfo("UTC")
    rows: list[tuple[str, float]] = []

    t0 = time.perf_counter()
    messages: list[tuple[str, str, str]] = []
    for kind, data in raw:
        timing = wire.Timing(datetime.now(UTC), 0.0, zone)
        if kind == "bp":
            msg = wire.blood_pressure_reading(parse_blood_pressure_measurement(data), gateway_id="gw-bench",
                                              device=device, timing=timing)
        else:
            record = merge_glucose_context(parse_glucose_measurement(data), None)
            msg = wire.glucose_reading(record, gateway_id="gw-bench", device=device, timing=timing)
        messages.append((msg["message_id"], msg["kind"], wire.encode(msg)))
    rows.append(("decode + build JSON", time.perf_counter() - t0))

    broker = EmbeddedMosquitto.create()
    broker.add_gateway("gw-bench")
    broker.start()
    left = 0
    with tempfile.TemporaryDirectory() as tmp:
        try:
            for server_acks in (False, True):
                path = Path(tmp) / f"outbox-{server_acks}.sqlite3"
                outbox = Outbox(path, capacity=n + 1)
                t0 = time.perf_counter()
                for message_id, kind, payload in messages:
                    outbox.add(message_id, kind, device.id, payload)
                if not server_acks:
                    rows.append(("outbox add (1 txn each, synchronous=FULL)", time.perf_counter() - t0))
                acker = None
                if server_acks:
                    ctx = multiprocessing.get_context("spawn")
                    ready, stop = ctx.Event(), ctx.Event()
                    acker = ctx.Process(target=test_ingest, args=(broker.port, broker.ingest_password,
                                                                  "gw-bench", ready, stop))
                    acker.start()
                    ready.wait(30)
                settings = Settings(gateway_id="gw-bench", mqtt_url=broker.url_for("gw-bench"),
                                    outbox_path=path, outbox_capacity=n + 1, inflight_window=100,
                                    status_interval_s=3600, server_acks=server_acks)
                publisher = Publisher.from_settings(make_client(settings), settings)
                t0 = time.perf_counter()
                publisher.start()
                deadline = time.monotonic() + 300
                while outbox.depth() and time.monotonic() < deadline:
                    time.sleep(0.05)
                name = ("publish → PUBACK → published → ingest ack → delete" if server_acks
                        else "publish QoS 1 → PUBACK → delete (SERVER_ACKS=false)")
                rows.append((name, time.perf_counter() - t0))
                left += outbox.depth()
                publisher.stop()
                if acker is not None:
                    stop.set()
                    acker.join(10)
                outbox.close()
        finally:
            broker.destroy()

    print(f"rpmflow gateway bench: {n} readings (half BP, half glucose), window 100;"
          " test-ingest acker in a child process")
    print(f"{'stage':<54} {'seconds':>9} {'readings/s':>12}")
    for name, seconds in rows:
        print(f"{name:<54} {seconds:>9.2f} {n / seconds:>12,.0f}")
    total = sum(s for name, s in rows if "SERVER_ACKS=false" not in name)
    print(f"{'end to end with server acks (decode+add+ack stage)':<54} {total:>9.2f} {n / total:>12,.0f}")
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {rss_mb:.1f} MB (ru_maxrss), VmHWM {vm_hwm_kb() / 1024:.1f} MB; budget < 60 MB")
    print(f"left in outbox: {left}")
    return 0 if left == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
