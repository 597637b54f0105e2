"""Gateway throughput: decode → outbox → publish (QoS 1, PUBACK) for 10,000 readings, and peak RSS.

Run: ``.venv/bin/python bench/gateway_bench.py [--readings 10000]``. Starts its own Mosquitto
(``simulators.stack.EmbeddedMosquitto``); prints a table. The budget for the Pi is a peak RSS
under 60 MB. Figures are for comparison within one run on one machine, not asserts.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway import wire
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
from simulators.stack import EmbeddedMosquitto


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
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = Path(tmp) / "outbox.sqlite3"
            outbox = Outbox(path, capacity=n + 1)
            t0 = time.perf_counter()
            for message_id, kind, payload in messages:
                outbox.add(message_id, kind, device.id, payload)
            rows.append(("outbox add (1 txn each, synchronous=FULL)", time.perf_counter() - t0))

            settings = Settings(gateway_id="gw-bench", mqtt_url=broker.url_for("gw-bench"), outbox_path=path,
                                outbox_capacity=n + 1, inflight_window=100, status_interval_s=3600)
            publisher = Publisher.from_settings(make_client(settings), settings)
            t0 = time.perf_counter()
            publisher.start()
            deadline = time.monotonic() + 300
            while outbox.depth() and time.monotonic() < deadline:
                time.sleep(0.05)
            rows.append(("publish QoS 1 → PUBACK → delete", time.perf_counter() - t0))
            left = outbox.depth()
            publisher.stop()
            outbox.close()
        finally:
            broker.destroy()

    print(f"rpmflow gateway bench: {n} readings (half BP, half glucose), window 100, one process")
    print(f"{'stage':<44} {'seconds':>9} {'readings/s':>12}")
    for name, seconds in rows:
        print(f"{name:<44} {seconds:>9.2f} {n / seconds:>12,.0f}")
    total = sum(s for _, s in rows)
    print(f"{'end to end (sum of stages)':<44} {total:>9.2f} {n / total:>12,.0f}")
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {rss_mb:.1f} MB (ru_maxrss), VmHWM {vm_hwm_kb() / 1024:.1f} MB; budget < 60 MB")
    print(f"left in outbox: {left}")
    return 0 if left == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
