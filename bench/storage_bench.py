"""Bytes per stored reading, ingest speed and patient-page query times: old, lean, compact and codes layouts.

Sparse RPM data: each patient has a cuff (``--bp-per-day`` readings a day) and a glucose meter
(``--glucose-per-day``) over ``--days`` days, written through ingest's own writer in batches of
500, in receive order. Layouts (``--layouts``): the pre-0060 table, the lean table (0060-0080), the
compact one (0090-0097: real values, dedupe by a unique index) and codes (0098, today: enum codes)
on plain PostgreSQL, and, when TimescaleDB binaries
are found (``--pg-bin``, ``RPMFLOW_PG_BIN`` or a built ../shared/timescaledb), the same layouts but old as
hypertables uncompressed and compressed, plus compressed bytes per chunk interval and segment-by.
Bytes = table + indexes + TOAST (+ reading_keys, the dedupe where it is a table), over the row count.

    .venv/bin/python bench/storage_bench.py              # ~2-3 min on 2 cores
    .venv/bin/python bench/storage_bench.py --patients 100 --days 30   # a quick look
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.storage_breakdown import compressed_columns, index_bytes
from bench.storage_old import OldWriter
from dashboards import queries
from ingest import timescale as ts
from ingest.migrate import available, migrate
from ingest.pipeline import classify
from ingest.writer import Accepted, BatchWriter, keys_table
from simulators.embedded_postgres import EmbeddedPostgres
from simulators.fleet_messages import VirtualDevice, build_reading

BATCH = 500
REPO = Path(__file__).resolve().parents[1]
BUILD_SH = [d / "shared" / "timescaledb" / "build.sh" for d in (REPO.parent, REPO.parent.parent)]
Conn = psycopg.Connection[Any]


@dataclass
class Row:
    layout: str
    rows: int
    table_b: float
    keys_b: float
    fields_b: float | None
    rows_per_s: float | None
    q_readings_ms: float | None
    q_daily_ms: float | None
    q_billing_ms: float | None


def generate(patients: int, days: int, bp: int, glucose: int, seed: int) -> list[Accepted]:
    """Readings of ``patients`` over ``days`` days, sorted by receive time (ingest's order)."""
    rng = random.Random(seed)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=days)
    out: list[tuple[datetime, bytes, str]] = []
    for p in range(patients):
        gw = f"gw-{p // 10:04d}"
        for kind, per_day in (("blood_pressure", bp), ("glucose", glucose)):
            dev = VirtualDevice(f"{'BP' if kind == 'blood_pressure' else 'GL'}-{p:05d}", kind, "SIM",
                                random.Random(rng.random()))
            for d in range(days):
                for t in sorted(rng.sample(range(6 * 3600, 22 * 3600), per_day)):
                    at = start + timedelta(days=d, seconds=t)
                    received = at + timedelta(seconds=rng.randint(5, 3600))
                    _, payload = build_reading(gw, dev, at, received)
                    out.append((received, payload, gw))
    out.sort(key=lambda x: x[0])
    items = []
    for received, payload, gw in out:
        item = classify(f"rpm/v1/{gw}/readings", payload, now=received + timedelta(seconds=1))
        assert isinstance(item, Accepted), item
        items.append(item)
    return items


def seed_people(conn: Conn, patients: int, days: int, *, old: bool = False) -> None:
    since = datetime.now(UTC) - timedelta(days=days + 1)
    conn.execute("INSERT INTO patients (patient_id, mrn, display_name, state) SELECT g, 'MRN-' || g,"
                 " 'P' || g, 'NY' FROM generate_series(0, %s) g", (patients - 1,))
    for prefix, kind in (("BP", "blood_pressure"), ("GL", "glucose")):
        conn.execute("INSERT INTO devices (device_id, kind) SELECT %s || '-' || lpad(g::text, 5, '0'), %s"
                     " FROM generate_series(0, %s) g", (prefix, kind, patients - 1))
        conn.execute("INSERT INTO device_assignments (device_id, patient_id, valid_from)"
                     " SELECT %s || '-' || lpad(g::text, 5, '0'), g, %s FROM generate_series(0, %s) g",
                     (prefix, since, patients - 1))
        if not old:  # the layout before 0060 has no binding (bench/storage_old.py)
            conn.execute("INSERT INTO device_enrolments (device_id, gateway_id, valid_from, enrolled_by,"
                         " reason) SELECT %s || '-' || lpad(g::text, 5, '0'), 'gw-' || lpad((g / 10)::text,"
                         " 4, '0'), timestamptz '2015-01-01 00:00Z', 'bench', 'storage bench'"
                         " FROM generate_series(0, %s) g",
                         (prefix, patients - 1))


