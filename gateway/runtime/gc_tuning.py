"""One garbage-collector setting for every long-running server process (ingest, its workers, the
dashboard).

A request or a message makes many short-lived containers; CPython's default thresholds then run
a full (generation 2) collection every few hundred requests, and each one walks every object the
process holds, imported modules included: on the dashboard that was a 100-150 ms pause inside
about one request in fifty, the whole of its p99. Reference counting still frees everything
acyclic at once; freezing moves what exists at start-up (modules, settings, templates) out of the
scans, and higher thresholds make the remaining passes rare.
"""

from __future__ import annotations

import gc

THRESHOLDS = (50_000, 50, 100)


def tune_gc() -> None:
    """Call once, after the imports and set-up, before serving."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
