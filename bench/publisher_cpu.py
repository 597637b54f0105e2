"""CPU per message of the bench's publishers: ``run_fleet`` (paho) against ``mqtt_blast`` (lean).

Each publisher runs alone in a fresh process against the embedded broker (nothing subscribed),
offering ``--rate`` msg/s for ``--seconds`` from two gateways, as one of the latency leg's
publishers does; its user + system CPU (``getrusage``, all its threads) over the run, per message.

    flock /tmp/rpmflow-bench.lock .venv/bin/python bench/publisher_cpu.py --rate 3000 --seconds 10
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.mqtt_blast import blast  # noqa: E402
from simulators.embedded_mosquitto import EmbeddedMosquitto  # noqa: E402
from simulators.fleet import FleetConfig, run_fleet  # noqa: E402


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _one(kind: str, url: str, creds: dict[str, str], config: FleetConfig) -> tuple[int, float, float]:
    """(acked, elapsed s, CPU s) of one publisher run in this (fresh) process."""
    before = _cpu()
    if kind == "blast":
        report = blast(url, creds, config)
        acked, elapsed = report.acked, report.elapsed_s
    else:
        fleet = run_fleet(url, creds, config)
        acked, elapsed = fleet.acked, fleet.elapsed_s
    return acked, elapsed, _cpu() - before


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rate", type=float, default=3000.0)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--runs", type=int, default=2)
    args = p.parse_args(argv)
    broker = EmbeddedMosquitto.create()
    broker.start()
    try:
        config = FleetConfig(gateways=2, devices_per_gateway=25, rate=args.rate, window=500,
                             count=int(args.rate * args.seconds), prefix="cpu", seed=1, keep_ids=False)
        creds = broker.add_gateways(config.gateway_ids())
        url = f"mqtt://127.0.0.1:{broker.port}"
        for run in range(args.runs):
            for kind in ("run_fleet", "blast"):
                with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as pool:
                    acked, elapsed, cpu = pool.submit(_one, kind, url, creds, config).result()
                assert acked == config.count, (kind, acked)
                print(f"run {run} {kind:>9}: {acked:,} msgs in {elapsed:.2f} s ({acked / elapsed:,.0f}/s); "
                      f"CPU {cpu:.2f} s = {cpu / acked * 1e6:.0f} µs/msg, {cpu / elapsed:.2f} core; "
                      f"load {os.getloadavg()[0]:.1f}", flush=True)
    finally:
        broker.destroy()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
