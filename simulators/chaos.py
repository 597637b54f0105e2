"""Chaos run: the whole pipeline under seeded faults, then proof that nothing was lost or doubled.

The world is the embedded stack (PostgreSQL + Mosquitto with per-gateway ACLs) and every service
as the operator runs it: ``rpmflow-gateway run`` per gateway (simulated BLE devices, 4 patients,
a cuff and a meter each, and for every ``--vitals-every``-th patient a weight scale and a pulse
oximeter), two ``rpmflow-ingest run`` (plain persistent subscriptions by default, one ``$share``
group with ``--shared``) and one ``rpmflow-triage run``. A seeded schedule
(``simulators/chaos_schedule.py``) then kill -9s and restarts gateways, ingest processes and
triage, restarts and kills Mosquitto and PostgreSQL, and cuts gateways off the broker (a restart
with an unreachable broker URL, later restored). A small supervisor restarts any service that
exits on its own, as systemd would, and counts those exits: they are findings, not faults.

At the end the gateways are restarted in drain mode (an allow-list no simulated device matches:
nothing new is collected, the outbox empties) and the run checks (``simulators/chaos_accounting.py``,
ground truth from a trigger on each gateway's outbox; report in ``simulators/chaos_report.py``):

- every produced ``message_id`` is in ``readings`` exactly once (lost, duplicated, unexpected),
  in total and per kind (blood pressure, glucose, weight, SpO2 spot-checks, SpO2 per-minute
  summaries of continuous oximetry);
- every crisis reading triage must alert on is in a ``bp_crisis`` flag (triage collapses a
  reading taken < 30 s after another one of the same patient: those are reported, not required);
- no flag is duplicated (one open flag per episode, and no two flags with the same evidence);
- the audit chain (appended to by two writer threads throughout the faults) verifies.

``rpmflow-sim chaos --help`` lists the knobs (env ``RPMFLOW_SIM_CHAOS_*``).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from simulators.bluez.sidecar import DoubleSidecar
from simulators.chaos_accounting import (
    AuditWriter,
    count_flags,
    count_readings,
    prepare_outbox,
    read_produced,
    settled,
)
from simulators.chaos_config import ChaosConfig
from simulators.chaos_report import ChaosReport, KindCount
from simulators.chaos_schedule import FAULT_KINDS, FaultSchedule
from simulators.embedded_mosquitto import EmbeddedMosquitto
from simulators.embedded_postgres import EmbeddedPostgres
from simulators.processes import ServiceProcess, console_script, run_audit_key, run_to_completion, service_env
from simulators.server_host import StackError, free_port
from triage.clinical import people
from triage.clinical.devices_store import SimulatedDevice, assign_simulated, provision_simulated

__all__ = ["FAULT_KINDS", "Chaos", "ChaosReport", "KindCount"]

log = logging.getLogger(__name__)

SCENARIOS = ("demo", "normal", "faults", "normal")  # gateway i runs SCENARIOS[i % 4]


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


class Chaos:
    """Owns the stack, the processes, the fault schedule and the final accounting."""

    def __init__(self, config: ChaosConfig, state: Path) -> None:
        self.config = config
        self.state = state
        self.logs = state / "logs"
        self.pg: EmbeddedPostgres | None = None
        self.broker: EmbeddedMosquitto | None = None
        self.procs: dict[str, Proc] = {}
        self.gateway_ids = [f"chaos-gw-{g:03d}" for g in range(1, config.gateways + 1)]
        self.report = ChaosReport(gateways=config.gateways,
                                  patients=config.gateways * config.patients_per_gateway)
        self.dead_port = free_port()  # nothing listens here: a gateway "cut off" from the broker
        self.schedule = FaultSchedule(self)
        self._audit_stop = threading.Event()
        self._auditors: list[AuditWriter] = []
        self.bluez: dict[str, DoubleSidecar] = {}  # gateway → its BlueZ double (bleak backend)
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
            # Its own MQTT account each: the broker binds client ids to usernames.
            env = dict(self._env("ingest"), RPMFLOW_MQTT_URL=self.broker.add_ingest(f"chaos-ingest-{i}"),
                       RPMFLOW_INGEST_SHARED=str(self.config.shared).lower(), RPMFLOW_INGEST_GROUP="chaos",
                       RPMFLOW_INGEST_BATCH_MS="100")
            self.procs[name] = Proc.run_command(name, "rpmflow-ingest", env, self.logs)
        env = dict(self._env("triage"), RPMFLOW_TRIAGE_INTERVAL_S="1")
        self.procs["triage"] = Proc.run_command("triage", "rpmflow-triage", env, self.logs)
        for n, gw in enumerate(self.gateway_ids):
            prepare_outbox(self._outbox(gw))
            if n < self.config.bluez_gateways:
                self._start_bluez(n, gw)
            self.procs[gw] = Proc.run_command(gw, "rpmflow-gateway", self.gateway_env(n, gw), self.logs)
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

    def _outboxes(self) -> list[Path]:
        return [self._outbox(gw) for gw in self.gateway_ids]

    def good_url(self, gw: str) -> str:
        assert self.broker is not None
        return self.broker.url_for(gw)

    def _patient_devices(self, n: int, p: int) -> list[tuple[str, str, str]]:
        """(sim kind, serial, wire kind) of patient ``p`` of gateway ``n``: a cuff and a meter, and
        for every ``vitals_every``-th patient (0: none) a weight scale and a pulse oximeter too."""
        tag = f"{n + 1:03d}-{p}"
        out = [("bp", f"CH-BP-{tag}", "blood_pressure"), ("glucose", f"CH-GL-{tag}", "glucose")]
        every = self.config.vitals_every
        if every > 0 and (n * self.config.patients_per_gateway + p) % every == 0:
            out += [("scale", f"CH-WS-{tag}", "weight"), ("oximeter", f"CH-OX-{tag}", "spo2")]
        return out

    def _devices(self, n: int) -> list[tuple[str, str, str]]:
        """Every device of gateway ``n``, patient by patient."""
        return [d for p in range(self.config.patients_per_gateway) for d in self._patient_devices(n, p)]

    def gateway_env(self, n: int, gw: str, *, url: str | None = None, drain: bool = False) -> dict[str, str]:
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
        if gw in self.bluez:  # same devices, behind BlueZ instead of inside the gateway
            env |= {"RPMFLOW_GATEWAY_BACKEND": "bleak", "DBUS_SYSTEM_BUS_ADDRESS": self.bluez[gw].address}
        if drain:  # an allow-list no simulated device matches: publish what is queued, collect nothing
            env["RPMFLOW_GATEWAY_DEVICES"] = "chaos-drain-only"
        return env

    def _start_bluez(self, n: int, gw: str) -> None:
        sim = self.gateway_env(n, gw)
        key = "RPMFLOW_GATEWAY_SIM_"
        args = ["--devices", sim[key + "DEVICES"], "--scenario", sim[key + "SCENARIO"], "--seed",
                sim[key + "SEED"], "--interval-s", sim[key + "INTERVAL_S"], "--epoch", self.epoch]
        self.bluez[gw] = DoubleSidecar(self.state / f"bluez-{gw}", args)
        self.bluez[gw].start(self._env())

    def _seed_people(self) -> None:
        """One patient per (gateway, slot), each with its devices assigned since long ago."""
        assert self.pg is not None
        since = datetime(2000, 1, 1, tzinfo=UTC)
        devices: list[SimulatedDevice] = []
        holders: list[tuple[str, int]] = []
        with psycopg.connect(self.pg.url) as conn, conn.transaction():
            for n, gw in enumerate(self.gateway_ids):
                for p in range(self.config.patients_per_gateway):
                    patient_id = people.create_patient(
                        conn, mrn=f"CHAOS-{n + 1:03d}-{p}", display_name=f"Chaos patient {n + 1}-{p}",
                        state="NY", timezone="America/New_York", birth_year=1940 + p)
                    for _sim, serial, kind in self._patient_devices(n, p):
                        devices.append(SimulatedDevice(serial, kind, gw, "rpmflow-sim", "chaos", serial))
                        holders.append((serial, patient_id))
            provision_simulated(conn, devices, since=since, by="chaos", reason="chaos run set-up")
            assign_simulated(conn, holders, since=since, by="chaos")

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
        self.schedule.plan(t0)
        while self.schedule.events:
            due = self.schedule.pop_due(time.monotonic())
            if due is not None:
                label, action = due
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
        assert self.pg is not None
        url = self.pg.url
        t0 = time.monotonic()
        for n, gw in enumerate(self.gateway_ids):
            p = self.procs[gw]
            p.terminate()
            p.env = self.gateway_env(n, gw, drain=True)
            p.start()
        deadline = t0 + self.config.settle_timeout_s
        while time.monotonic() < deadline:
            self.supervise()
            if settled(url, self._outboxes()):
                self.report.settled = True
                break
            time.sleep(0.5)
        self.report.settle_seconds = time.monotonic() - t0
        self._audit_stop.set()
        for w in self._auditors:
            w.join(10)

    def account(self) -> None:
        """Count every produced reading (per kind) in PostgreSQL, the flags and the audit chain."""
        assert self.pg is not None
        from triage.clinical.audit import verify_chain  # orchestration only

        run_audit_key()
        r = self.report
        produced, r.left_in_outboxes = read_produced(self._outboxes())
        with psycopg.connect(self.pg.url) as conn:
            lost = count_readings(r, produced, conn)
            if lost:  # for the post-mortem
                (self.logs / "lost.txt").write_text("".join(f"{i}\n" for i in sorted(lost)))
            count_flags(r, conn)
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
        for sidecar in self.bluez.values():
            sidecar.stop()
        if self.broker is not None:  # the state directory (logs, data) is removed by the caller
            self.broker.stop()
        if self.pg is not None:
            self.pg.stop("immediate")
