"""The MQTT measures of bench/ingest_bench.py: backlog publishers, count-only, naive, rpmflow, latency.

Throughput: the consumers' persistent sessions are subscribed first, then ``publishers``
processes queue one backlog in the broker (Mosquitto keeps one copy per session), then each
consumer in turn connects and drains its copy while a sampler counts what it has done. The naive
consumer subscribes to one gateway's topic only (its share of the backlog is enough for its
window). Latency: rpmflow runs, publisher processes offer a fixed total rate (each reading stamped
as it is published), and a poller notes when each reading becomes visible to another connection
(committed), by the database's clock after the query's snapshot. The publishers are
bench/mqtt_blast.py: ``run_fleet``'s messages for less than half its CPU.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from psycopg import sql

from bench.ingest_measure import CpuMeter, Plan, Rate, Sampler, reading_tuple
from bench.mqtt_blast import blast
from gateway import contract
from ingest import paho_receive
from ingest.pipeline import classify
from ingest.writer import READING_COLUMNS, Accepted
from simulators.embedded_mosquitto import EmbeddedMosquitto
from simulators.fleet import FleetConfig, enrol_devices, make_devices

ROOT = Path(__file__).resolve().parents[1]
COUNT_ONLY, NAIVE = "bench-count", "bench-naive"


def fleets(publishers: int, gateways: int, run: int) -> list[FleetConfig]:
    """One fleet per publisher process, each with gateways and devices of its own."""
    return [FleetConfig(gateways=gateways, devices_per_gateway=25, rate=0, window=500, count=0,
                        prefix=f"bench{p}", seed=100 * run + p, keep_ids=False)
            for p in range(publishers)]


def enrol(database_url: str, configs: list[FleetConfig]) -> None:
    """Enrol every device of these (seeded, so reproducible) fleets on its gateway."""
    for config in configs:
        enrol_devices(database_url, make_devices(config, config.gateway_ids()))


def _publish(url: str, creds: dict[str, str], config: FleetConfig,
             start_at: float | None = None) -> tuple[int, float, float]:
    """One publisher process on the lean publisher (bench/mqtt_blast.py): ``run_fleet``'s messages
    for less than half its CPU, which on two cores is taken from what the bench measures;
    ``start_at``: pre-built and sent on schedule from then (its lateness is returned)."""
    if start_at is not None:
        # The gateways do not share the ingest host's cores; here they do, so the load generator
        # yields them to the system it measures. What that delays keeps its due stamp: the lag
        # counts against rpmflow's latency, never for it.
        os.nice(10)
    report = blast(url, creds, config, ack_timeout=300, start_at=start_at)
    assert report.acked == report.published and not report.refused, report.table()
    return report.acked, report.elapsed_s, report.late_s


def publish(broker: EmbeddedMosquitto, creds: dict[str, str], configs: list[FleetConfig],
            start_at: float | None = None) -> float:
    """Run the fleets in parallel processes; returns the total rate they achieved (msg/s).
    ``start_at``: each pre-builds its messages and sends them on schedule from then."""
    url = f"mqtt://127.0.0.1:{broker.port}"
    with ProcessPoolExecutor(len(configs), mp_context=mp.get_context("spawn")) as pool:
        done = list(pool.map(_publish, [url] * len(configs),
                             [{g: creds[g] for g in c.gateway_ids()} for c in configs], configs,
                             [start_at] * len(configs)))
    if start_at is not None:
        late = max(x for _, _, x in done)
        print(f"    publishers: the latest message went out {late * 1000:,.0f} ms after its stamp"
              " (counted in its latency)", file=sys.stderr)
    return sum(n for n, _, _ in done) / max(s for _, s, _ in done)


def _client(broker: EmbeddedMosquitto, client_id: str, expiry: int = 600,
            lean: bool = False) -> tuple[mqtt.Client, Properties]:
    """An ingest account named ``client_id`` (the broker binds client ids to usernames); ``lean``:
    on ingest's receive path, acking by hand."""
    broker.add_ingest(client_id)
    c: mqtt.Client
    if lean:
        c = paho_receive.IngestClient(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5,
                                      manual_ack=True)
    else:
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    c.username_pw_set(client_id, broker.accounts[client_id])
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = expiry
    props.ReceiveMaximum = 2000  # rpmflow's default window
    return c, props


def session(broker: EmbeddedMosquitto, client_id: str, topic: str | None) -> None:
    """Create a persistent session subscribed to ``topic``, or (``None``) delete the session."""
    c, props = _client(broker, client_id, 600 if topic else 0)
    done = threading.Event()
    c.on_subscribe = lambda *a: done.set()
    c.on_connect = lambda *a: done.set() if topic is None else None
    c.connect("127.0.0.1", broker.port, clean_start=topic is None, properties=props)
    c.loop_start()
    if topic:
        c.subscribe(topic, 1)
    done.wait(10)
    c.disconnect()
    c.loop_stop()