def load(url: str, items: Sequence[Accepted], old: bool) -> float:
    """Write ``items`` in batches through the layout's writer; returns rows per second."""
    writer: Any = OldWriter(url) if old else BatchWriter(url, application_name="storage-bench")
    t0 = time.perf_counter()
    try:
        for i in range(0, len(items), BATCH):
            writer.write(items[i:i + BATCH])
    finally:
        writer.close()
    return len(items) / (time.perf_counter() - t0)


def one(conn: Conn, query: str, *params: Any) -> Any:
    row = conn.execute(query.encode(), params).fetchone()
    return None if row is None else row[0]


def size_per_row(conn: Conn, hypertable: str | None = None) -> tuple[int, float, float]:
    conn.execute("VACUUM ANALYZE readings")
    keys = 0
    if keys_table(conn):
        conn.execute("VACUUM ANALYZE reading_keys")
        keys = one(conn, "SELECT pg_total_relation_size('reading_keys')")
    n = int(one(conn, "SELECT count(*) FROM readings"))
    if hypertable:
        table = one(conn, "SELECT hypertable_size(%s)", hypertable)
    else:
        table = one(conn, "SELECT pg_total_relation_size('readings')")
    return n, table / n, keys / n


def column_profile(conn: Conn) -> list[str]:
    """Average stored bytes of each column of readings (pg_column_size; NULL counts 0)."""
    query = ("SELECT attname FROM pg_attribute WHERE attnum > 0 AND NOT attisdropped"
             " AND attrelid = 'readings'::regclass ORDER BY attnum")
    cols = [r[0] for r in conn.execute(query)]
    exprs = ", ".join(f'avg(coalesce(pg_column_size("{c}"), 0))' for c in cols)
    row = conn.execute(f"SELECT {exprs} FROM readings".encode()).fetchone()
    assert row is not None
    return [f"| {c} | {float(v):.1f} |" for c, v in zip(cols, row, strict=True)]


def fields(conn: Conn) -> float:
    """Average bytes of one reading's own values (the row as a composite, minus its header)."""
    return float(one(conn, "SELECT avg(pg_column_size(r.*)) - 24 FROM readings r"))


def timed(fn: Callable[[], Any], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples)


# The patient page's daily query before 0090 added columns to readings_daily (the lean layout).
LEAN_DAILY = ("SELECT day, kind, readings, valid, systolic_min, systolic_avg, systolic_max, diastolic_avg,"
              " pulse_avg, glucose_min, glucose_avg, glucose_max FROM readings_daily"
              " WHERE patient_id = %s AND day >= %s ORDER BY day DESC, kind")


def daily_query(conn: Conn, layout: str, patient_id: int, since: datetime) -> Any:
    if layout == "lean":
        return conn.execute(LEAN_DAILY.encode(), (patient_id, since)).fetchall()
    return queries.daily_stats(conn, patient_id, since)


def query_times(conn: Conn, patients: int, layout: str) -> tuple[float, float | None, float]:
    """Median ms of the patient page's queries over 40 patients: readings (90 days), daily
    statistics (90 days; none in the old layout), billing days (30 days)."""
    rng = random.Random(3)
    pids = [rng.randrange(patients) for _ in range(40)]
    now = datetime.now(UTC)
    it = iter(pids * 3)
    r = timed(lambda: queries.readings(conn, next(it), now - timedelta(days=90)), len(pids))
    d = None
    if layout != "old":
        d = timed(lambda: daily_query(conn, layout, next(it), now - timedelta(days=90)), len(pids))
    b = timed(lambda: queries.billing_days(conn, next(it), "America/New_York", now - timedelta(days=30)),
              len(pids))
    return r, d, b


@contextmanager
def cluster(pg_bin: str | None, preload: bool) -> Iterator[EmbeddedPostgres]:
    saved = os.environ.get("RPMFLOW_PG_BIN")
    if pg_bin:
        os.environ["RPMFLOW_PG_BIN"] = pg_bin
    else:
        os.environ.pop("RPMFLOW_PG_BIN", None)
    try:
        pg = EmbeddedPostgres.create(preload_timescaledb=preload)
        pg.start()
    finally:
        if saved is None:
            os.environ.pop("RPMFLOW_PG_BIN", None)
        else:
            os.environ["RPMFLOW_PG_BIN"] = saved
    try:
        yield pg
    finally:
        pg.destroy()


