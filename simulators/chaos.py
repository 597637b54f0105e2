"""Chaos run: the whole pipeline under seeded faults, then proof that nothing was lost or doubled.

The world is the embedded stack (PostgreSQL + Mosquitto with per-gateway ACLs) and every service
as the operator runs it: ``rpmflow-gateway run`` per gateway (simulated BLE devices, 4 patients,
a cuff and a meter each), two ``rpmflow-ingest run`` (plain persistent subscriptions by default,
one ``$share`` group with ``--shared``) and one ``rpmflow-triage run``. A seeded schedule then
kill -9s and restarts gateways, ingest processes and triage, restarts and kills Mosquitto and
PostgreSQL, and cuts gateways off the broker (a restart with an unreachable broker URL, later
restored). A small supervisor restarts any service
that exits on its own, as systemd would, and counts those exits: they are findings, not faults.

Ground truth does not come from the wire. Before a gateway first starts, its outbox file gets a
``chaos_produced`` table and an ``AFTER INSERT`` trigger on ``outbox``: every reading a gateway
durably commits is recorded in the same SQLite transaction, and survives the row's deletion on
PUBACK. At the end the gateways are restarted in drain mode (an allow-list no simulated device
matches: nothing new is collected, the outbox empties) and the run checks:

- every produced ``message_id`` is in ``readings`` exactly once (lost, duplicated, unexpected);
- every crisis reading triage must alert on is in a ``bp_crisis`` flag (triage collapses a
  reading taken < 30 s after another one of the same patient: those are reported, not required);
- no flag is duplicated (one open flag per episode, and no two flags with the same evidence);
- the audit chain (appended to by two writer threads throughout the faults) verifies.

``rpmflow-sim chaos --help`` lists the knobs (env ``RPMFLOW_SIM_CHAOS_*``).
"""

from __future__ import annotations

import argparse
import contextlib
import heapq
import logging
import os
import random
import shutil
import sqlite3
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from simulators.processes import ServiceProcess, console_script, run_audit_key, run_to_completion, service_env
from simulators.stack import EmbeddedMosquitto, EmbeddedPostgres, StackError, free_port

log = logging.getLogger(__name__)

PREFIX = "RPMFLOW_SIM_CHAOS_"
SCENARIOS = ("demo", "normal", "faults", "normal")  # gateway i runs SCENARIOS[i % 4]
FAULT_KINDS = (
    "gateway_kill", "gateway_cut", "ingest_kill", "triage_kill",
    "broker_restart", "broker_kill", "postgres_restart", "postgres_kill",
)
_WEIGHTS = {"gateway_kill": 5, "gateway_cut": 3, "ingest_kill": 3, "triage_kill": 2,
            "broker_restart": 1, "broker_kill": 1, "postgres_restart": 1, "postgres_kill": 1}
_PRODUCED_DDL = (
    "CREATE TABLE IF NOT EXISTS chaos_produced (message_id TEXT PRIMARY KEY, at TEXT NOT NULL);"
    "CREATE TRIGGER IF NOT EXISTS chaos_produced_log AFTER INSERT ON outbox"
    " WHEN NEW.state != 'rejected' AND NEW.message_id IS NOT NULL BEGIN"
    " INSERT OR IGNORE INTO chaos_produced VALUES (NEW.message_id, datetime('now')); END;"
)


