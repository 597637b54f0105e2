"""``rpmflow-sim chaos``: parse the knobs, run the scenario in a state directory, print the report.

Apart from chaos.py so the orchestration (Chaos) reads without the command line around it.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import fields, replace
from pathlib import Path

from simulators import chaos
from simulators.chaos import Chaos
from simulators.chaos_config import ChaosConfig
from simulators.chaos_report import ChaosReport
from simulators.chaos_schedule import FAULT_KINDS


@contextlib.contextmanager
def _state_dir(keep: Path | None) -> Iterator[Path]:
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep
        return
    path = Path(tempfile.mkdtemp(prefix="rpmflow-chaos-"))
    path.chmod(0o711)  # the servers may run as another account (root → postgres): let them traverse
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def run_chaos(config: ChaosConfig, state_dir: Path | None = None) -> ChaosReport:
    """Run the whole chaos scenario and return its report (servers and processes are cleaned up)."""
    with _state_dir(state_dir) as state:
        run = Chaos(config, state)
        try:
            run.start()
            run.fault_phase()
            run.settle()
            run.account()
        finally:
            run.stop()
        return run.report


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rpmflow-sim chaos", description=(chaos.__doc__ or "").split("\n\n")[0])
    p.add_argument("--gateways", type=int, help="simulated gateways, 4 patients each (default 50)")
    p.add_argument("--patients-per-gateway", type=int, help="patients per gateway (default 4)")
    p.add_argument("--fault-seconds", type=float, help="length of the fault phase (default 150)")
    p.add_argument("--mean-fault-gap", type=float, dest="mean_fault_gap_s", help="mean s between faults")
    p.add_argument("--interval", type=float, dest="interval_s", help="s between simulated readings (15)")
    p.add_argument("--seed", type=int, help="seed of the fault schedule and the simulators (default 1)")
    p.add_argument("--settle-timeout", type=float, dest="settle_timeout_s", help="max s to settle (180)")
    p.add_argument("--ingest-processes", type=int, help="ingest processes in the shared group (default 2)")
    p.add_argument("--shared", dest="shared", action="store_const", const=True,
                   help="ingest processes in one $share/ group (default: plain subscriptions, each "
                        "process gets every message)")
    p.add_argument("--kinds", help=f"comma-separated fault kinds (default all: {', '.join(FAULT_KINDS)})")
    p.add_argument("--vitals-every", type=int, dest="vitals_every",
                   help="every Nth patient also gets a scale and a pulse oximeter (default 2; 0: none)")
    p.add_argument("--bluez-gateways", type=int, dest="bluez_gateways",
                   help="the first N gateways use the bleak backend against a BlueZ double (default 0)")
    p.add_argument("--state-dir", type=Path, help="keep logs and outboxes here (default: a temp dir)")
    return p


def chaos_main(argv: list[str] | None = None) -> int:
    """``rpmflow-sim chaos``: run, print the table, exit 0 only when every check passed."""
    args = build_parser().parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = ChaosConfig.from_env(os.environ)
    overrides = {f.name: getattr(args, f.name) for f in fields(ChaosConfig)
                 if getattr(args, f.name, None) is not None}
    config = replace(config, **overrides)
    report = run_chaos(config, args.state_dir)
    print(report.table(), flush=True)
    if report.lost_ids:
        print("first lost message ids:", ", ".join(report.lost_ids), flush=True)
    if report.audit_problems:
        print("audit problems:", "; ".join(report.audit_problems), flush=True)
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(chaos_main())
