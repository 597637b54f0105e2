"""The measures of bench/ingest_bench.py, each over a steady-state window (warm-up excluded).

Every measure returns a :class:`Rate`: items per second over the window that starts ``warmup``
seconds after the first item and lasts ``window`` seconds (shorter only if the work ran out,
which the table then says). Database measures count only the time inside the database calls
(building the rows is not theirs); MQTT measures drain a backlog that several publisher
processes queued in the broker for the consumer's persistent session beforehand, so publishers
and consumer never compete for the cores.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import psycopg
from psycopg import sql

from gateway import contract
from ingest import direct
from ingest import writer as writer_module
from ingest.pipeline import classify
from ingest.writer import READING_COLUMNS, Accepted, BatchWriter, staging_row
from simulators.fleet import FleetConfig, make_devices
from simulators.fleet_messages import build_reading

ROOT = Path(__file__).resolve().parents[1]
BATCH = 500  # the writer's default batch: raw COPY commits the same batches
T = TypeVar("T")


class Rate(NamedTuple):
    per_s: float
    window_s: float  # the steady-state seconds measured


@dataclasses.dataclass
class Plan:
    warmup: float
    window: float

    @property
    def total(self) -> float:
        return self.warmup + self.window


def steady(samples: list[tuple[float, int]], plan: Plan) -> Rate:
    """Rate over [first item + warm-up, + window] from (time, items so far) samples."""
    first = next((t for t, n in samples if n > 0), None)
    if first is None:
        return Rate(0.0, 0.0)
    start_t = first + plan.warmup
    inside = [(t, n) for t, n in samples if start_t <= t <= start_t + plan.window]
    if len(inside) < 2:
        inside = [(t, n) for t, n in samples if t >= first][-2:]
    (t0, n0), (t1, n1) = inside[0], inside[-1]
    return Rate((n1 - n0) / (t1 - t0) if t1 > t0 else 0.0, t1 - t0)


class Sampler:
    """Samples ``count()`` every ``every`` seconds until stopped, the plan is done, or ``total``;
    ``meters`` run from the window's start to the end (CPU seconds of the steady state)."""

    def __init__(self, count: Callable[[], int], plan: Plan, total: int, every: float = 0.1,
                 meters: Sequence[CpuMeter] = ()) -> None:
        self.samples: list[tuple[float, int]] = []
        self._count, self._plan, self._total, self._every = count, plan, total, every
        self._meters = meters
        self.window_items = 0

    def run(self, timeout: float) -> Rate:
        deadline = time.monotonic() + timeout
        first: float | None = None
        started: int | None = None
        while time.monotonic() < deadline:
            n = self._count()
            now = time.monotonic()
            self.samples.append((now, n))
            if n and first is None:
                first = now
            if started is None and first is not None and now >= first + self._plan.warmup:
                started = n
                for m in self._meters:
                    m.start()
            if n >= self._total or (first is not None and now >= first + self._plan.total + self._every):
                break
            time.sleep(self._every)
        if started is not None:
            for m in self._meters:
                m.stop()
            self.window_items = self.samples[-1][1] - started
        return steady(self.samples, self._plan)


# -- rows ---------------------------------------------------------------------------------------------


SAMPLE_FLEET = FleetConfig(gateways=10, devices_per_gateway=10, seed=1)  # the rows' devices (enrol them)


def fleet_messages(n: int) -> list[tuple[str, bytes]]:
    """``n`` valid readings of the sample fleet as ``(topic, payload)``, as the receiver hands them on."""
    config = SAMPLE_FLEET
    devices = make_devices(config, config.gateway_ids())
    now = datetime.now(UTC)
    out = []
    for i in range(n):
        gw, dev = devices[i % len(devices)]
        _, payload = build_reading(gw, dev, dev.next_time(now), now)
        out.append((contract.readings_topic(gw), payload))
    return out


def accepted_items(n: int) -> list[Accepted]:
    now = datetime.now(UTC)
    out = []
    for topic, payload in fleet_messages(n):
        item = classify(topic, payload, now=now)
        assert isinstance(item, Accepted)
        out.append(item)
    return out


class Fresh:
    """Batches of the sample rows under message ids never used before (a pool of rows, reused)."""

    def __init__(self, items: list[Accepted]) -> None:
        self.items = items
        self._next = 0
        self._k = secrets.randbits(64) << 64

    def _ids(self, n: int) -> list[str]:
        self._k += n
        return [uuid.UUID(int=self._k - i).hex for i in range(n)]

    def batch(self) -> list[Accepted]:
        start = self._next
        self._next = (self._next + BATCH) % (len(self.items) - BATCH)
        return [Accepted(dataclasses.replace(a.reading, message_id=m), a.grade)
                for a, m in zip(self.items[start:start + BATCH], self._ids(BATCH), strict=True)]


def _timed_loop(plan: Plan, prepare: Callable[[], T], step: Callable[[T], int]) -> Rate:
    """``step(prepare())`` until warm-up + window seconds inside ``step`` have passed (``prepare``,
    building the rows, is not timed)."""
    spent = rows = 0.0
    warm_rows = warm_spent = 0.0
    while spent < plan.total:
        work = prepare()
        t0 = time.perf_counter()
        n = step(work)
        spent += time.perf_counter() - t0
        rows += n
        if spent < plan.warmup:
            warm_rows, warm_spent = rows, spent
    return Rate((rows - warm_rows) / (spent - warm_spent), spent - warm_spent)


