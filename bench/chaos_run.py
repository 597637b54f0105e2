"""Chaos run of the whole pipeline (50 gateways / 200 patients by default); prints one table.

    .venv/bin/python bench/chaos_run.py [--gateways 50] [--fault-seconds 150] [--seed 1] [--shared]

A thin wrapper over ``simulators.chaos`` (``rpmflow-sim chaos``): every flag is listed by
``--help``. Exit status 0 only when nothing was lost or doubled and every check passed.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from simulators.chaos_cli import chaos_main  # after the path set-up above

if __name__ == "__main__":
    raise SystemExit(chaos_main(sys.argv[1:]))
