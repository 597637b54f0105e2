"""The worker side of ingest alone: the writer against raw COPY, and where a worker's time goes.

The database pair of bench/ingest_bench.py (``raw COPY readings`` and ``writer`` in turn, a batch
each, into fresh migrated databases, batches of 500, the same rows) without the MQTT measures, so
a change to the writer can be compared back to back in a minute; ``--profile`` also runs cProfile
over a worker's whole path (validation, grading, writing) on a batch of realistic fleet messages.

    .venv/bin/python bench/writer_bench.py --runs 3 --window 5
    .venv/bin/python bench/writer_bench.py --runs 0 --profile 10000
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import ingest_mqtt as mq  # noqa: E402
from bench.ingest_measure import (  # noqa: E402
    BATCH,
    SAMPLE_FLEET,
    Fresh,
    Plan,
    Rate,
    accepted_items,
    fleet_messages,
    interleaved,
    raw_copy_readings,
    writer_alone,
)
from ingest.commit import items_of  # noqa: E402
from ingest.migrate import migrate  # noqa: E402
from ingest.writer import BatchWriter  # noqa: E402
from simulators.embedded_postgres import EmbeddedPostgres  # noqa: E402


def profile_worker(pg: EmbeddedPostgres, n: int, top: int) -> None:
    """cProfile of ``items_of`` + ``BatchWriter.write`` over ``n`` messages in batches of 500."""
    urls = pg.create_database("wb_profile")
    migrate(urls.owner)
    mq.enrol(urls.owner, [SAMPLE_FLEET])
    raw = fleet_messages(n)
    writer = BatchWriter(urls.ingest)
    writer.write([])  # connect outside the profile
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    validate = write = 0.0
    prof.enable()
    for i in range(0, n, BATCH):
        a = time.perf_counter()
        items = items_of(raw[i:i + BATCH], datetime.now(UTC))
        b = time.perf_counter()
        writer.write(items)
        validate, write = validate + b - a, write + time.perf_counter() - b
    prof.disable()
    total = time.perf_counter() - t0
    writer.close()
    print(f"worker on {n} fleet messages: {total:.2f} s under cProfile ({n / total:,.0f} msg/s);"
          f" validation {validate:.2f} s ({validate / total:.0%}),"
          f" writing {write:.2f} s ({write / total:.0%})")
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(top)
    print(out.getvalue())


def paired(pg: EmbeddedPostgres, run: int, fresh: Fresh,
           plan: Plan) -> tuple[dict[str, Rate], dict[str, float]]:
    """Raw COPY and the writer in turn, a batch each (ingest_measure.interleaved), each into a fresh
    migrated database; their rates and CPU microseconds a row (this process inside the steps, plus
    the server process each uses: waiting for a core costs no CPU, so this is steadier than rates)."""
    copy, writer = pg.create_database(f"wb{run}_copy"), pg.create_database(f"wb{run}_writer")
    migrate(copy.owner)
    migrate(writer.owner)
    mq.enrol(writer.owner, [SAMPLE_FLEET])
    cpu: dict[str, float] = {}
    with raw_copy_readings(copy.owner, fresh) as raw, writer_alone(writer.ingest, fresh) as wrote:
        rates = interleaved(plan, {"raw": raw, "writer": wrote}, cpu)
    return rates, cpu


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--window", type=float, default=5.0, help="timed seconds per measure (after warm-up)")
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--profile", type=int, default=0, metavar="N", help="profile a worker on N messages")
    p.add_argument("--top", type=int, default=25)
    args = p.parse_args(argv)
    plan = Plan(warmup=args.warmup, window=args.window)
    pg = EmbeddedPostgres.create()
    try:
        pg.start()
        if args.profile:
            profile_worker(pg, args.profile, args.top)
        if args.runs:
            fresh = Fresh(accepted_items(5_000))
        ratios: list[float] = []
        cpu_ratios: list[float] = []
        for run in range(args.runs):
            rates, cpu = paired(pg, run, fresh, plan)
            raw, wrote = rates["raw"], rates["writer"]
            ratios.append(wrote.per_s / raw.per_s)
            cpu_ratios.append(cpu["raw"] / cpu["writer"])
            print(f"run {run + 1}: raw COPY readings {raw.per_s:,.0f} rows/s ({cpu['raw']:.0f} µs CPU a row),"
                  f" writer {wrote.per_s:,.0f} rows/s ({cpu['writer']:.0f} µs CPU a row); writer / raw COPY"
                  f" {ratios[-1]:.2f} by rate, {cpu_ratios[-1]:.2f} by CPU", flush=True)
        if ratios:
            print(f"writer / raw COPY readings: median {statistics.median(ratios):.2f}"
                  f" ({min(ratios):.2f} – {max(ratios):.2f}) by rate; by CPU a row (client + PostgreSQL)"
                  f" {statistics.median(cpu_ratios):.2f} ({min(cpu_ratios):.2f} – {max(cpu_ratios):.2f})")
    finally:
        pg.destroy()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