@dataclass(frozen=True)
class ChaosConfig:
    """One chaos run; ``from_env`` reads ``RPMFLOW_SIM_CHAOS_<FIELD>`` and flags override."""

    gateways: int = 50
    patients_per_gateway: int = 4
    fault_seconds: float = 150.0
    mean_fault_gap_s: float = 2.0
    interval_s: float = 15.0  # a new simulated reading per device every N s
    seed: int = 1
    settle_timeout_s: float = 180.0
    ingest_processes: int = 2
    audit_writers: int = 2
    # Ingest through $share/<group>/ (the scaling mode). Off by default: Mosquitto 2.0 does not
    # restore shared subscriptions after a restart, which this run measures as lost readings.
    shared: bool = False
    kinds: str = ""  # comma-separated subset of FAULT_KINDS; empty: all of them

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> ChaosConfig:
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = environ.get(PREFIX + f.name.upper())
            if raw:
                kind = type(getattr(cls, f.name))
                try:
                    values[f.name] = (raw.lower() in ("1", "true", "yes")) if kind is bool else kind(raw)
                except ValueError:
                    raise ValueError(f"{PREFIX}{f.name.upper()}: not a {kind.__name__}: {raw!r}") from None
        return cls(**values)


@dataclass
class ChaosReport:
    """What the run measured; ``ok`` is the verdict, ``table()`` the printout."""

    gateways: int = 0
    patients: int = 0
    produced: int = 0
    stored: int = 0
    duplicated: int = 0
    lost: int = 0
    unexpected: int = 0
    left_in_outboxes: int = 0
    dead_letters: int = 0
    crisis_readings: int = 0
    crisis_flagged: int = 0
    crisis_collapsed: int = 0  # an identical repeat < 30 s after the previous reading: triage collapses
    crisis_missing: list[int] = field(default_factory=list)
    duplicate_flags: int = 0
    flags: int = 0
    audit_rows: int = 0
    audit_committed: int = 0
    audit_ok: bool = False
    audit_problems: list[str] = field(default_factory=list)
    faults: Counter[str] = field(default_factory=Counter)
    unplanned_exits: Counter[str] = field(default_factory=Counter)
    fault_seconds: float = 0.0
    settle_seconds: float = 0.0
    settled: bool = False
    lost_ids: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (self.settled and self.lost == 0 and self.duplicated == 0 and self.unexpected == 0
                and not self.crisis_missing and self.duplicate_flags == 0 and self.audit_ok
                and self.produced > 0)

    def table(self) -> str:
        rows: list[tuple[str, object]] = [
            ("gateways / patients", f"{self.gateways} / {self.patients}"),
            ("measurements produced (committed to gateway outboxes)", self.produced),
            ("measurements stored (distinct message_id)", self.stored),
            ("duplicated (rows beyond one per message_id)", self.duplicated),
            ("lost (produced, not stored)", self.lost),
            ("unexpected (stored, never produced)", self.unexpected),
            ("left in gateway outboxes", self.left_in_outboxes),
            ("dead letters", self.dead_letters),
            ("crisis readings / flagged / identical repeats < 30 s",
             f"{self.crisis_readings} / {self.crisis_flagged} / {self.crisis_collapsed}"),
            ("crisis readings without a flag", len(self.crisis_missing)),
            ("flags / duplicated flags", f"{self.flags} / {self.duplicate_flags}"),
            ("audit rows / committed by writers / chain verifies",
             f"{self.audit_rows} / {self.audit_committed} / {'yes' if self.audit_ok else 'NO'}"),
        ]
        rows += [(f"fault: {k}", self.faults[k]) for k in FAULT_KINDS]
        rows += [("faults injected, total", sum(self.faults[k] for k in FAULT_KINDS))]
        rows += [(f"unplanned exit: {k}", v) for k, v in sorted(self.unplanned_exits.items())]
        rows += [
            ("fault phase (s)", f"{self.fault_seconds:.1f}"),
            ("time to settle (s)", f"{self.settle_seconds:.1f}" + ("" if self.settled else " (NOT settled)")),
            ("verdict", "PASS" if self.ok else "FAIL"),
        ]
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


@dataclass
class Proc(ServiceProcess):
    """One supervised service process; ``wanted`` says whether the supervisor keeps it running."""

    wanted: bool = False
    restart_at: float | None = None

    def start(self) -> None:
        super().start()
        self.wanted = True
        self.restart_at = None

    def terminate(self, timeout: float = 20.0) -> None:
        self.wanted = False
        self.stop(timeout)


