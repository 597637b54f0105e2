"""Ingest throughput and latency on the embedded stack, printed as ONE table (ratios from one run).

Rows:
  raw COPY            rows/s of COPY straight into ``readings`` (the database ceiling)
  writer alone        BatchWriter.write (COPY → staging → dedupe → readings, devices) without MQTT
  count-only          a paho v5 subscriber that only counts the QoS 1 stream (transport ceiling)
  naive               a subscriber doing INSERT + COMMIT per message (auto-ack)
  rpmflow 1 proc      ``rpmflow-ingest run``, plain subscription, manual ack after commit, with
                      WORKERS=0 (validate + write on the receiver's threads) and 1 / 2 worker
                      processes behind the one MQTT receiver
  rpmflow x2 shared   two processes (WORKERS=0) on a ``$share`` subscription (opt-in only)
  latency             publish → commit p50/p99 (default WORKERS) at half the rate that
                      configuration sustained: a poller
                      notes when each row becomes visible to another connection (i.e. committed)

Consumers are measured the same way: N messages are queued in the broker for the consumer's
persistent session while it is away, then it connects and we time first → last message stored
(or counted). The publisher therefore never competes with the consumer for the 2 cores, and its
own rate (printed) does not cap the consumer rates. rpmflow x2 uses ``--shared`` (opt-in, see
docs/ingest.md); the 1-process rows use the default plain subscription.

    .venv/bin/python bench/ingest_bench.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from psycopg import sql

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway import contract  # noqa: E402
from ingest.migrate import migrate  # noqa: E402
from ingest.pipeline import classify  # noqa: E402
from ingest.settings import Settings  # noqa: E402
from ingest.writer import READING_COLUMNS, Accepted, BatchWriter, staging_row  # noqa: E402
from simulators.fleet import FleetConfig, build_reading, provision, run_fleet  # noqa: E402
from simulators.fleet import make_devices as fleet_devices  # noqa: E402
from simulators.stack import EmbeddedMosquitto, Stack, running_stack  # noqa: E402


def fresh_db(stack: Stack, name: str) -> str:
    """A migrated database; returns its URL as rpmflow_ingest (what the service connects as)."""
    urls = stack.postgres.create_database(name)
    migrate(urls.owner)
    return urls.ingest


def rows(url: str) -> int:
    with psycopg.connect(url) as conn:
        r = conn.execute("SELECT count(*) FROM readings").fetchone()
        return int(r[0]) if r else 0


def accepted_items(n: int) -> list[Accepted]:
    config = FleetConfig(gateways=10, devices_per_gateway=10, seed=1)
    devices = fleet_devices(config, config.gateway_ids())
    now = datetime.now(UTC)
    out = []
    for i in range(n):
        gw, dev = devices[i % len(devices)]
        _, payload = build_reading(gw, dev, dev.next_time(now), now)
        item = classify(contract.readings_topic(gw), payload, now=now)
        assert isinstance(item, Accepted)
        out.append(item)
    return out


def bench_raw_copy(url: str, items: list[Accepted]) -> float:
    keep = [i for i, (c, _) in enumerate(_staging_columns()) if c in READING_COLUMNS]
    tuples = [tuple(staging_row(0, a)[i] for i in keep) for a in items]
    cols = sql.SQL(", ").join(sql.Identifier(c) for c in READING_COLUMNS)
    with psycopg.connect(url) as conn:
        t0 = time.perf_counter()
        with conn.cursor() as cur, cur.copy(sql.SQL("COPY readings ({}) FROM STDIN").format(cols)) as copy:
            for t in tuples:
                copy.write_row(t)
        conn.commit()
        return len(tuples) / (time.perf_counter() - t0)


def _staging_columns() -> tuple[tuple[str, str], ...]:
    from ingest import writer

    return writer._COLUMNS


def bench_writer(url: str, items: list[Accepted], batch: int = 500) -> float:
    w = BatchWriter(url)
    try:
        t0 = time.perf_counter()
        for i in range(0, len(items), batch):
            w.write(items[i:i + batch])
        return len(items) / (time.perf_counter() - t0)
    finally:
        w.close()


# -- MQTT consumers measured on a queued backlog ------------------------------------------------------


def _v5_client(broker: EmbeddedMosquitto, client_id: str) -> tuple[mqtt.Client, Properties]:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    c.username_pw_set("rpmflow-ingest", broker.ingest_password)
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 600
    props.ReceiveMaximum = 1000
    return c, props


def _session(broker: EmbeddedMosquitto, client_id: str, expiry: int = 600,
             topic: str = contract.READINGS_FILTER) -> None:
    """Create (expiry > 0) or delete (expiry 0) a persistent session subscribed to the readings."""
    c, props = _v5_client(broker, client_id)
    props.SessionExpiryInterval = expiry
    done = threading.Event()
    c.on_subscribe = lambda *a: done.set()
    c.connect("127.0.0.1", broker.port, clean_start=expiry == 0, properties=props)
    c.loop_start()
    if expiry:
        c.subscribe(topic, 1)
        done.wait(10)
    c.disconnect()
    c.loop_stop()


def publish_backlog(broker: EmbeddedMosquitto, creds: dict[str, str], config: FleetConfig) -> float:
    report = run_fleet(f"mqtt://127.0.0.1:{broker.port}", creds, config)
    assert report.acked == report.published, report.table()
    return report.rate


def bench_count_only(
    broker: EmbeddedMosquitto, creds: dict[str, str], config: FleetConfig
) -> tuple[float, float]:
    cid = f"bench-count-{secrets.token_hex(2)}"
    _session(broker, cid)
    pub_rate = publish_backlog(broker, creds, config)
    n = config.count or 0
    got: list[float] = []
    done = threading.Event()

    def on_message(client: Any, userdata: Any, msg: Any) -> None:
        got.append(time.perf_counter())
        if len(got) >= n:
            done.set()

    c, props = _v5_client(broker, cid)
    c.on_message = on_message
    c.connect("127.0.0.1", broker.port, clean_start=False, properties=props)
    c.loop_start()
    done.wait(120)
    c.disconnect()
    c.loop_stop()
    _session(broker, cid, expiry=0)
    return n / (got[-1] - got[0]), pub_rate


def bench_naive(broker: EmbeddedMosquitto, creds: dict[str, str], config: FleetConfig, url: str) -> float:
    """INSERT + COMMIT per message, acked by paho as on_message returns (the usual first version)."""
    cid = f"bench-naive-{secrets.token_hex(2)}"
    _session(broker, cid)
    publish_backlog(broker, creds, config)
    n = config.count or 0
    conn = psycopg.connect(url)
    cols = sql.SQL(", ").join(sql.Identifier(c) for c in READING_COLUMNS)
    marks = sql.SQL(", ").join(sql.Placeholder() * len(READING_COLUMNS))
    insert = sql.SQL("INSERT INTO readings ({}) VALUES ({})").format(cols, marks)
    keep = [i for i, (c, _) in enumerate(_staging_columns()) if c in READING_COLUMNS]
    stamps: list[float] = []
    done = threading.Event()

    def on_message(client: Any, userdata: Any, msg: Any) -> None:
        item = classify(msg.topic, msg.payload, now=datetime.now(UTC))
        assert isinstance(item, Accepted)
        cur = conn.execute(
            "INSERT INTO reading_keys (message_id) VALUES (%s) ON CONFLICT DO NOTHING",
            (item.reading.message_id,),
        )
        if cur.rowcount:
            row = staging_row(0, item)
            conn.execute(insert, [row[i] for i in keep])
        conn.commit()
        stamps.append(time.perf_counter())
        if len(stamps) >= n:
            done.set()

    c, props = _v5_client(broker, cid)
    c.on_message = on_message
    c.connect("127.0.0.1", broker.port, clean_start=False, properties=props)
    c.loop_start()
    done.wait(300)
    c.disconnect()
    c.loop_stop()
    conn.close()
    _session(broker, cid, expiry=0)
    return n / (stamps[-1] - stamps[0])


class Ingest:
    def __init__(self, broker: EmbeddedMosquitto, url: str, client_id: str, group: str, shared: bool,
                 workers: int) -> None:
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("RPMFLOW_")}
        self.env.update({
            "RPMFLOW_DATABASE_URL": url, "RPMFLOW_INGEST_MQTT_URL": broker.ingest_url,
            "RPMFLOW_INGEST_CLIENT_ID": client_id, "RPMFLOW_INGEST_GROUP": group,
            "RPMFLOW_INGEST_SHARED": str(shared).lower(), "RPMFLOW_INGEST_SESSION_EXPIRY_S": "600",
            "RPMFLOW_INGEST_WORKERS": str(workers),
        })
        self.client_id = client_id
        self.broker = broker
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = Path(tempfile.gettempdir()) / f"{client_id}.log"

    def start(self) -> None:
        self.log.write_bytes(b"")
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "ingest.cli", "run", "--no-migrate"],
                                         cwd=ROOT, env=self.env, stdout=log, stderr=log)

    def wait_subscribed(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while b"subscribed to" not in self.log.read_bytes():
            if time.monotonic() > deadline or (self.proc is not None and self.proc.poll() is not None):
                raise RuntimeError(f"ingest did not subscribe: {self.log.read_text()[-2000:]}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(30)

    def forget(self) -> None:
        _session(self.broker, self.client_id, expiry=0)
        self.log.unlink(missing_ok=True)


def bench_rpmflow(stack: Stack, creds: dict[str, str], config: FleetConfig, url: str, procs: int,
                  workers: int) -> float:
    group = f"bench{secrets.token_hex(2)}"
    ingests = [Ingest(stack.mosquitto, url, f"bench-ingest-{group}-{i}", group, procs > 1, workers)
               for i in range(procs)]
    topic = f"$share/{group}/{contract.READINGS_FILTER}" if procs > 1 else contract.READINGS_FILTER
    for ing in ingests:  # the sessions the processes will resume, holding the backlog
        _session(stack.mosquitto, ing.client_id, topic=topic)
    publish_backlog(stack.mosquitto, creds, config)
    n = config.count or 0
    for ing in ingests:
        ing.start()
    t_first = None
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        k = rows(url)
        if k and t_first is None:
            t_first, k_first = time.perf_counter(), k
        if k >= n:
            break
        time.sleep(0.02)
    t_last = time.perf_counter()
    for ing in ingests:
        ing.stop()
        ing.forget()
    assert t_first is not None and rows(url) == n, (rows(url), n)
    return (n - k_first) / (t_last - t_first)


def bench_latency(stack: Stack, creds: dict[str, str], config: FleetConfig, url: str,
                  workers: int) -> tuple[float, float]:
    """Publish at a steady rate; a second connection polls every 10 ms for newly committed rows and
    takes gateway ``received_at`` (stamped just before publishing) → first poll that sees the row.
    So this is publish → commit (+ up to one poll interval), not publish → insert."""
    group = f"lat{secrets.token_hex(2)}"
    ing = Ingest(stack.mosquitto, url, f"bench-ingest-{group}", group, False, workers)
    n = config.count or 0
    lags: list[float] = []
    done = threading.Event()

    def poll() -> None:
        last = 0
        with psycopg.connect(url, autocommit=True) as conn:
            while not done.is_set() and len(lags) < n:
                got = conn.execute(
                    "SELECT reading_id, extract(epoch FROM received_at)::float8 FROM readings"
                    " WHERE reading_id > %s", (last,)).fetchall()
                seen = time.time()
                for rid, received in got:
                    lags.append(seen - received)
                    last = max(last, rid)
                time.sleep(0.01)

    ing.start()
    poller = threading.Thread(target=poll, daemon=True)
    try:
        ing.wait_subscribed()
        poller.start()
        publish_backlog(stack.mosquitto, creds, config)
        deadline = time.monotonic() + 60
        while len(lags) < n and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        done.set()
        poller.join(10)
        ing.stop()
        ing.forget()
    assert len(lags) == n, (len(lags), n)
    lags.sort()
    return lags[n // 2] * 1000, lags[min(n - 1, int(n * 0.99))] * 1000


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smaller volumes (about a minute)")
    args = p.parse_args(argv)
    n_copy, n_writer, n_mqtt, n_naive = (30_000, 20_000, 10_000, 1_500) if args.quick else (
        150_000, 60_000, 30_000, 3_000)
    results: list[tuple[str, str, str]] = []
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    with running_stack() as stack:
        fleet = FleetConfig(gateways=8, devices_per_gateway=25, rate=0, window=500, prefix="bench", seed=3,
                            keep_ids=False)
        creds = provision(stack.mosquitto, fleet)
        print("building messages ...", file=sys.stderr)
        items = accepted_items(max(n_copy, n_writer))
        raw = bench_raw_copy(fresh_db(stack, "b_copy"), items[:n_copy])
        results.append(("raw COPY into readings", f"{raw:,.0f} rows/s", f"{n_copy:,} rows"))
        wr = bench_writer(fresh_db(stack, "b_writer"), items[:n_writer])
        results.append(("writer alone (batches of 500)", f"{wr:,.0f} rows/s", f"{n_writer:,} rows"))
        print("count-only ...", file=sys.stderr)
        mq = FleetConfig(**{**fleet.__dict__, "count": n_mqtt})
        count_rate, pub_rate = bench_count_only(stack.mosquitto, creds, mq)
        results.append(("publisher (fleet, QoS 1, 8 gateways)", f"{pub_rate:,.0f} msg/s", f"{n_mqtt:,} msgs"))
        results.append(("count-only subscriber (QoS 1)", f"{count_rate:,.0f} msg/s", f"{n_mqtt:,} msgs"))
        print("naive ...", file=sys.stderr)
        naive = bench_naive(stack.mosquitto, creds, FleetConfig(**{**fleet.__dict__, "count": n_naive}),
                            fresh_db(stack, "b_naive"))
        results.append(("naive (INSERT+COMMIT per msg)", f"{naive:,.0f} msg/s", f"{n_naive:,} msgs"))
        one: dict[int, float] = {}
        for workers in (0, 1, 2):
            print(f"rpmflow 1 process, WORKERS={workers} ...", file=sys.stderr)
            one[workers] = bench_rpmflow(stack, creds, mq, fresh_db(stack, f"b_w{workers}"), 1, workers)
            what = "in-process (WORKERS=0)" if workers == 0 else f"receiver + {workers} worker(s)"
            results.append((f"rpmflow ingest, 1 process, {what}", f"{one[workers]:,.0f} msg/s",
                            f"{n_mqtt:,} msgs"))
        print("rpmflow x2 shared ...", file=sys.stderr)
        r2 = bench_rpmflow(stack, creds, mq, fresh_db(stack, "b_r2"), 2, 0)
        results.append(("rpmflow ingest, 2 processes (shared, W=0)", f"{r2:,.0f} msg/s", f"{n_mqtt:,} msgs"))
        default = Settings.workers
        r1 = one[default]
        half = r1 / 2
        seconds = 3 if args.quick else 6
        lat_cfg = FleetConfig(**{**fleet.__dict__, "rate": half, "count": int(half * seconds)})
        print("latency ...", file=sys.stderr)
        p50, p99 = bench_latency(stack, creds, lat_cfg, fresh_db(stack, "b_lat"), default)
        results.append((f"latency publish→commit @ {half:,.0f} msg/s (W={default})", f"p50 {p50:,.0f} ms",
                        f"p99 {p99:,.0f} ms"))
    plain = "  ".join(f"W={w} {r / count_rate:.2f}" for w, r in one.items())
    results += [
        ("ratio rpmflow default / count-only (≥ 0.6)", f"{r1 / count_rate:.2f}",
         f"{plain}  shared x2 {r2 / count_rate:.2f}"),
        ("ratio rpmflow default / naive (≥ 5)", f"{r1 / naive:.1f}", f"W={default}"),
        ("ratio writer / raw COPY (≥ 0.5)", f"{wr / raw:.2f}", ""),
    ]
    w0 = max(len(a) for a, _, _ in results)
    w1 = max(len(b) for _, b, _ in results)
    print(f"{'measure':<{w0}}  {'result':>{w1}}  note")
    print("-" * (w0 + w1 + 16))
    for a, b, c in results:
        print(f"{a:<{w0}}  {b:>{w1}}  {c}")
    print(f"({os.cpu_count()} cores; {'--quick' if args.quick else 'full'} volumes; "
          f"a single run; compare ratios, not absolutes; load average before: {load_before})")
    print("(count-only, naive and rpmflow each drain the same kind of pre-published backlog held by the "
          "broker for their persistent session: the publisher rate does not limit them; x2 = --shared)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
