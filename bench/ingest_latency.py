"""Publish → commit latency of ``rpmflow-ingest run`` at a fixed offered rate (no throughput runs).

The latency measure of bench/ingest_bench.py on its own: the embedded stack, one ingest process
with its defaults, four publisher processes offering ``--rate`` msg/s in total, a poller noting
when each reading becomes visible (committed). Use it to compare a change before/after, back to
back with the same arguments; ingest_bench.py runs it at half of rpmflow's measured throughput.

    .venv/bin/python bench/ingest_latency.py --rate 500 [--window 8] [--runs 3] [--env K=V ...]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import ingest_mqtt as mq  # noqa: E402
from bench.ingest_bench import GATEWAYS, LATENCY_PUBLISHERS, fresh_db  # noqa: E402
from bench.ingest_measure import Plan  # noqa: E402
from simulators.stack import running_stack  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rate", type=float, required=True, help="msg/s offered in total")
    p.add_argument("--window", type=float, default=8.0, help="seconds measured after the warm-up")
    p.add_argument("--warmup", type=float, default=1.5)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--env", action="append", default=[], metavar="K=V",
                   help="extra environment for rpmflow-ingest, e.g. RPMFLOW_INGEST_BATCH_MS=50")
    args = p.parse_args(argv)
    env = dict(kv.split("=", 1) for kv in args.env)
    plan = Plan(warmup=args.warmup, window=args.window)
    with running_stack() as stack:
        fleets = mq.fleets(LATENCY_PUBLISHERS, GATEWAYS, 0)
        creds = stack.mosquitto.add_gateways([g for c in fleets for g in c.gateway_ids()])
        for run in range(args.runs):
            group = mq.new_group()
            owner, url = fresh_db(stack, f"lat{run}")
            configs = mq.fleets(LATENCY_PUBLISHERS, 2, run)
            mq.enrol(owner, configs)
            ingest = mq.Ingest(stack.mosquitto, url, f"bench-lat-{group}", group, **env)
            lags, achieved = mq.latency(ingest, url, stack.mosquitto, creds, configs, args.rate, plan)
            p50, p95, p99 = (mq.pct(lags, q) for q in (0.5, 0.95, 0.99))
            print(f"run {run}: offered {args.rate:,.0f} msg/s, achieved {achieved:,.0f}; n={len(lags):,}; "
                  f"p50 {p50:,.0f} / p95 {p95:,.0f} / p99 {p99:,.0f} ms; load {os.getloadavg()[0]:.1f}",
                  flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
