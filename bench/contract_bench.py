"""CPU per message of ingest's pure side (contract + plausibility), load-independent.

Builds the fleet's message mix (blood pressure, glucose, and with ``--vitals`` scales and
oximeters, all valid, plus ``--bad`` share of mutated ones that dead-letter), then runs
``ingest.commit.items_of`` over them batch by batch, after the workers' GC tuning, and reports
``time.process_time`` per message (best of ``--repeat``), or a cProfile table with ``--profile N``.

    .venv/bin/python bench/contract_bench.py [--messages 20000] [--vitals 0.2] [--bad 0.02] [--profile 25]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import logging
import pstats
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway.runtime.gc_tuning import tune_gc  # noqa: E402
from ingest.commit import Raw, items_of  # noqa: E402
from simulators.fleet import FleetConfig, make_devices  # noqa: E402
from simulators.fleet_messages import build_reading  # noqa: E402


def _mutated(payload: bytes, rng: random.Random) -> bytes:
    """A valid message with one field broken (what a buggy gateway sends)."""
    obj = json.loads(payload)
    key = rng.choice(sorted(obj))
    obj[key] = rng.choice([None, 7, "x", [], {"a": 1}])
    return json.dumps(obj).encode()


def messages(n: int, vitals: float, bad: float, seed: int = 7) -> list[Raw]:
    config = FleetConfig(gateways=20, devices_per_gateway=10, seed=seed, vitals_share=vitals)
    devices = make_devices(config, config.gateway_ids())
    rng = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    out: list[Raw] = []
    for i in range(n):
        gw, dev = devices[i % len(devices)]
        at = start + timedelta(seconds=i)
        _, payload = build_reading(gw, dev, at, at + timedelta(seconds=2, microseconds=123_456))
        if rng.random() < bad:
            payload = _mutated(payload, rng)
        out.append((f"rpm/v1/{gw}/readings", payload))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=20_000)
    ap.add_argument("--vitals", type=float, default=0.2, help="share of scales and oximeters")
    ap.add_argument("--bad", type=float, default=0.02, help="share of mutated (mostly refused) messages")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--batch", type=int, default=500, help="messages per items_of call (a worker's batch)")
    ap.add_argument("--profile", type=int, default=0, metavar="N", help="print the top N of cProfile")
    args = ap.parse_args()
    logging.getLogger().addHandler(logging.NullHandler())  # records made, as in ingest; not printed
    raw = messages(args.messages, args.vitals, args.bad)
    now = datetime(2026, 6, 1, tzinfo=UTC)
    batches = [raw[i:i + args.batch] for i in range(0, len(raw), args.batch)]
    tune_gc()  # as a worker process does before its first batch

    def run() -> None:
        for batch in batches:
            items_of(batch, now)

    if args.profile:
        prof = cProfile.Profile()
        prof.runcall(run)
        pstats.Stats(prof).sort_stats("tottime").print_stats(args.profile)
        return 0
    best = float("inf")
    for _ in range(args.repeat):
        t0 = time.process_time()
        run()
        best = min(best, time.process_time() - t0)
    print(f"{len(raw)} messages (vitals {args.vitals:.0%}, mutated {args.bad:.0%}): "
          f"{best / len(raw) * 1e6:.1f} µs CPU per message (best of {args.repeat})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
