"""The operator's path, verbatim: docs/operations.md and docs/enrolling-a-gateway.md, followed
literally on a fresh PostgreSQL cluster and a fresh Mosquitto, end at a nurse's queue.

The shell and config blocks marked ``<!-- operator-path: NAME -->`` in the two guides are taken
from the Markdown and run as written; only what names the operator's own machines is replaced
(host names and ports → loopback and free ports, /etc and /var/lib → a private directory, the
DBA's login). Nobody is a superuser: the DBA has CREATEROLE and CREATEDB, migrate runs as the
owner the bootstrap SQL made, each service as its own role. The gateway (simulated Bluetooth, the
real rpmflow-gateway) connects over TLS with the CA the guide generates, and the ACL is the
guide's, acks topics included: the outbox drains only if the acks reach it.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest

from simulators.embedded_postgres import EmbeddedPostgres
from simulators.server_host import chown_tree, free_port, server_binary, service_account
from tests.dashboards.live import csrf_of, enrol_second_factor
from tests.test_end_to_end import Processes, _services_connect_without_power
from tests.waiting import wait_for

DOCS = Path(__file__).resolve().parent.parent / "docs"
_BLOCK = re.compile(r"<!-- operator-path: ([a-z-]+) -->\n```[a-z]*\n(.*?)\n```", re.S)
GW = "gw-0042"


def guide_blocks() -> dict[str, str]:
    found: dict[str, str] = {}
    for name in ("operations.md", "enrolling-a-gateway.md"):
        for key, text in _BLOCK.findall((DOCS / name).read_text()):
            assert key not in found, f"block {key} appears twice"
            found[key] = text
    return found


class World:
    """The operator's machine: a private root for /etc and /var/lib, the ports, the commands."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.etc_mosquitto = root / "etc" / "mosquitto"
        self.etc_rpmflow = root / "etc" / "rpmflow"
        self.var_mosquitto = root / "var" / "lib" / "mosquitto"
        for d in (self.etc_mosquitto / "certs", self.etc_rpmflow, self.var_mosquitto, root / "work"):
            d.mkdir(parents=True, exist_ok=True)
        self.mqtt_port = free_port()
        self.mqtts_port = free_port()
        self.db_port = 0

    def localise(self, text: str) -> str:
        """Only the operator's names change: hosts, ports, directories."""
        return (text.replace("db.example.org -p 5432", f"127.0.0.1 -p {self.db_port}")
                .replace("db.example.org:5432", f"127.0.0.1:{self.db_port}")
                .replace("broker.example.org:8883", f"localhost:{self.mqtts_port}")
                .replace("broker.example.org", "localhost")
                .replace("listener 1883 127.0.0.1", f"listener {self.mqtt_port} 127.0.0.1")
                .replace("listener 8883", f"listener {self.mqtts_port} 127.0.0.1")
                .replace("/etc/mosquitto", str(self.etc_mosquitto))
                .replace("/var/lib/mosquitto", str(self.var_mosquitto))
                .replace("/etc/rpmflow", str(self.etc_rpmflow)))

    def shell(self, script: str, env: dict[str, str], cwd: Path) -> dict[str, str]:
        """Run a guide's shell block with bash; returns the environment it exported."""
        dump = self.root / "work" / f"env-{secrets.token_hex(3)}"
        command = f"set -a\n{self.localise(script)}\nenv -0 > {dump}"  # -a: keep its variables too
        out = subprocess.run(["bash", "-euo", "pipefail", "-c", command], env=env, cwd=cwd,
                             capture_output=True, text=True, timeout=120, check=False)
        assert out.returncode == 0, f"{script}\n--- stdout\n{out.stdout}\n--- stderr\n{out.stderr}"
        return dict(item.split("=", 1) for item in dump.read_text().split("\0") if "=" in item)


