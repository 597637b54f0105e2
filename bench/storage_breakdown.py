"""Where a stored reading's bytes go (bench/storage_bench.py prints these for its last layout).

- ``index_bytes``: bytes per reading of each index of ``readings`` on plain PostgreSQL;
- ``compressed_columns``: bytes per reading of each column of TimescaleDB's compressed chunks of
  ``readings`` (the compressed values, the per-batch metadata and the sparse indexes: bloom
  filters, min/max), as stored (``pg_column_size``, so after TOAST compression).
"""

from __future__ import annotations

from typing import Any

import psycopg

Conn = psycopg.Connection[Any]


def index_bytes(conn: Conn) -> list[str]:
    n = conn.execute("SELECT count(*) FROM readings").fetchone()
    rows = int(n[0]) if n else 0
    out = []
    for name, size in conn.execute(
            "SELECT indexrelname, pg_relation_size(indexrelid) FROM pg_stat_user_indexes"
            " WHERE relname = 'readings' ORDER BY indexrelname"):
        out.append(f"| index {name} | {size / max(rows, 1):.1f} |")
    got = conn.execute("SELECT pg_relation_size('readings')").fetchone()
    heap = int(got[0]) if got else 0
    out.append(f"| heap (rows, page headers, free space) | {heap / max(rows, 1):.1f} |")
    return out


def compressed_columns(conn: Conn) -> list[str]:
    """Per column of the compressed chunks, bytes per reading (the same for every chunk's table)."""
    chunks = [r[0] for r in conn.execute(
        "SELECT format('%I.%I', c.schema_name, c.table_name) FROM _timescaledb_catalog.chunk c"
        " JOIN _timescaledb_catalog.hypertable h ON h.id = c.hypertable_id"
        " JOIN _timescaledb_catalog.hypertable u ON u.compressed_hypertable_id = h.id"
        " WHERE u.table_name = 'readings'")]
    n = conn.execute("SELECT count(*) FROM readings").fetchone()
    rows = int(n[0]) if n else 0
    if not chunks or not rows:
        return []
    cols = [r[0] for r in conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0"
        " AND NOT attisdropped ORDER BY attnum", (chunks[0],))]
    total = dict.fromkeys(cols, 0)
    sums = ", ".join(f'coalesce(sum(pg_column_size("{c}")), 0)' for c in cols)
    for chunk in chunks:
        got = conn.execute(f"SELECT {sums} FROM {chunk}".encode()).fetchone()
        for c, v in zip(cols, got or (), strict=True):
            total[c] += int(v)
    shown = [(c, v / rows) for c, v in total.items() if v / rows >= 0.05]
    out = [f"| {c} | {b:.2f} |" for c, b in sorted(shown, key=lambda x: -x[1])]
    out.append(f"| (all columns) | {sum(total.values()) / rows:.2f} |")
    return out
