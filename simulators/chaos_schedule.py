"""The chaos run's seeded fault schedule: what to hurt, when, and how it comes back.

Why apart from the orchestration: the schedule is the part a reader tunes (kinds, weights, gaps),
and every random draw of the run is made here, in one fixed order, so a seed replays the same run.
"""

from __future__ import annotations

import heapq
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from simulators.embedded_mosquitto import EmbeddedMosquitto
from simulators.embedded_postgres import EmbeddedPostgres

if TYPE_CHECKING:
    from simulators.chaos import Chaos

FAULT_KINDS = (
    "gateway_kill", "gateway_cut", "ingest_kill", "triage_kill",
    "broker_restart", "broker_kill", "postgres_restart", "postgres_kill",
)
_WEIGHTS = {"gateway_kill": 5, "gateway_cut": 3, "ingest_kill": 3, "triage_kill": 2,
            "broker_restart": 1, "broker_kill": 1, "postgres_restart": 1, "postgres_kill": 1}

Event = tuple[float, int, str, Callable[[], None]]


def chosen_kinds(spec: str) -> list[str]:
    """The fault kinds of ``--kinds`` (empty: all); an unknown name raises ``ValueError``."""
    chosen = [k.strip() for k in spec.split(",") if k.strip()]
    unknown = set(chosen) - set(FAULT_KINDS)
    if unknown:
        raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {', '.join(FAULT_KINDS)}")
    return chosen or list(_WEIGHTS)


class FaultSchedule:
    """A heap of timed actions (faults and their repairs) over the run's processes and servers."""

    def __init__(self, run: Chaos) -> None:
        self.run = run
        self.rng = random.Random(run.config.seed)
        self.events: list[Event] = []
        self._seq = 0

    def at(self, when: float, label: str, action: Callable[[], None]) -> None:
        self._seq += 1
        heapq.heappush(self.events, (when, self._seq, label, action))

    def pop_due(self, now: float) -> tuple[str, Callable[[], None]] | None:
        """The next action whose time has come, or None."""
        if self.events and self.events[0][0] <= now:
            _, _, label, action = heapq.heappop(self.events)
            return label, action
        return None

    def plan(self, t0: float) -> None:
        """Every chosen kind once, early, in a random order; then weighted draws until the end."""
        cfg = self.run.config
        kinds = chosen_kinds(cfg.kinds)
        weights = [_WEIGHTS[k] for k in kinds]
        first = self.rng.sample(kinds, len(kinds))
        t = t0 + self.rng.uniform(1.0, 2.0)
        while t < t0 + cfg.fault_seconds:
            kind = first.pop(0) if first else self.rng.choices(kinds, weights)[0]
            self.at(t, kind, self._fault(kind))
            t += self.rng.uniform(0.5, 1.5) * cfg.mean_fault_gap_s

    def _fault(self, kind: str) -> Callable[[], None]:
        rng = self.rng
        pause = rng.uniform(0.0, 3.0)
        gw = rng.choice(self.run.gateway_ids)
        ingest = f"ingest-{rng.randrange(self.run.config.ingest_processes)}"
        cut_s = rng.uniform(4.0, 12.0)
        attempts = 0

        def fire() -> None:
            nonlocal attempts
            now = time.monotonic()
            if kind == "gateway_kill":
                done = self._kill_and_restart(gw, pause, now)
            elif kind == "gateway_cut":
                done = self._cut(gw, cut_s, now)
            elif kind == "ingest_kill":
                done = self._kill_and_restart(ingest, pause, now)
            elif kind == "triage_kill":
                done = self._kill_and_restart("triage", pause, now)
            elif kind.startswith("broker_"):
                done = self._server_fault(self.run.broker, kind, pause, now)
            else:
                done = self._server_fault(self.run.pg, kind, pause, now)
            attempts += 1
            if not done and attempts < 10:  # the target is down right now: try again shortly
                self.at(now + 1.0, kind, fire)

        return fire

    def _kill_and_restart(self, name: str, pause: float, now: float) -> bool:
        p = self.run.procs[name]
        if not p.wanted or not p.alive():
            return False  # already down (a cut, or restarting)
        p.kill9()
        p.wanted = False
        kind = "gateway" if name.startswith("chaos-gw") else name.split("-")[0]
        self.run.report.faults[f"{kind}_kill"] += 1
        self.at(now + pause, f"restart {name}", p.start)
        return True

    def _cut(self, gw: str, cut_s: float, now: float) -> bool:
        run = self.run
        p = run.procs[gw]
        if not p.wanted or not p.alive() or p.env["RPMFLOW_MQTT_URL"] != run.good_url(gw):
            return False
        n = run.gateway_ids.index(gw)
        p.kill9()
        p.env = run.gateway_env(n, gw, url=f"mqtt://{gw}:x@127.0.0.1:{run.dead_port}")
        p.start()
        run.report.faults["gateway_cut"] += 1

        def restore() -> None:
            p.kill9()
            p.env = run.gateway_env(n, gw)
            p.start()

        self.at(now + cut_s, f"reconnect {gw}", restore)
        return True

    def _server_fault(self, server: EmbeddedPostgres | EmbeddedMosquitto | None, kind: str, pause: float,
                      now: float) -> bool:
        assert server is not None
        if any(label.startswith("start ") for _, _, label, _ in self.events):
            return False  # one server outage at a time keeps "restored" well defined
        if kind.endswith("_kill"):
            server.kill()
        else:
            server.stop()
        self.run.report.faults[kind] += 1
        self.at(now + pause, f"start {kind.split('_')[0]}", server.start)
        return True
