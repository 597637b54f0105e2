"""The one GC setting of the server processes, checked in a fresh interpreter (it is process-wide)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from gateway.runtime.gc_tuning import THRESHOLDS


def test_tune_gc_freezes_start_up_objects_and_raises_thresholds() -> None:
    code = ("import gc; from gateway.runtime.gc_tuning import tune_gc; before = gc.get_freeze_count();"
            " tune_gc(); print(before, gc.get_freeze_count(), *gc.get_threshold())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    before, frozen, *thresholds = (int(v) for v in out.split())
    assert before == 0 and frozen > 1000
    assert tuple(thresholds) == THRESHOLDS


def test_the_servers_call_it_before_serving() -> None:
    """Ingest, its workers and the dashboard: the dashboard's p99 was one full collection."""
    root = Path(__file__).resolve().parents[3]
    for path in ("ingest/cli.py", "ingest/worker.py", "dashboards/cli.py"):
        assert "tune_gc()" in (root / path).read_text(), path
