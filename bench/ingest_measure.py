"""The measures of bench/ingest_bench.py, each over a steady-state window (warm-up excluded).

Every measure returns a :class:`Rate`: items per second over the window that starts ``warmup``
seconds after the first item and lasts ``window`` seconds (shorter only if the work ran out,
which the table then says). Database measures count only the time inside the database calls
(building the rows is not theirs) and run in turn, a batch each (:func:`interleaved`); MQTT
measures drain a backlog that several publisher processes queued in the broker for the
consumer's persistent session beforehand, so publishers and consumer never compete for the cores.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import psycopg
from psycopg import sql

from gateway import contract
from ingest import direct, rows
from ingest.pipeline import classify
from ingest.writer import READING_COLUMNS, Accepted, BatchWriter, staging_row
from simulators.fleet import FleetConfig, make_devices
from simulators.fleet_messages import build_reading

ROOT = Path(__file__).resolve().parents[1]
BATCH = 500  # the writer's default batch: raw COPY commits the same batches


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


class Steps(NamedTuple):
    """One database measure, a batch at a time: ``step(prepare())`` stores a batch and returns its
    rows (``prepare``, building the batch, is not timed); ``backend``: the server process doing
    the work, whose CPU time counts for the measure."""

    prepare: Callable[[], Any]
    step: Callable[[Any], int]
    backend: int | None = None


def interleaved(plan: Plan, measures: Mapping[str, Steps],
                cpu_us: dict[str, float] | None = None) -> dict[str, Rate]:
    """Each measure a batch in turn, until each has spent warm-up + window seconds inside its steps.

    Why in turn: measured one after the other, two measures of the same cluster met different
    conditions (a checkpoint falls into one; the next starts while autovacuum still works on the
    previous one's table), and their ratio swung by a third from run to run. In turn, every
    measure meets the same checkpoints and neighbours, so a ratio compares the work alone.
    ``cpu_us``: filled with each measure's CPU microseconds a row over its window (this process
    inside its steps, plus its ``backend``)."""
    spent = dict.fromkeys(measures, 0.0)
    rows = dict.fromkeys(measures, 0)
    warm = dict.fromkeys(measures, (0, 0.0))
    cpu = dict.fromkeys(measures, 0.0)
    active = list(measures)
    while active:
        for name in tuple(active):
            m = measures[name]
            work = m.prepare()
            c0 = time.process_time() + (process_cpu_seconds(m.backend) if m.backend else 0.0)
            t0 = time.perf_counter()
            n = m.step(work)
            spent[name] += time.perf_counter() - t0
            rows[name] += n
            if spent[name] < plan.warmup:
                warm[name] = (rows[name], spent[name])
            else:
                cpu[name] += time.process_time() + (process_cpu_seconds(m.backend) if m.backend else 0.0) - c0
            if spent[name] >= plan.total:
                active.remove(name)
    out = {}
    for name in measures:
        n = rows[name] - warm[name][0]
        out[name] = Rate(n / (spent[name] - warm[name][1]), spent[name] - warm[name][1])
        if cpu_us is not None:
            cpu_us[name] = cpu[name] / max(n, 1) * 1e6
    return out


def alone(plan: Plan, steps: Steps) -> Rate:
    """One measure on its own."""
    return interleaved(plan, {"it": steps})["it"]


def reading_tuple(a: Accepted) -> tuple[Any, ...]:
    row = staging_row(0, a)
    return tuple(row[i] for i in _KEEP)


_KEEP = [i for i, (c, _) in enumerate(rows.STAGING_COLUMNS) if c in READING_COLUMNS]


def _copy_steps(conn: psycopg.Connection[Any], stmt: sql.Composed | sql.SQL,
                prepare: Callable[[], list[tuple[Any, ...]]], types: Sequence[int] = ()) -> Steps:
    def step(rows: list[tuple[Any, ...]]) -> int:
        with conn.cursor() as cur, cur.copy(stmt) as copy:
            if types:
                copy.set_types(types)
            for r in rows:
                copy.write_row(r)
        conn.commit()
        return len(rows)

    return Steps(prepare, step, conn.info.backend_pid)


@contextmanager
def raw_copy_readings(url: str, fresh: Fresh) -> Iterator[Steps]:
    """COPY straight into ``readings`` (no staging, no dedupe), a commit per batch."""
    cols = sql.SQL(", ").join(sql.Identifier(c) for c in READING_COLUMNS)
    with psycopg.connect(url) as conn:
        yield _copy_steps(conn, sql.SQL("COPY readings ({}) FROM STDIN").format(cols),
                          lambda: [reading_tuple(a) for a in fresh.batch()])


@contextmanager
def raw_copy_readings_binary(url: str, fresh: Fresh) -> Iterator[Steps]:
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
        conn.adapters.register_dumper(None, direct.JsonbTextDumper)
        yield _copy_steps(conn, stmt, prepare, [int(oid) for (oid,) in found])


MINIMAL_DDL = ("CREATE TABLE IF NOT EXISTS bench_minimal (message_id uuid NOT NULL, device_id text NOT NULL,"
               " measured_at timestamptz NOT NULL, value double precision)")


@contextmanager
def raw_copy_minimal(url: str, fresh: Fresh) -> Iterator[Steps]:
    """COPY into a four-column table: the narrow-row ceiling of this database."""
    def prepare() -> list[tuple[Any, ...]]:
        return [(a.reading.message_id, a.reading.device.device_id, a.reading.measured_at,
                 a.reading.systolic_mmhg) for a in fresh.batch()]

    with psycopg.connect(url) as conn:
        conn.execute(MINIMAL_DDL)
        conn.commit()
        yield _copy_steps(conn, sql.SQL("COPY bench_minimal (message_id, device_id, measured_at, value)"
                                        " FROM STDIN"), prepare)


@contextmanager
def writer_alone(url: str, fresh: Fresh) -> Iterator[Steps]:
    """``BatchWriter.write`` (binding, dedupe, readings, devices, commit) on new readings."""
    w = BatchWriter(url)

    def step(batch: list[Accepted]) -> int:
        w.write(batch)
        return len(batch)

    try:
        w.write([])  # connected, so its server process is known
        yield Steps(fresh.batch, step, w.backend_pid())
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


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process (Linux /proc); 0 once it is gone."""
    try:
        fields = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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