def _drain(broker: EmbeddedMosquitto, client_id: str, on_message: Callable[[Any], None],
           done: Callable[[], int], total: int, plan: Plan) -> Rate:
    """Resume ``client_id``'s session with ``on_message`` (paho acks on return) and sample ``done``."""
    c, props = _client(broker, client_id)
    c.on_message = lambda client, userdata, msg: on_message(msg)
    c.connect("127.0.0.1", broker.port, clean_start=False, properties=props)
    c.loop_start()
    try:
        return Sampler(done, plan, total).run(120)
    finally:
        c.disconnect()
        c.loop_stop()


def count_only(broker: EmbeddedMosquitto, client_id: str, total: int, plan: Plan) -> Rate:
    """A paho v5 subscriber that only counts the QoS 1 stream (acked by paho): the ceiling."""
    got = [0]

    def on_message(msg: Any) -> None:
        got[0] += 1

    return _drain(broker, client_id, on_message, lambda: got[0], total, plan)


def count_only_lean(broker: EmbeddedMosquitto, client_id: str, total: int, plan: Plan) -> Rate:
    """The same on rpmflow's own receive path (ingest/paho_receive.py), acking 500 at a time as
    ingest does: the ceiling of that client, so what ingest itself costs on top of it shows."""
    got: list[int] = []
    saved = {m: getattr(m, "Properties") for m in paho_receive.decoders()}  # noqa: B009
    paho_receive.install_properties()
    c, props = _client(broker, client_id, lean=True)

    def on_message(client: Any, userdata: Any, msg: Any) -> None:
        got.append(msg.mid)
        if len(got) % 500 == 0:
            c.ack_many(got[-500:])  # type: ignore[attr-defined]

    c.on_message = on_message
    c.connect("127.0.0.1", broker.port, clean_start=False, properties=props)
    c.loop_start()
    try:
        return Sampler(lambda: len(got), plan, total).run(120)
    finally:
        c.ack_many(got[len(got) - len(got) % 500:])  # type: ignore[attr-defined]
        c.disconnect()
        c.loop_stop()
        for module, cls in saved.items():  # the stock measure stays on paho's own classes
            module.Properties = cls  # type: ignore[attr-defined]


def naive(broker: EmbeddedMosquitto, client_id: str, url: str, total: int, plan: Plan) -> Rate:
    """The usual first version: validate, INSERT and COMMIT per message in paho's callback (and
    no dedupe at all)."""
    cols = sql.SQL(", ").join(sql.Identifier(c) for c in READING_COLUMNS)
    insert = sql.SQL("INSERT INTO readings ({}) VALUES ({})").format(
        cols, sql.SQL(", ").join(sql.Placeholder() * len(READING_COLUMNS)))
    done = [0]
    with psycopg.connect(url) as conn:
        def on_message(msg: Any) -> None:
            item = classify(msg.topic, bytes(msg.payload), now=datetime.now(UTC))
            assert isinstance(item, Accepted)
            conn.execute(insert, reading_tuple(item))
            conn.commit()
            done[0] += 1

        return _drain(broker, client_id, on_message, lambda: done[0], total, plan)