def reading_tuple(a: Accepted) -> tuple[Any, ...]:
    row = staging_row(0, a)
    return tuple(row[i] for i in _KEEP)


_KEEP = [i for i, (c, _) in enumerate(writer_module._COLUMNS) if c in READING_COLUMNS]


def _copy_batches(url: str, stmt: sql.Composed | sql.SQL, plan: Plan,
                  prepare: Callable[[], list[tuple[Any, ...]]], setup: str | None = None) -> Rate:
    with psycopg.connect(url) as conn:
        if setup:
            conn.execute(setup)
            conn.commit()

        def step(rows: list[tuple[Any, ...]]) -> int:
            with conn.cursor() as cur, cur.copy(stmt) as copy:
                for r in rows:
                    copy.write_row(r)
            conn.commit()
            return len(rows)

        return _timed_loop(plan, prepare, step)


def raw_copy_readings(url: str, fresh: Fresh, plan: Plan) -> Rate:
    """COPY straight into ``readings`` (no staging, no dedupe), a commit per batch."""
    cols = sql.SQL(", ").join(sql.Identifier(c) for c in READING_COLUMNS)
    return _copy_batches(url, sql.SQL("COPY readings ({}) FROM STDIN").format(cols), plan,
                         lambda: [reading_tuple(a) for a in fresh.batch()])


def raw_copy_readings_binary(url: str, fresh: Fresh, plan: Plan) -> Rate:
    """The same rows in COPY's binary format, each column as its own type (an enum as its label):
    the format the writer's fast path sends, so its ratio to this one is like for like."""
    cols = sql.SQL(", ").join(sql.Identifier(c) for c in READING_COLUMNS)
    stmt = sql.SQL("COPY readings ({}) FROM STDIN (FORMAT BINARY)").format(cols)
    uuid_at = READING_COLUMNS.index("message_id")

    def prepare() -> list[tuple[Any, ...]]:
        rows = [list(reading_tuple(a)) for a in fresh.batch()]
        for r in rows:
            r[uuid_at] = uuid.UUID(r[uuid_at])
        return [tuple(r) for r in rows]

    with psycopg.connect(url) as conn:
        found = conn.execute(direct.COLUMN_TYPES, (list(READING_COLUMNS),)).fetchall()
        types = [int(oid) for (oid,) in found]
        conn.adapters.register_dumper(None, direct.JsonbTextDumper)

        def step(rows: list[tuple[Any, ...]]) -> int:
            with conn.cursor() as cur, cur.copy(stmt) as copy:
                copy.set_types(types)
                for r in rows:
                    copy.write_row(r)
            conn.commit()
            return len(rows)

        return _timed_loop(plan, prepare, step)


MINIMAL_DDL = ("CREATE TABLE IF NOT EXISTS bench_minimal (message_id uuid NOT NULL, device_id text NOT NULL,"
               " measured_at timestamptz NOT NULL, value double precision)")


def raw_copy_minimal(url: str, fresh: Fresh, plan: Plan) -> Rate:
    """COPY into a four-column table: the narrow-row ceiling of this database."""
    def prepare() -> list[tuple[Any, ...]]:
        return [(a.reading.message_id, a.reading.device.device_id, a.reading.measured_at,
                 a.reading.systolic_mmhg) for a in fresh.batch()]

    stmt = sql.SQL("COPY bench_minimal (message_id, device_id, measured_at, value) FROM STDIN")
    return _copy_batches(url, stmt, plan, prepare, setup=MINIMAL_DDL)


def writer_alone(url: str, fresh: Fresh, plan: Plan) -> Rate:
    """``BatchWriter.write`` (staging, dedupe, readings, devices, commit) on new readings."""
    w = BatchWriter(url)

    def step(batch: list[Accepted]) -> int:
        w.write(batch)
        return len(batch)

    try:
        return _timed_loop(plan, fresh.batch, step)
    finally:
        w.close()


# -- CPU time of process trees (msgs per ingest core, rows per database core) -------------------------


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue  # gone meanwhile
            kids.setdefault(ppid, []).append(int(entry.name))
    return kids


def tree_cpu_seconds(root: int) -> float:
    """User + system CPU seconds of ``root`` and its living descendants (Linux /proc)."""
    kids, tick = _children(), os.sysconf("SC_CLK_TCK")
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        try:
            fields = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
        todo.extend(kids.get(pid, []))
    return total


def postmaster_pid(data_dir: Path) -> int:
    return int((data_dir / "postmaster.pid").read_text().split()[0])


class CpuMeter:
    """CPU seconds a process tree spends between ``start()`` and ``stop()``."""

    def __init__(self, root: int) -> None:
        self._root = root
        self.seconds = 0.0
        self._t0 = 0.0

    def start(self) -> None:
        self._t0 = tree_cpu_seconds(self._root)

    def stop(self) -> float:
        self.seconds = tree_cpu_seconds(self._root) - self._t0
        return self.seconds