def new_db(pg: EmbeddedPostgres, name: str) -> str:
    with psycopg.connect(pg.url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return pg.url.rsplit("/", 1)[0] + "/" + name


LEAN_UP_TO = 89  # the lean layout (0060-0080), before 0090 compacts it
COMPACT_UP_TO = 97  # the compact layout (0090-0097), before 0098 makes the codes enums
LAYOUTS = ("old", "lean", "compact", "codes")


def schema(url: str, layout: str) -> None:
    """``old`` (before 0060, plus the later kinds' columns), ``lean`` (0060-0080), ``compact``
    (0090-0097) or ``codes`` (today), without the TimescaleDB layer."""
    if layout == "old":
        migrate(url, up_to=59)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(next(m for m in available() if m.version == 80).sql.encode())
    elif layout == "lean":
        migrate(url, up_to=LEAN_UP_TO)
    elif layout == "compact":
        migrate(url, up_to=COMPACT_UP_TO)
    else:
        migrate(url, ts.Settings(mode=ts.Mode.OFF))


def plain_rows(items: Sequence[Accepted], args: argparse.Namespace) -> tuple[list[Row], list[str]]:
    out, profile = [], []
    with cluster(None, preload=False) as pg:
        for layout in args.layouts:
            url = new_db(pg, layout)
            schema(url, layout)
            with psycopg.connect(url, autocommit=True) as conn:
                seed_people(conn, args.patients, args.days, old=layout == "old")
            speed = load(url, items, layout == "old")
            with psycopg.connect(url, autocommit=True) as conn:
                n, table, keys = size_per_row(conn)
                r, d, b = query_times(conn, args.patients, layout)
                out.append(Row(f"{layout}, plain PostgreSQL", n, table, keys, fields(conn), speed, r, d, b))
                if layout == args.layouts[-1]:
                    profile = column_profile(conn) + index_bytes(conn)
    return out, profile


def timescale_rows(
    items: Sequence[Accepted], args: argparse.Namespace, pg_bin: str
) -> tuple[list[Row], list[str]]:
    rows: list[Row] = []
    chunks: list[str] = []
    with cluster(pg_bin, preload=True) as pg:
        for layout in [x for x in args.layouts if x != "old"]:
            url = new_db(pg, f"ts_{layout}")
            # The schema and grants as on plain PostgreSQL, then the TimescaleDB layer (a later grants
            # run would hit TimescaleDB 2.28.3 refusing column grants on a compressed hypertable).
            schema(url, layout)
            with psycopg.connect(url, autocommit=True) as conn:
                ts.apply(conn, ts.Settings(chunk_days=args.chunk_days))
                # The policy would compress old chunks while the load runs, by its schedule: the
                # "uncompressed" row would then depend on timing. The bench compresses itself below.
                conn.execute("SELECT alter_job(job_id, scheduled => false) FROM timescaledb_information.jobs"
                             " WHERE proc_name = 'policy_compression' AND hypertable_name = 'readings'")
                seed_people(conn, args.patients, args.days)
            speed = load(url, items, old=False)
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("CALL refresh_continuous_aggregate('readings_daily', NULL, NULL)")
                n, table, keys = size_per_row(conn, "readings")
                r, d, b = query_times(conn, args.patients, layout)
                label = f"{layout}, TimescaleDB, {args.chunk_days}-day chunks"
                rows.append(Row(f"{label}, uncompressed", n, table, keys, fields(conn), speed, r, d, b))
                conn.execute("SELECT count(compress_chunk(c)) FROM show_chunks('readings') c")
                n, table, keys = size_per_row(conn, "readings")
                r, d, b = query_times(conn, args.patients, layout)
                rows.append(Row(f"{label}, compressed", n, table, keys, None, None, r, d, b))
                if layout == args.layouts[-1]:
                    chunks += compressed_columns(conn)
                    for days in args.compare_chunks:
                        for segment in args.compare_segments:
                            chunks.append(chunk_interval(conn, days, segment))
    return rows, chunks


def chunk_interval(conn: Conn, days: int, layout: str) -> str:
    """Compressed bytes per reading with ``days``-day chunks and ``layout`` = "segmentby|orderby"
    (same data)."""
    segment, _, order = layout.partition("|")
    name = f"readings_c{days}"
    conn.execute(f"CREATE TABLE {name} (LIKE readings INCLUDING DEFAULTS)")
    conn.execute(f"SELECT create_hypertable('{name}', 'measured_at', create_default_indexes => false,"
                 f" chunk_time_interval => interval '{days} days')")
    conn.execute(f"CREATE INDEX ON {name} (patient_id, measured_at DESC)")
    conn.execute(f"ALTER TABLE {name} SET (timescaledb.compress,"
                 f" timescaledb.compress_segmentby = '{segment}',"
                 f" timescaledb.compress_orderby = '{order or 'measured_at DESC'}')")
    conn.execute(f"INSERT INTO {name} SELECT * FROM readings")
    conn.execute(f"SELECT count(compress_chunk(c)) FROM show_chunks('{name}') c")
    conn.execute(f"VACUUM ANALYZE {name}")
    n = int(one(conn, f"SELECT count(*) FROM {name}"))
    size = float(one(conn, "SELECT hypertable_size(%s)", name))
    chunks = one(conn, f"SELECT count(*) FROM show_chunks('{name}')")
    conn.execute(f"DROP TABLE {name}")
    return f"| {days} | {segment or '(none)'} | {order or 'measured_at DESC'} | {chunks} | {size / n:.1f} |"


def find_pg_bin(given: str | None) -> str | None:
    if given:
        return given
    if os.environ.get("RPMFLOW_PG_BIN"):
        return os.environ["RPMFLOW_PG_BIN"]
    for build in BUILD_SH:
        if build.exists():
            done = subprocess.run(["bash", str(build), "--bin"], capture_output=True, text=True, check=False)
            if done.returncode == 0 and done.stdout.strip():
                return done.stdout.strip().splitlines()[-1]
    return None


def fmt(v: float | None, spec: str = ".1f") -> str:
    return "–" if v is None else format(v, spec)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--patients", type=int, default=300)
    ap.add_argument("--days", type=int, default=120)
    ap.add_argument("--bp-per-day", type=int, default=2)
    ap.add_argument("--glucose-per-day", type=int, default=1)
    ap.add_argument("--chunk-days", type=int, default=28, help="chunk interval of the measured hypertable")
    ap.add_argument("--compare-chunks", type=lambda s: [int(x) for x in s.split(",") if x],
                    default=[7, 28, 91],
                    help="chunk intervals (days) to compare compressed, comma-separated ('' = none)")
    ap.add_argument("--compare-segments", type=lambda s: [x.strip() for x in s.split(";") if x.strip()],
                    default=["patient_id", "patient_id, kind", "|patient_id, measured_at DESC"],
                    help="'segmentby|orderby' pairs to compare compressed, ';'-separated (orderby"
                         " defaults to measured_at DESC)")
    ap.add_argument("--pg-bin", help="TimescaleDB-enabled PostgreSQL bin directory")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--layouts", type=lambda s: [x for x in s.split(",") if x], default=list(LAYOUTS),
                    help=f"comma-separated, in order, of {', '.join(LAYOUTS)} (the last one gets the column"
                         " profile and the chunk comparisons)")
    args = ap.parse_args(argv)
    if not args.layouts or set(args.layouts) - set(LAYOUTS):
        ap.error(f"--layouts: comma-separated names of {', '.join(LAYOUTS)}")
    t0 = time.perf_counter()
    items = generate(args.patients, args.days, args.bp_per_day, args.glucose_per_day, args.seed)
    print(f"rpmflow storage bench: {len(items):,} readings, {args.patients} patients x {args.days} days"
          f" ({args.bp_per_day} BP + {args.glucose_per_day} glucose a day), batches of {BATCH}")
    rows, profile = plain_rows(items, args)
    chunks: list[str] = []
    pg_bin = find_pg_bin(args.pg_bin)
    if pg_bin:
        more, chunks = timescale_rows(items, args, pg_bin)
        rows += more
    else:
        print("(no TimescaleDB binaries: build ../shared/timescaledb or pass --pg-bin for its rows)")
    print("\n| layout | rows | bytes/reading (table+indexes+TOAST) | + reading_keys | total |"
          " fields | ingest rows/s | readings 90 d ms | daily 90 d ms | billing days 30 d ms |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r.layout} | {r.rows:,} | {r.table_b:.1f} | {r.keys_b:.1f} | {r.table_b + r.keys_b:.1f} |"
              f" {fmt(r.fields_b)} | {fmt(r.rows_per_s, ',.0f')} | {fmt(r.q_readings_ms, '.2f')} |"
              f" {fmt(r.q_daily_ms, '.2f')} | {fmt(r.q_billing_ms, '.2f')} |")
    columns = [c for c in chunks if c.count("|") == 3]  # storage_breakdown.compressed_columns
    chunks = [c for c in chunks if c.count("|") != 3]
    if columns:
        print(f"\n| {args.layouts[-1]} compressed column (TimescaleDB) | bytes/reading |\n|---|---|")
        print("\n".join(columns))
    if chunks:
        print("\n| chunk interval (days) | segment by | order by | chunks | compressed bytes/reading"
              " (no reading_keys) |\n|---|---|---|---|---|")
        print("\n".join(chunks))
    print(f"\n| {args.layouts[-1]} column (plain) | avg bytes |\n|---|---|\n" + "\n".join(profile))
    print(f"\n'fields' = a reading's own values (its row as a composite minus the 24-byte header);"
          " the floor of a heap row is fields + 28 (tuple header + line pointer)."
          f" {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