class AuditWriter(threading.Thread):
    """Appends audit rows through ``triage.clinical.audit.record`` while PostgreSQL is being hurt."""

    def __init__(self, conninfo: str, name: str, stop: threading.Event) -> None:
        super().__init__(name=name, daemon=True)
        self.conninfo = conninfo
        self.stop_event = stop
        self.committed = 0

    def run(self) -> None:
        from triage.clinical.audit import record  # orchestration only: simulators do not import triage at top

        run_audit_key()  # the same key as the services' rows (a keyed chain must stay keyed)

        conn: psycopg.Connection[Any] | None = None
        while not self.stop_event.is_set():
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(self.conninfo, autocommit=True, connect_timeout=2)
                record(conn, actor=self.name, action="chaos.append", patient_id=None,
                       detail={"n": self.committed})
                self.committed += 1
            except psycopg.Error:
                if conn is not None:
                    conn.close()
                conn = None
                self.stop_event.wait(0.5)
                continue
            self.stop_event.wait(0.2)
        if conn is not None:
            conn.close()


class Chaos:
    """Owns the stack, the processes, the fault schedule and the final accounting."""

    def __init__(self, config: ChaosConfig, state: Path) -> None:
        self.config = config
        self.state = state
        self.logs = state / "logs"
        self.rng = random.Random(config.seed)
        self.pg: EmbeddedPostgres | None = None
        self.broker: EmbeddedMosquitto | None = None
        self.procs: dict[str, Proc] = {}
        self.gateway_ids = [f"chaos-gw-{g:03d}" for g in range(1, config.gateways + 1)]
        self.report = ChaosReport(gateways=config.gateways,
                                  patients=config.gateways * config.patients_per_gateway)
        self.dead_port = free_port()  # nothing listens here: a gateway "cut off" from the broker
        self._events: list[tuple[float, int, str, Callable[[], None]]] = []
        self._seq = 0
        self._audit_stop = threading.Event()
        self._auditors: list[AuditWriter] = []
        self.epoch = datetime.now(UTC).replace(tzinfo=None, minute=0, second=0, microsecond=0).isoformat()

    # -- set-up ----------------------------------------------------------------------------------
    def start(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        self.pg = EmbeddedPostgres.create(self.state)
        self.broker = EmbeddedMosquitto.create(self.state)
        for gw in self.gateway_ids:
            self.broker.add_gateway(gw)
        self.pg.start()
        self.broker.start()
        run_to_completion([console_script("rpmflow-ingest"), "migrate"], self._env("owner"))
        self._seed_people()
        for i in range(self.config.ingest_processes):
            name = f"ingest-{i}"
            env = dict(self._env("ingest"), RPMFLOW_MQTT_URL=self.broker.ingest_url,
                       RPMFLOW_INGEST_SHARED=str(self.config.shared).lower(), RPMFLOW_INGEST_GROUP="chaos",
                       RPMFLOW_INGEST_CLIENT_ID=f"chaos-ingest-{i}",
                       RPMFLOW_INGEST_BATCH_MS="100")
            self.procs[name] = Proc.run_command(name, "rpmflow-ingest", env, self.logs)
        env = dict(self._env("triage"), RPMFLOW_TRIAGE_INTERVAL_S="1")
        self.procs["triage"] = Proc.run_command("triage", "rpmflow-triage", env, self.logs)
        for n, gw in enumerate(self.gateway_ids):
            self._prepare_outbox(self._outbox(gw))
            self.procs[gw] = Proc.run_command(gw, "rpmflow-gateway", self._gateway_env(n, gw), self.logs)
        # Ingest first, and only then the gateways: on a fresh broker nothing holds the readings
        # for a subscriber that has not subscribed yet (an operator starts ingest first too).
        for p in self.procs.values():
            if not p.name.startswith("chaos-gw"):
                p.start()
        for i in range(self.config.ingest_processes):
            self._wait_log(self.procs[f"ingest-{i}"], "subscribed to", 60)
        for gw in self.gateway_ids:
            self.procs[gw].start()
        for i in range(self.config.audit_writers):
            w = AuditWriter(self.pg.urls().triage, f"chaos-audit-{i}", self._audit_stop)
            w.start()
            self._auditors.append(w)

    @staticmethod
    def _wait_log(p: Proc, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while text not in p.log_path.read_text(errors="replace"):
            if time.monotonic() > deadline or not p.alive():
                raise StackError(f"{p.name} did not log {text!r} within {timeout:.0f}s; see {p.log_path}")
            time.sleep(0.1)

    def _env(self, role: str = "") -> dict[str, str]:
        """A process's environment; ``role`` (owner, ingest, triage) picks its database login, and
        processes without one (gateways) get no database URL at all."""
        assert self.pg is not None
        return service_env(getattr(self.pg.urls(), role) if role else None)

    def _outbox(self, gw: str) -> Path:
        return self.state / "outboxes" / f"{gw}.sqlite3"

    def _devices(self, n: int) -> list[tuple[str, str, str]]:
        """(sim kind, serial, wire kind) of gateway ``n``'s devices: a cuff and a meter per patient."""
        out = []
        for p in range(self.config.patients_per_gateway):
            out.append(("bp", f"CH-BP-{n + 1:03d}-{p}", "blood_pressure"))
            out.append(("glucose", f"CH-GL-{n + 1:03d}-{p}", "glucose"))
        return out

    def _gateway_env(self, n: int, gw: str, *, url: str | None = None, drain: bool = False) -> dict[str, str]:
        assert self.broker is not None
        env = dict(
            self._env(),
            RPMFLOW_GATEWAY_ID=gw,
            RPMFLOW_MQTT_URL=url or self.broker.url_for(gw),
            RPMFLOW_GATEWAY_OUTBOX=str(self._outbox(gw)),
            RPMFLOW_GATEWAY_BACKEND="sim",
            RPMFLOW_GATEWAY_SIM_SCENARIO=SCENARIOS[n % len(SCENARIOS)],
            RPMFLOW_GATEWAY_SIM_SEED=str(self.config.seed * 1000 + n),
            RPMFLOW_GATEWAY_SIM_INTERVAL_S=str(self.config.interval_s),
            RPMFLOW_GATEWAY_SIM_EPOCH=self.epoch,
            RPMFLOW_GATEWAY_SIM_DEVICES=",".join(f"{k}:{s}" for k, s, _ in self._devices(n)),
            RPMFLOW_GATEWAY_SCAN_INTERVAL_S="2",
            RPMFLOW_GATEWAY_SESSION_IDLE_S="2",
            RPMFLOW_GATEWAY_STATUS_INTERVAL_S="10",
        )
        if drain:  # an allow-list no simulated device matches: publish what is queued, collect nothing
            env["RPMFLOW_GATEWAY_DEVICES"] = "chaos-drain-only"
        return env

    @staticmethod
    def _prepare_outbox(path: Path) -> None:
        """Create the gateway's outbox schema, then the ground-truth trigger beside it."""
        from gateway.outbox import Outbox  # orchestration only

        Outbox(path, 1).close()
        with contextlib.closing(sqlite3.connect(path)) as db:
            db.executescript(_PRODUCED_DDL)

    def _seed_people(self) -> None:
        """One patient per (gateway, slot), each with a cuff and a meter assigned since long ago."""
        assert self.pg is not None
        since = datetime(2000, 1, 1, tzinfo=UTC)
        with psycopg.connect(self.pg.url) as conn, conn.transaction(), conn.cursor() as cur:
            for n, gw in enumerate(self.gateway_ids):
                devices = self._devices(n)
                for p in range(self.config.patients_per_gateway):
                    row = cur.execute(
                        "INSERT INTO patients (mrn, display_name, state, timezone, birth_year)"
                        " VALUES (%s, %s, 'NY', 'America/New_York', %s) RETURNING patient_id",
                        (f"CHAOS-{n + 1:03d}-{p}", f"Chaos patient {n + 1}-{p}", 1940 + p),
                    ).fetchone()
                    assert row is not None
                    for _sim, serial, kind in devices[2 * p:2 * p + 2]:
                        cur.execute(
                            "INSERT INTO devices (device_id, kind, manufacturer, model, serial,"
                            " last_gateway_id) VALUES (%s, %s, 'rpmflow-sim', 'chaos', %s, %s)",
                            (serial, kind, serial, gw))
                        cur.execute(
                            "INSERT INTO device_assignments (device_id, patient_id, valid_from, assigned_by)"
                            " VALUES (%s, %s, %s, 'chaos')", (serial, row[0], since))

    # -- the fault schedule ------------------------------------------------------------------------
    def _at(self, when: float, label: str, action: Callable[[], None]) -> None:
        self._seq += 1
        heapq.heappush(self._events, (when, self._seq, label, action))

    def _schedule(self, t0: float) -> None:
        chosen = [k.strip() for k in self.config.kinds.split(",") if k.strip()]
        unknown = set(chosen) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {', '.join(FAULT_KINDS)}")
        kinds = chosen or list(_WEIGHTS)
        weights = [_WEIGHTS[k] for k in kinds]
        first = self.rng.sample(kinds, len(kinds))  # every kind once, early; then by weight
        t = t0 + self.rng.uniform(1.0, 2.0)
        while t < t0 + self.config.fault_seconds:
            kind = first.pop(0) if first else self.rng.choices(kinds, weights)[0]
            self._at(t, kind, self._fault(kind))
            t += self.rng.uniform(0.5, 1.5) * self.config.mean_fault_gap_s

    def _fault(self, kind: str) -> Callable[[], None]:
        rng = self.rng
        pause = rng.uniform(0.0, 3.0)
        gw = rng.choice(self.gateway_ids)
        ingest = f"ingest-{rng.randrange(self.config.ingest_processes)}"
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
                done = self._server_fault(self.broker, kind, pause, now)
            else:
                done = self._server_fault(self.pg, kind, pause, now)
            attempts += 1
            if not done and attempts < 10:  # the target is down right now: try again shortly
                self._at(now + 1.0, kind, fire)

        return fire

    def _kill_and_restart(self, name: str, pause: float, now: float) -> bool:
        p = self.procs[name]
        if not p.wanted or not p.alive():
            return False  # already down (a cut, or restarting)
        p.kill9()
        p.wanted = False
        kind = "gateway" if name.startswith("chaos-gw") else name.split("-")[0]
        self.report.faults[f"{kind}_kill"] += 1
        self._at(now + pause, f"restart {name}", p.start)
        return True

    def _cut(self, gw: str, cut_s: float, now: float) -> bool:
        p = self.procs[gw]
        if not p.wanted or not p.alive() or p.env["RPMFLOW_MQTT_URL"] != self._good_url(gw):
            return False
        n = self.gateway_ids.index(gw)
        p.kill9()
        p.env = self._gateway_env(n, gw, url=f"mqtt://{gw}:x@127.0.0.1:{self.dead_port}")
        p.start()
        self.report.faults["gateway_cut"] += 1

        def restore() -> None:
            p.kill9()
            p.env = self._gateway_env(n, gw)
            p.start()

        self._at(now + cut_s, f"reconnect {gw}", restore)
        return True

    def _good_url(self, gw: str) -> str:
        assert self.broker is not None
        return self.broker.url_for(gw)

    def _server_fault(self, server: EmbeddedPostgres | EmbeddedMosquitto | None, kind: str, pause: float,
                      now: float) -> bool:
        assert server is not None
        if any(label.startswith("start ") for _, _, label, _ in self._events):
            return False  # one server outage at a time keeps "restored" well defined
        if kind.endswith("_kill"):
            server.kill()
        else:
            server.stop()
        self.report.faults[kind] += 1
        self._at(now + pause, f"start {kind.split('_')[0]}", server.start)
        return True

    # -- the run -----------------------------------------------------------------------------------
    def supervise(self) -> None:
        """Restart what exited on its own (after 1 s, as systemd's RestartSec would) and count it."""
        now = time.monotonic()
        for p in self.procs.values():
            if not p.wanted or p.alive():
                continue
            if p.restart_at is None:
                code = p.proc.returncode if p.proc is not None else None
                log.warning("%s exited on its own (code %s); restarting it", p.name, code)
                self.report.unplanned_exits[p.name.split("-")[0] if not p.name.startswith("chaos-gw")
                                            else "gateway"] += 1
                p.restart_at = now + 1.0
            elif now >= p.restart_at:
                p.start()

    def fault_phase(self) -> None:
        t0 = time.monotonic()
        self._schedule(t0)
        while self._events:
            when, _, label, action = self._events[0]
            if time.monotonic() >= when:
                heapq.heappop(self._events)
                log.info("chaos: %s", label)
                with (self.logs / "faults.log").open("a") as f:
                    f.write(f"{datetime.now(UTC).isoformat()} {label}\n")
                try:
                    action()
                except StackError as exc:  # a server that does not come back is a finding: retry once
                    log.error("chaos: %s failed: %s; retrying", label, exc)
                    action()
            self.supervise()
            time.sleep(0.1)
        self.report.fault_seconds = time.monotonic() - t0

    def settle(self) -> None:
        """Stop collecting (gateways restart in drain mode), then wait until everything is stored."""
        t0 = time.monotonic()
        for n, gw in enumerate(self.gateway_ids):
            p = self.procs[gw]
            p.terminate()
            p.env = self._gateway_env(n, gw, drain=True)
            p.start()
        deadline = t0 + self.config.settle_timeout_s
        while time.monotonic() < deadline:
            self.supervise()
            if self._settled():
                self.report.settled = True
                break
            time.sleep(0.5)
        self.report.settle_seconds = time.monotonic() - t0
        self._audit_stop.set()
        for w in self._auditors:
            w.join(10)

    def _produced(self) -> tuple[set[str], int]:
        produced: set[str] = set()
        waiting = 0
        for gw in self.gateway_ids:
            with contextlib.closing(sqlite3.connect(self._outbox(gw), timeout=30)) as db:
                produced.update(r[0] for r in db.execute("SELECT message_id FROM chaos_produced"))
                waiting += db.execute(
                    "SELECT count(*) FROM outbox WHERE state IN ('pending', 'in_flight')").fetchone()[0]
        return produced, waiting

    def _settled(self) -> bool:
        assert self.pg is not None
        produced, waiting = self._produced()
        if waiting:
            return False
        try:
            with psycopg.connect(self.pg.url, connect_timeout=2) as conn:
                stored = {r[0] for r in conn.execute("SELECT message_id FROM readings")}
                if not produced <= stored:
                    return False
                return not self._crisis(conn)[2]
        except psycopg.Error:
            return False

    @staticmethod
    def _crisis(conn: psycopg.Connection[Any]) -> tuple[int, int, list[int], int]:
        """(crisis readings, flagged, reading ids without a flag, collapsed by triage)."""
        rows = conn.execute(
            """
            WITH bp AS (
                SELECT reading_id, patient_id, measured_at, systolic_mmhg, diastolic_mmhg,
                       lag(measured_at) OVER w AS prev_at,
                       lag(systolic_mmhg) OVER w AS prev_sys,
                       lag(diastolic_mmhg) OVER w AS prev_dia
                FROM readings
                WHERE kind = 'blood_pressure' AND quality = 'valid' AND patient_id IS NOT NULL
                  AND NOT device_status && ARRAY['body_movement', 'cuff_too_loose',
                                                 'improper_measurement_position']
                WINDOW w AS (PARTITION BY patient_id ORDER BY measured_at, reading_id)
            ), flagged AS (
                SELECT DISTINCT unnest(reading_ids) AS reading_id FROM flags WHERE rule_id = 'bp_crisis'
            )
            SELECT bp.reading_id,
                   bp.measured_at - bp.prev_at < interval '30 seconds'
                       AND bp.systolic_mmhg = bp.prev_sys AND bp.diastolic_mmhg = bp.prev_dia AS collapsed,
                   f.reading_id IS NOT NULL AS has_flag
            FROM bp LEFT JOIN flagged f USING (reading_id)
            WHERE bp.systolic_mmhg >= 180 OR bp.diastolic_mmhg >= 120
            """
        ).fetchall()
        flagged = sum(1 for r in rows if r[2])
        collapsed = sum(1 for r in rows if r[1] and not r[2])
        missing = [int(r[0]) for r in rows if not r[2] and not r[1]]
        return len(rows), flagged, missing, collapsed

    def account(self) -> None:
        assert self.pg is not None
        from triage.clinical.audit import verify_chain  # orchestration only

        run_audit_key()

        r = self.report
        produced, r.left_in_outboxes = self._produced()
        with psycopg.connect(self.pg.url) as conn:
            ids = [row[0] for row in conn.execute("SELECT message_id FROM readings")]
            stored = set(ids)
            r.produced, r.stored = len(produced), len(stored)
            r.duplicated = len(ids) - len(stored)
            lost = produced - stored
            r.lost, r.lost_ids = len(lost), sorted(lost)[:20]
            if lost:  # for the post-mortem: which gateway committed each, and when
                (self.logs / "lost.txt").write_text("".join(f"{i}\n" for i in sorted(lost)))
            r.unexpected = len(stored - produced)
            r.dead_letters = _one(conn, "SELECT count(*) FROM dead_letters")
            r.crisis_readings, r.crisis_flagged, r.crisis_missing, r.crisis_collapsed = self._crisis(conn)
            r.flags = _one(conn, "SELECT count(*) FROM flags")
            r.duplicate_flags = _one(conn, """
                SELECT count(*) FROM (
                    SELECT subject_key, rule_id, episode_key FROM flags
                    WHERE state IN ('open', 'acknowledged', 'escalated', 'reviewed')
                    GROUP BY 1, 2, 3 HAVING count(*) > 1) a""") + _one(conn, """
                SELECT count(*) FROM (
                    SELECT subject_key, rule_id, reading_ids FROM flags WHERE reading_ids <> '{}'
                    GROUP BY 1, 2, 3 HAVING count(*) > 1) b""")
            chain = verify_chain(conn)
            r.audit_rows, r.audit_ok = chain.rows_checked, chain.ok
            r.audit_problems = [p.message for p in chain.problems[:10]]
        r.audit_committed = sum(w.committed for w in self._auditors)
        if r.audit_rows < r.audit_committed:
            r.audit_ok = False
            r.audit_problems.append(f"{r.audit_committed} appends committed but {r.audit_rows} rows found")

    def stop(self) -> None:
        self._audit_stop.set()
        for p in self.procs.values():
            if p.name.startswith("chaos-gw"):
                p.terminate()
        for p in self.procs.values():
            p.terminate()
        if self.broker is not None:  # the state directory (logs, data) is removed by the caller
            self.broker.stop()
        if self.pg is not None:
            self.pg.stop("immediate")


def _one(conn: psycopg.Connection[Any], query: str) -> int:
    row = conn.execute(query).fetchone()
    return int(row[0]) if row else 0


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
        chaos = Chaos(config, state)
        try:
            chaos.start()
            chaos.fault_phase()
            chaos.settle()
            chaos.account()
        finally:
            chaos.stop()
        return chaos.report


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rpmflow-sim chaos", description=__doc__.split("\n\n")[0])
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