class Ingest:
    """``rpmflow-ingest run`` as a subprocess with its default settings but for the ids."""

    def __init__(self, broker: EmbeddedMosquitto, url: str, client_id: str, group: str, **env: str) -> None:
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("RPMFLOW_")}
        self.env.update({
            "RPMFLOW_DATABASE_URL": url, "RPMFLOW_INGEST_MQTT_URL": broker.add_ingest(client_id),
            "RPMFLOW_INGEST_GROUP": group,
            "RPMFLOW_INGEST_SESSION_EXPIRY_S": "600", **env,
        })
        self.client_id, self.broker = client_id, broker
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = Path(tempfile.gettempdir()) / f"{client_id}.log"

    @property
    def topic(self) -> str:
        shared = self.env.get("RPMFLOW_INGEST_SHARED", "true") == "true"
        group = self.env["RPMFLOW_INGEST_GROUP"]
        return f"$share/{group}/{contract.READINGS_FILTER}" if shared else contract.READINGS_FILTER

    def start(self) -> None:
        self.log.write_bytes(b"")
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "ingest.cli", "run"],
                                         cwd=ROOT, env=self.env, stdout=log, stderr=log)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def wait_subscribed(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while b"subscribed to" not in self.log.read_bytes():
            if time.monotonic() > deadline or (self.proc is not None and self.proc.poll() is not None):
                raise RuntimeError(f"ingest did not subscribe: {self.log.read_text()[-2000:]}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(60)
        session(self.broker, self.client_id, None)
        self.log.unlink(missing_ok=True)


def max_reading_id(url: str) -> tuple[psycopg.Connection[Any], Any]:
    conn = psycopg.connect(url, autocommit=True)

    def count() -> int:
        row = conn.execute("SELECT coalesce(max(reading_id), 0) FROM readings").fetchone()
        return int(row[0]) if row else 0

    return conn, count


def rpmflow(ingests: list[Ingest], url: str, total: int, plan: Plan,
            others: dict[str, int] | None = None) -> tuple[Rate, dict[str, float]]:
    """The ingest processes drain the backlog their sessions hold; rows as committed. Also the
    readings per CPU second (per core) of the ingest processes and of the ``others`` process
    trees (name → root pid: the database, the broker) over the steady-state window."""
    conn, count = max_reading_id(url)
    try:
        for ing in ingests:
            ing.start()
        meters = {"ingest": [CpuMeter(i.pid) for i in ingests]}
        meters.update({name: [CpuMeter(pid)] for name, pid in (others or {}).items()})
        sampler = Sampler(count, plan, total, meters=[m for ms in meters.values() for m in ms])
        rate = sampler.run(300)
        per_core = {name: sampler.window_items / max(sum(m.seconds for m in ms), 1e-9)
                    for name, ms in meters.items()}
        return rate, per_core
    finally:
        for ing in ingests:
            ing.stop()
        conn.close()


POLL_LOOKBACK = 2_000  # ids: a few workers' batches of 500 in flight at once
# Each row's clock_timestamp() is read after the query's snapshot, so the row was committed
# before it: "seen" never falls before the commit, and the time to ship and loop over the rows
# is not counted as latency. Asked for: the ids above the highest seen, and the lower ones not
# seen yet (a concurrent worker's batch that commits after a later one), not every row again.
_COLS = ("reading_id, extract(epoch FROM received_at)::float8, "
         "extract(epoch FROM clock_timestamp())::float8 FROM readings")
_POLL = (f"SELECT {_COLS} WHERE reading_id > %(last)s"
         f" UNION ALL SELECT {_COLS} WHERE reading_id = ANY(%(missing)s)")


class NewIds:
    """Which reading ids a poll still has to ask for (pure bookkeeping): everything above the
    highest id seen, and the ids below it not seen yet, for ``lookback`` ids."""

    def __init__(self, lookback: int = POLL_LOOKBACK) -> None:
        self.last = 0
        self.missing: set[int] = set()
        self._lookback = lookback

    def take(self, ids: list[int]) -> list[int]:
        """The ids of ``ids`` not seen before, and remember them."""
        new = []
        for rid in sorted(ids):
            if rid > self.last:
                self.missing.update(range(max(self.last + 1, rid - self._lookback + 1), rid))
                self.last = rid
                new.append(rid)
            elif rid in self.missing:
                self.missing.discard(rid)
                new.append(rid)
        floor = self.last - self._lookback
        self.missing = {m for m in self.missing if m > floor}
        return new


def latency(ingest: Ingest, url: str, broker: EmbeddedMosquitto, creds: dict[str, str],
            configs: list[FleetConfig], rate: float, plan: Plan) -> tuple[list[float], float]:
    """Publish → commit (ms) at ``rate`` msg/s offered by the publisher processes, for the
    readings published after the warm-up; also the rate the publishers achieved."""
    per = [FleetConfig(**{**c.__dict__, "rate": rate / len(configs), "count": int(rate / len(configs)
                                                                                   * plan.total)})
           for c in configs]
    lags: list[tuple[float, float]] = []  # (received_at epoch, seen - received_at)
    stop = threading.Event()

    def poll() -> None:
        ids = NewIds()
        with psycopg.connect(url, autocommit=True) as c:
            while not stop.is_set():
                got = c.execute(_POLL, {"last": ids.last, "missing": sorted(ids.missing)}).fetchall()
                rows = {rid: (received, seen) for rid, received, seen in got}
                lags.extend((rows[rid][0], rows[rid][1] - rows[rid][0]) for rid in ids.take(list(rows)))
                time.sleep(0.01)

    ingest.start()
    poller = threading.Thread(target=poll, daemon=True)
    try:
        ingest.wait_subscribed()
        poller.start()
        t0 = time.time()
        # Pre-built and sent on schedule (bench/mqtt_blast.py): the publishers cost the cores only
        # their sending, and a message sent late keeps its due time as its stamp. Starting time:
        # spawning, then building (~100 µs a message, two processes a core), with a margin.
        count = max(c.count or 0 for c in per)
        achieved = publish(broker, creds, per, start_at=t0 + 3.0 + count * 300e-6)
        total = sum(c.count or 0 for c in per)
        deadline = time.monotonic() + 60
        while len(lags) < total and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        poller.join(10)
        ingest.stop()
    assert len(lags) == total, (len(lags), total)
    start = min(r for r, _ in lags) if lags else t0
    steady_lags = sorted(lag * 1000 for r, lag in lags if r >= start + plan.warmup)
    return steady_lags, achieved


def pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(len(values) * q))] if values else float("nan")


def new_group() -> str:
    return f"bench{secrets.token_hex(2)}"