@pytest.fixture
def world() -> Iterator[World]:
    root = Path(tempfile.mkdtemp(prefix="rpmflow-oppath-"))
    root.chmod(0o755)
    try:
        yield World(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def bare_cluster(world: World) -> Iterator[EmbeddedPostgres]:
    """A cluster with nothing of rpmflow in it, and a DBA who is not a superuser."""
    pg = EmbeddedPostgres.create(bootstrap=False)
    pg.start()
    try:
        with psycopg.connect(pg.url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
            conn.execute("CREATE ROLE dba LOGIN CREATEROLE CREATEDB PASSWORD 'dba-secret'")
        world.db_port = pg.port
        yield pg
    finally:
        pg.destroy()


def _base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RPMFLOW_", "PG"))}
    tools = [str(Path(sys.executable).parent), str(Path(server_binary("psql")).parent)]
    env["PATH"] = os.pathsep.join([*tools, env.get("PATH", "/usr/bin:/bin")])
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _start_broker(world: World, blocks: dict[str, str], processes: Processes) -> None:
    conf = world.etc_mosquitto / "conf.d"
    conf.mkdir()
    (conf / "rpmflow.conf").write_text(world.localise(blocks["mosquitto-conf"]) + "\n")
    (conf / "tls.conf").write_text(world.localise(blocks["tls-conf"]) + "\n")
    # The guide appends the server accounts' blocks once, then one block per gateway.
    (world.etc_mosquitto / "acl").write_text(blocks["acl-server"] + "\n\n" + blocks["acl-gateway"] + "\n")
    main = world.etc_mosquitto / "mosquitto.conf"
    main.write_text(f"include_dir {conf}\n")
    account = service_account()
    chown_tree(world.root, account)
    log = (world.root / "work" / "mosquitto.log").open("wb")
    proc = subprocess.Popen([server_binary("mosquitto"), "-c", str(main)], stdout=log,
                            stderr=subprocess.STDOUT, user=account[0] if account else None,
                            group=account[1] if account else None, start_new_session=True)
    log.close()
    processes.procs["mosquitto"] = proc
    out = world.root / "work" / "mosquitto.log"

    def listening() -> bool:
        assert proc.poll() is None, out.read_text()
        probe = subprocess.run(["bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{world.mqtts_port}"],
                               capture_output=True, check=False)
        return probe.returncode == 0

    wait_for(listening, 30, "mosquitto to listen on its TLS port")


@pytest.mark.slow
def test_the_operator_path_ends_with_a_reading_in_the_nurses_queue(
    world: World, bare_cluster: EmbeddedPostgres, tmp_path: Path
) -> None:
    blocks = guide_blocks()
    env = _base_env()
    env["DBA_PW"] = "dba-secret"  # the DBA's own login (the guide's psql -U dba)
    env["ADMIN_PW"], env["NURSE_PW"] = secrets.token_hex(12), secrets.token_hex(12)
    work = world.root / "work"
    # operations.md section 2: bootstrap as the DBA, migrate as the owner, accounts as the dashboard.
    env = world.shell(blocks["bootstrap"], env, work)
    env = world.shell(blocks["migrate"], env, work)
    env = world.shell(blocks["users"], env, work)
    # operations.md section 3 and enrolling-a-gateway.md sections 2-4: broker accounts, ACL, TLS.
    env = world.shell(blocks["mosquitto-server-accounts"], env, work)
    env = world.shell(blocks["gateway-password"], env, work)
    env = world.shell(blocks["tls-ca"], env, world.etc_mosquitto / "certs")
    shutil.copy(world.etc_mosquitto / "certs" / "ca.crt", world.etc_rpmflow / "mqtt-ca.crt")
    processes = Processes(tmp_path)
    try:
        _start_broker(world, blocks, processes)
        _run_services_and_check_the_queue(world, blocks, env, processes, tmp_path, bare_cluster.url)
        # Seen from outside, as the cluster's superuser: each service is its own powerless role.
        _services_connect_without_power(bare_cluster.url)
    finally:
        processes.stop()


def _service_env(env: dict[str, str], role: str, password: str, db_port: int) -> dict[str, str]:
    out = {k: v for k, v in env.items() if not k.startswith("RPMFLOW_")}
    out["RPMFLOW_DATABASE_URL"] = f"postgresql://{role}:{password}@127.0.0.1:{db_port}/rpmflow"
    return out


def _run_services_and_check_the_queue(
    world: World, blocks: dict[str, str], env: dict[str, str], processes: Processes, tmp_path: Path,
    superuser_url: str,
) -> None:
    port = free_port()
    processes.start("ingest", ["rpmflow-ingest", "run"], dict(
        _service_env(env, "rpmflow_ingest", env["INGEST_PW"], world.db_port),
        RPMFLOW_MQTT_URL=f"mqtt://rpmflow-ingest:{env['MQTT_INGEST_PW']}@127.0.0.1:{world.mqtt_port}"))
    processes.start("triage", ["rpmflow-triage", "run"], dict(
        _service_env(env, "rpmflow_triage", env["TRIAGE_PW"], world.db_port), RPMFLOW_TRIAGE_INTERVAL_S="1"))
    processes.start("dashboard", ["rpmflow-dashboard", "run"], dict(
        _service_env(env, "rpmflow_dashboard", env["DASHBOARD_PW"], world.db_port),
        RPMFLOW_DASHBOARD_PORT=str(port), RPMFLOW_DASHBOARD_SECURE_COOKIES="false"))
    wait_for(lambda: b"subscribed to" in (tmp_path / "ingest.log").read_bytes(), 60, "ingest to subscribe")
    base = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=base, timeout=10) as admin:
        wait_for(lambda: _ready(admin, processes), 60, "the dashboard to be ready")
        _sign_in(admin, "admin", env["ADMIN_PW"])
        # docs/security.md: an admin's first sign-in leads to enrolling an authenticator (TOTP).
        assert len(enrol_second_factor(admin, "admin")[1]) == 10
        # enrolling-a-gateway.md section 6: the admin registers the patient, assigns the cuff and
        # enrols it on the gateway.
        assert admin.post("/admin/patients", data={
            "csrf_token": _csrf(admin), "mrn": "OP-0001", "display_name": "Operator patient", "state": "NY",
            "timezone": "America/New_York"}).status_code == 303
        patients = admin.get("/admin/patients").text
        found = re.search(r"OP-0001 · id (\d+)", patients)
        assert found, patients[:2000]
        handed_over = datetime.now(ZoneInfo("America/New_York")) - timedelta(days=2)  # "from the date
        # it was handed over": the cuff's memory holds readings measured before today
        # Care teams: the nurse sees the patients of her teams only (docs/enrolling-a-gateway.md).
        assert admin.post("/admin/care-teams", data={"csrf_token": _csrf(admin), "name": "Ward 3"}
                          ).status_code == 303
        team = admin.get("/api/admin/care-teams").json()["teams"][0]["team_id"]
        nurse_id = next(u["user_id"] for u in admin.get("/api/admin/users").json()["users"]
                        if u["username"] == "nurse")
        assert admin.post(f"/admin/care-teams/{team}/members", data={
            "csrf_token": _csrf(admin), "user_id": nurse_id}).status_code == 303
        assert admin.post(f"/admin/care-teams/{team}/patients", data={
            "csrf_token": _csrf(admin), "patient_id": found.group(1)}).status_code == 303
        assert admin.post("/admin/devices/assign", data={
            "csrf_token": _csrf(admin), "device_id": "OP-BP-0001", "patient_id": found.group(1),
            "kind": "blood_pressure", "valid_from": handed_over.strftime("%Y-%m-%dT%H:%M"),
        }).status_code == 303
        assert admin.post("/admin/devices/enrol", data={
            "csrf_token": _csrf(admin), "device_id": "OP-BP-0001", "gateway_id": GW, "kind": "blood_pressure",
            "valid_from": handed_over.strftime("%Y-%m-%dT%H:%M"), "reason": "new home set-up",
        }).status_code == 303
    gateway_env = dict(line.split("=", 1) for line in world.localise(blocks["gateway-env"]).splitlines()
                       if line and not line.startswith("#"))
    url = gateway_env["RPMFLOW_GATEWAY_MQTT_URL"]
    gateway_env["RPMFLOW_GATEWAY_MQTT_URL"] = url.replace("<password>", env["pw"])
    gateway_env["RPMFLOW_GATEWAY_DEVICES"] = "OP-BP-0001"  # this home's cuff (the guide's allow-list)
    outbox = tmp_path / "outbox.sqlite3"
    processes.start("gateway", ["rpmflow-gateway", "run"], dict(
        {k: v for k, v in env.items() if not k.startswith("RPMFLOW_")}, **gateway_env,
        RPMFLOW_GATEWAY_OUTBOX=str(outbox), RPMFLOW_GATEWAY_BACKEND="sim",
        RPMFLOW_GATEWAY_SIM_SCENARIO="demo",
        RPMFLOW_GATEWAY_SIM_SEED="1", RPMFLOW_GATEWAY_SIM_INTERVAL_S="30",
        RPMFLOW_GATEWAY_SIM_DEVICES="bp:OP-BP-0001"))
    with httpx.Client(base_url=base, timeout=10) as nurse:
        _sign_in(nurse, "nurse", env["NURSE_PW"])

        def in_queue() -> bool:
            assert processes.alive(), processes.log_tail()
            page = nurse.get("/queue")
            assert page.status_code == 200
            return "Operator patient" in page.text and "critical" in page.text.lower()

        try:
            wait_for(in_queue, 90, "the simulated crisis reading to reach the nurse's queue")
        except AssertionError as exc:
            with psycopg.connect(superuser_url) as conn:
                stored = conn.execute("SELECT device_id, patient_id, systolic_mmhg FROM readings").fetchall()
                dead = conn.execute("SELECT topic, reason FROM dead_letters").fetchall()
                flags = conn.execute("SELECT rule_id, severity, patient_id FROM flags").fetchall()
            broker = (world.root / "work" / "mosquitto.log").read_text()[-3000:]
            raise AssertionError(f"{exc}\nreadings={stored}\ndead={dead}\nflags={flags}\n"
                                 f"--- mosquitto\n{broker}\n{processes.log_tail()[-6000:]}") from None
    try:
        wait_for(lambda: _outbox_empty(outbox), 60, "ingest's acks to drain the gateway's outbox")
    except AssertionError as exc:
        db = sqlite3.connect(outbox)
        rows = db.execute("SELECT state, attempts, message_id FROM outbox").fetchall()
        db.close()
        raise AssertionError(f"{exc}: {rows}\n{processes.log_tail()[-5000:]}") from None


def _ready(client: httpx.Client, processes: Processes) -> bool:
    assert processes.alive(), processes.log_tail()
    try:
        return client.get("/healthz").status_code == 200
    except httpx.TransportError:
        return False


def _csrf(client: httpx.Client) -> str:
    return csrf_of(client.get("/account").text)


def _sign_in(client: httpx.Client, username: str, password: str) -> None:
    page = client.get("/login")
    r = client.post("/login", data={"username": username, "password": password,
                                    "csrf_token": csrf_of(page.text), "next": ""})
    assert r.status_code == 303, r.text[:500]


def _outbox_empty(path: Path) -> bool:
    """The readings are in the queue already; the gateway deletes a row only on ingest's
    end-to-end ack on rpm/v1/<id>/acks, so an empty outbox means the acks got through the ACL."""
    db = sqlite3.connect(path)
    try:
        left = db.execute("SELECT count(*) FROM outbox").fetchone()[0]
    finally:
        db.close()
    return bool(left == 0)
