"""The reconnect storm: every gateway of a fleet comes back at once with a day of readings.

After a broker outage each gateway reconnects and drains its outbox (a day of backlog: 4
readings per patient on average). The fleet runs as ``--processes`` publisher processes of
virtual gateways in confirm mode (simulators/fleet.py: a reading is done only when ingest's
end-to-end ack names it, as on a real gateway), all started together against one ingest process
with its default settings. Printed: connect time, time until every reading is committed (the
drain time) and until every gateway has its acks, and the drain rate.

    .venv/bin/python bench/reconnect_storm.py [--gateways 2000] [--per-day 4] [--processes 4]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import signal
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import ingest_mqtt as mq  # noqa: E402
from bench.ingest_bench import fresh_db  # noqa: E402
from simulators.fleet import FleetConfig, FleetReport, run_fleet  # noqa: E402
from simulators.stack import running_stack  # noqa: E402


def _part(url: str, creds: dict[str, str], config: FleetConfig) -> tuple[FleetReport, float, float]:
    """One publisher process: (report, wall time its gateways started connecting, all connected)."""
    started = time.time()
    report = run_fleet(url, creds, config, connect_timeout=300, ack_timeout=600)
    return report, started, time.time() - report.elapsed_s


def _exit_cleanly(signum: int, frame: object) -> None:
    """SIGTERM (e.g. ``timeout``) unwinds like Ctrl-C, so the embedded stack is torn down."""
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--gateways", type=int, default=2000, help="gateways (one patient's devices each)")
    p.add_argument("--devices", type=int, default=1, help="devices per gateway")
    p.add_argument("--per-day", type=int, default=4, help="readings per device per day (the backlog)")
    p.add_argument("--processes", type=int, default=4, help="publisher processes")
    args = p.parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_cleanly)
    per = args.gateways // args.processes
    configs = [FleetConfig(gateways=per, devices_per_gateway=args.devices, rate=0, count=None, window=50,
                           backfill_days=1, per_day=args.per_day, prefix=f"storm{i}", seed=i, keep_ids=False,
                           confirm=True, confirm_timeout_s=60.0) for i in range(args.processes)]
    total = per * args.processes * args.devices * args.per_day
    with running_stack() as stack:
        creds = stack.mosquitto.add_gateways([g for c in configs for g in c.gateway_ids()])
        group = mq.new_group()
        owner, url = fresh_db(stack, "storm")
        mq.enrol(owner, configs)  # ingest refuses readings of devices not enrolled on their gateway
        ingest = mq.Ingest(stack.mosquitto, url, f"storm-{group}", group)
        ingest.start()
        ingest.wait_subscribed()
        conn, count = mq.max_reading_id(url)
        broker = f"mqtt://127.0.0.1:{stack.mosquitto.port}"
        try:
            with ProcessPoolExecutor(len(configs), mp_context=mp.get_context("spawn")) as pool:
                futures = [pool.submit(_part, broker, {g: creds[g] for g in c.gateway_ids()}, c)
                           for c in configs]
                deadline = time.monotonic() + 900
                committed = None
                while committed is None and time.monotonic() < deadline:
                    if count() >= total:
                        committed = time.time()
                    time.sleep(0.05)
                results = [f.result() for f in futures]
            confirmed_wall = time.time()
        finally:
            ingest.stop()
            conn.close()
    reports = [r for r, _, _ in results]
    start = min(s for _, s, _ in results)  # the first gateway starts connecting: the storm begins
    connect = max(c for _, _, c in results) - start
    drain = (committed - start) if committed is not None else float("nan")
    confirmed = sum(r.confirmed for r in reports)
    print(f"gateways {per * args.processes:,} in {args.processes} processes, {total:,} readings "
          f"(a day at {args.per_day}/device, {args.devices} device(s) per gateway)")
    print(f"  all gateways connected after      {connect:6.1f} s")
    print(f"  every reading committed after     {drain:6.1f} s (drain time; {total / drain:,.0f} readings/s)")
    print(f"  every gateway confirmed after     {confirmed_wall - start:6.1f} s "
          f"({confirmed:,} confirmed, {sum(r.resent for r in reports):,} re-sent)")
    return 0 if confirmed == total and committed is not None else 1


if __name__ == "__main__":
    raise SystemExit(main())
