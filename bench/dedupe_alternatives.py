"""What the TimescaleDB dedupe would cost without reading_keys, and how small a key table can be.

On TimescaleDB the message ids live in ``reading_keys`` (ingest/timescale.py: a hypertable's
unique index must include ``measured_at``, which is not stable for a message id). Measured here:

- looking staged ids up in compressed chunks instead (a B-tree on ``message_id`` gives each
  compressed batch a bloom filter): per id (``LATERAL … LIMIT 1``), and set-based (anti-join);
- bytes per id of key tables: uuid + gateway (today), uuid only, a 64-bit prefix.

    .venv/bin/python bench/dedupe_alternatives.py --pg-bin <TimescaleDB-enabled bin>   # ~2 min
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.storage_bench import cluster, find_pg_bin, new_db, one

Conn = psycopg.Connection[Any]

_TABLE = """
CREATE TABLE r (measured_at timestamptz NOT NULL, patient_id bigint, message_id uuid NOT NULL,
                gateway_id text, v real);
SELECT create_hypertable('r', 'measured_at', create_default_indexes => false,
                         chunk_time_interval => interval '28 days');
CREATE INDEX r_patient_time ON r (patient_id, measured_at DESC);
CREATE INDEX r_message ON r (message_id);
ALTER TABLE r SET (timescaledb.compress, timescaledb.compress_segmentby = '',
                   timescaledb.compress_orderby = 'patient_id, measured_at DESC');
"""


def compressed_lookups(conn: Conn, rows: int, batch: int) -> tuple[float, float, int]:
    """(ms per id looked up one by one, ms per batch set-based, chunks) over ``rows`` compressed readings."""
    for stmt in _TABLE.split(";"):
        if stmt.strip():
            conn.execute(stmt.encode())
    conn.execute("INSERT INTO r SELECT timestamptz '2026-01-01' + g * interval '1 minute', g %% 200,"
                 " gen_random_uuid(), 'gw', g FROM generate_series(1, %s) g", (rows,))
    chunks = int(one(conn, "SELECT count(compress_chunk(c)) FROM show_chunks('r') c"))
    conn.execute("VACUUM ANALYZE r")
    conn.execute("CREATE TABLE s AS (SELECT message_id FROM r ORDER BY random() LIMIT %s)"
                 " UNION ALL SELECT gen_random_uuid() FROM generate_series(1, %s)", (batch // 2, batch // 2))
    conn.execute("ANALYZE s")
    t0 = time.perf_counter()
    found = one(conn, "SELECT count(*) FROM s CROSS JOIN LATERAL"
                      " (SELECT 1 FROM r WHERE r.message_id = s.message_id LIMIT 1) x")
    per_id = (time.perf_counter() - t0) * 1000 / batch
    t0 = time.perf_counter()
    missing = one(conn, "SELECT count(*) FROM s WHERE NOT EXISTS"
                        " (SELECT 1 FROM r WHERE r.message_id = s.message_id)")
    set_based = (time.perf_counter() - t0) * 1000
    assert found == batch // 2 and missing == batch - batch // 2, (found, missing)
    return per_id, set_based, chunks


_KEYS = {
    "uuid + gateway (reading_keys today)": ("message_id uuid PRIMARY KEY, gateway_id text",
                                            "m, 'gw-' || lpad((i %% 20)::text, 4, '0')"),
    "uuid only": ("message_id uuid PRIMARY KEY", "m"),
    "64-bit prefix of the id": ("h bigint PRIMARY KEY",
                                "('x' || substr(replace(m::text, '-', ''), 1, 16))::bit(64)::bigint"),
}


def key_tables(conn: Conn, ids: int, batch: int) -> list[tuple[str, float]]:
    """Bytes per id (heap + index) of each key table, filled with random ids in ``batch``-id inserts."""
    out = []
    for n, (name, (cols, expr)) in enumerate(_KEYS.items()):
        conn.execute(f"CREATE TABLE k{n} ({cols})".encode())
        for i in range(0, ids, batch):
            conn.execute(f"INSERT INTO k{n} SELECT {expr} FROM (SELECT gen_random_uuid() AS m"
                         f" FROM generate_series(1, %s)) g, (SELECT %s AS i) c".encode(), (batch, i // batch))
        conn.execute(f"VACUUM ANALYZE k{n}".encode())
        out.append((name, int(one(conn, f"SELECT pg_total_relation_size('k{n}')")) / ids))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--rows", type=int, default=200_000, help="compressed readings to look ids up in")
    ap.add_argument("--ids", type=int, default=72_000, help="ids in each key table")
    ap.add_argument("--batch", type=int, default=500, help="ids per lookup / insert (ingest's batch)")
    ap.add_argument("--pg-bin", help="TimescaleDB-enabled PostgreSQL bin directory")
    args = ap.parse_args(argv)
    pg_bin = find_pg_bin(args.pg_bin)
    if not pg_bin:
        ap.error("no TimescaleDB binaries: build ../shared/timescaledb or pass --pg-bin")
    with cluster(pg_bin, preload=True) as pg:
        url = new_db(pg, "dedupe")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
            per_id, set_based, chunks = compressed_lookups(conn, args.rows, args.batch)
            keys = key_tables(conn, args.ids, args.batch)
    print(f"\nLooking {args.batch} ids (half stored) up in {args.rows:,} compressed readings"
          f" ({chunks} chunks, bloom filter on message_id):")
    print(f"| one by one (LATERAL … LIMIT 1) | {per_id:.2f} ms an id |")
    print(f"| set-based (NOT EXISTS anti-join) | {set_based:.0f} ms the batch |")
    print(f"\nKey tables, {args.ids:,} random ids:\n| key table | bytes per id (heap + index) |\n|---|---|")
    for name, b in keys:
        print(f"| {name} | {b:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
