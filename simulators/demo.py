"""The whole pipeline on one machine: embedded servers, every service, simulated gateways.

The demo starts each component through its own console script, exactly as an operator would,
so it exercises the real entry points and settings. Shutdown runs in data-flow order (gateways,
ingest, triage, dashboard, then the servers) and leaves no process behind.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from dashboards.totp import grouped
from simulators.demo_history import ARCHETYPES
from simulators.demo_seed import DEMO_TOTP_SECRETS, HISTORY_DAYS, vitals_devices
from simulators.probe import wait_until_ingest_subscribed
from simulators.processes import ServiceProcess, console_script, run_to_completion, service_env
from simulators.server_host import StackError, wait_until
from simulators.stack import Stack, start_stack

DEMO_PASSWORD = "rpmflow-demo"  # noqa: S105 - printed to the user; local demo only
DEMO_USERS = (
    ("nurse", "nurse"),
    ("clinician", "clinician"),
    ("billing", "billing"),
    ("admin", "admin"),
)


@dataclass
class Demo:
    gateways: int = 3
    port: int = 8000
    interval_s: float = 20.0
    bluez: bool = False  # gateway 1 on the bleak backend against the BlueZ double
    state: Path = field(default_factory=lambda: Path(".state/demo"))
    stack: Stack | None = None
    services: list[ServiceProcess] = field(default_factory=list)
    bluez_bus: tuple[subprocess.Popen[str], str] | None = None
    bluez_double: ServiceProcess | None = None

    def gateway_ids(self) -> list[str]:
        return [f"gw-{i:04d}" for i in range(1, self.gateways + 1)]

    def env_as(self, role: str) -> dict[str, str]:
        """The environment of a process connecting as ``role`` (owner, ingest, triage, dashboard)."""
        assert self.stack is not None
        return service_env(getattr(self.stack.database_urls, role))

    def start(self) -> None:
        if self.state.exists():
            shutil.rmtree(self.state)
        self.state.mkdir(parents=True)
        logs = self.state / "logs"
        logs.mkdir()
        print("rpmflow demo: starting PostgreSQL and Mosquitto ...", flush=True)
        self.stack = start_stack(gateways=self.gateway_ids())
        broker = self.stack.mosquitto
        run_to_completion([console_script("rpmflow-ingest"), "migrate"], self.env_as("owner"))
        seed = [sys.executable, "-m", "simulators.demo_seed", "--password", DEMO_PASSWORD,
                "--patients", str(len(ARCHETYPES))]
        for gw in self.gateway_ids():
            seed += ["--gateway", gw]
        run_to_completion(seed, self.env_as("dashboard"))
        # A month of history (simulators/demo_history.py): through ingest as the ingest role, then
        # triage as of each step of the month as the triage role, before any live reading arrives.
        print(f"rpmflow demo: backfilling {HISTORY_DAYS} days for {len(ARCHETYPES)} patients ...", flush=True)
        history = [sys.executable, "-m", "simulators.demo_history"]
        run_to_completion([*history, "backfill", "--truth", str(self.state / "truth.json")],
                          self.env_as("ingest"))
        run_to_completion([*history, "replay"], self.env_as("triage"))
        run_to_completion([*history, "work"], self.env_as("dashboard"))

        # Every service connects as its own least-privilege role (ingest/dbroles.py).
        env = self.env_as("triage")
        ingest_env = dict(self.env_as("ingest"), RPMFLOW_MQTT_URL=broker.ingest_url)
        self.services.append(ServiceProcess.run_command("ingest", "rpmflow-ingest", ingest_env, logs))
        self.services.append(ServiceProcess.run_command("triage", "rpmflow-triage", env, logs))
        # Plain HTTP on loopback: cookies cannot carry the Secure attribute here.
        dash_env = dict(
            self.env_as("dashboard"),
            RPMFLOW_DASHBOARD_PORT=str(self.port),
            RPMFLOW_DASHBOARD_HOST="127.0.0.1",
            RPMFLOW_DASHBOARD_SECURE_COOKIES="false",
        )
        self.services.append(ServiceProcess.run_command("dashboard", "rpmflow-dashboard", dash_env, logs))
        for n, gw in enumerate(self.gateway_ids(), start=1):
            gw_env = self._gateway_env(n, gw, broker.url_for(gw), logs)
            self.services.append(ServiceProcess.run_command(gw, "rpmflow-gateway", gw_env, logs))
        ingest = self.services[0]
        ingest.start()
        # A new ingest session queues nothing until it has subscribed: wait before gateways publish.
        wait_until_ingest_subscribed(broker.url_for(self.gateway_ids()[0]), self.stack.database_url)
        for svc in self.services[1:]:
            svc.start()
        url = f"http://127.0.0.1:{self.port}"
        wait_until(lambda: _healthy(url + "/healthz") or self._died(), 60, f"the dashboard at {url}")
        if self._died():
            raise StackError(f"a service exited at start-up; see {logs}")

    def _gateway_env(self, n: int, gw: str, mqtt_url: str, logs: Path) -> dict[str, str]:
        """Gateway ``n`` on the simulated radio; the first one on the BlueZ double when asked."""
        env = dict(
            service_env(),
            RPMFLOW_GATEWAY_ID=gw,
            RPMFLOW_MQTT_URL=mqtt_url,
            RPMFLOW_GATEWAY_OUTBOX=str(self.state / f"{gw}-outbox.sqlite3"),
            RPMFLOW_GATEWAY_BACKEND="sim",
            RPMFLOW_GATEWAY_SIM_SCENARIO="demo",
            RPMFLOW_GATEWAY_SIM_SEED=str(n),
            RPMFLOW_GATEWAY_SIM_INTERVAL_S=str(self.interval_s),
            RPMFLOW_GATEWAY_SIM_DEVICES=_device_spec(n),
        )
        if n == 1 and self.bluez:
            env |= {"RPMFLOW_GATEWAY_BACKEND": "bleak",
                    "DBUS_SYSTEM_BUS_ADDRESS": self._start_bluez_double(_device_spec(n), logs)}
        return env

    def _start_bluez_double(self, spec: str, logs: Path) -> str:
        """A private dbus-daemon with the BlueZ double owning org.bluez on it; the bus address."""
        from simulators.bluez.bus import start_bus

        self.bluez_bus = start_bus(self.state / "dbus")
        address = self.bluez_bus[1]
        argv = [sys.executable, "-m", "simulators.bluez", "--bus", address, "--devices", spec,
                "--scenario", "demo", "--seed", "1", "--interval-s", str(self.interval_s)]
        self.bluez_double = ServiceProcess("bluez-double", argv, service_env(), logs / "bluez-double.log")
        self.bluez_double.start()
        log = self.bluez_double.log_path
        wait_until(lambda: "ready" in log.read_text(errors="replace") or not self.bluez_double_alive(), 20,
                   "the BlueZ double")
        if not self.bluez_double_alive():
            raise StackError(f"the BlueZ double exited at start-up; see {log}")
        return address

    def bluez_double_alive(self) -> bool:
        return self.bluez_double is None or self.bluez_double.alive()

    def _died(self) -> bool:
        return any(not s.alive() for s in self.services) or not self.bluez_double_alive()

    def stop(self) -> None:
        for svc in self.services:  # data-flow order: gateways drain into ingest first
            if svc.name.startswith("gw-"):
                svc.stop()
        for svc in self.services:
            if not svc.name.startswith("gw-"):
                svc.stop()
        if self.bluez_double is not None:
            self.bluez_double.stop()
            self.bluez_double = None
        if self.bluez_bus is not None:
            from simulators.bluez.bus import stop_bus

            stop_bus(self.bluez_bus[0])
            self.bluez_bus = None
        if self.stack is not None:
            self.stack.destroy()
            self.stack = None

    def print_banner(self) -> None:
        assert self.stack is not None
        url = f"http://127.0.0.1:{self.port}"
        print(
            "\n"
            f"rpmflow demo is running: open {url}\n"
            f"  sign in as nurse / clinician / billing / admin, password {DEMO_PASSWORD}\n"
            "  clinician, billing and admin then give a TOTP code: add their key to an authenticator app\n"
            + "".join(f"    {role:<9} {grouped(secret)}\n" for role, secret in DEMO_TOTP_SECRETS.items())
            + "  or print the current code with: .venv/bin/python -m simulators.demo_seed --code clinician\n"
            f"  {len(ARCHETYPES)} patients with {HISTORY_DAYS} days of history (ground truth:"
            f" {self.state / 'truth.json'});\n"
            f"  {self.gateways} simulated gateways stream live (BP cuff + glucose meter each, and a scale\n"
            "  and a pulse oximeter on the first); a hypertensive crisis\n"
            "  reading arrives within seconds and appears in the nurse's queue.\n"
            f"  database (reporting, read-only): {self.stack.database_urls.reporting}\n"
            f"  logs: {self.state / 'logs'}\n"
            "Press Ctrl-C to stop (everything shuts down cleanly).\n",
            flush=True,
        )


def _device_spec(n: int) -> str:
    """Demo gateway ``n``: a cuff and a meter; the first also has a scale and a pulse oximeter."""
    spec = f"bp:SIM-BP-{n:04d},glucose:SIM-GL-{n:04d}"
    scale_oximeter = vitals_devices(n)
    if scale_oximeter:
        spec += f",scale:{scale_oximeter[0]},oximeter:{scale_oximeter[1]}"
    return spec


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:  # noqa: S310 - local http URL
            return bool(resp.status == 200)
    except OSError:
        return False


def run_demo(gateways: int, port: int, interval_s: float, duration_s: float | None,
             bluez: bool = False) -> int:
    demo = Demo(gateways=gateways, port=port, interval_s=interval_s, bluez=bluez)
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        demo.start()
        demo.print_banner()
        deadline = None if duration_s is None else time.monotonic() + duration_s
        while not stop.is_set():
            if deadline is not None and time.monotonic() > deadline:
                break
            if demo._died():
                dead = [s.name for s in demo.services if not s.alive()]
                print(f"rpmflow demo: service(s) exited: {', '.join(dead)}; see logs", file=sys.stderr)
                return 1
            stop.wait(1.0)
        return 0
    except StackError as exc:
        print(f"rpmflow demo: {exc}", file=sys.stderr)
        return 1
    finally:
        print("rpmflow demo: stopping ...", flush=True)
        demo.stop()
        print("rpmflow demo: stopped.", flush=True)
