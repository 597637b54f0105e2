"""The walking skeleton: a simulated cuff's crisis reading reaches the nurse's queue page.

Every component runs as its own process through its console script, over the real Mosquitto
and the real PostgreSQL of the session: device bytes → gateway decode → outbox → MQTT → ingest
→ readings → triage rule → flags → dashboard queue (signed in as a nurse).
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from simulators.demo_seed import seed_demo
from simulators.embedded_mosquitto import EmbeddedMosquitto
from simulators.embedded_postgres import DatabaseUrls
from simulators.probe import wait_until_ingest_subscribed
from simulators.server_host import free_port
from tests.dashboards.live import csrf_of
from tests.waiting import wait_for

PASSWORD = "e2e-password"


def _script(name: str) -> str:
    return str(Path(sys.executable).parent / name)


class Processes:
    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        out = (self.logs / f"{name}.log").open("wb")
        self.procs[name] = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        out.close()

    def alive(self) -> bool:
        return all(p.poll() is None for p in self.procs.values())

    def log_tail(self) -> str:
        return "\n".join(
            f"--- {f.name}\n{f.read_text(errors='replace')[-6000:]}" for f in sorted(self.logs.glob("*.log"))
        )

    def stop(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for name, p in self.procs.items():
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(10)
                raise AssertionError(f"{name} ignored SIGTERM for 20 s") from None


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    procs = Processes(tmp_path)
    try:
        yield procs
    finally:
        procs.stop()


def test_crisis_reading_travels_from_cuff_to_nurse_queue(
    database_urls: DatabaseUrls, broker: EmbeddedMosquitto, processes: Processes, tmp_path: Path
) -> None:
    database_url = database_urls.superuser  # the test's own look-ups; each service has its role
    gw = f"gw-e2e-{secrets.token_hex(3)}"
    broker.add_gateways([gw])
    [patient] = seed_demo(database_urls.dashboard, [gw], PASSWORD)
    bp_device, gl_device = patient.devices

    base = {k: v for k, v in os.environ.items() if not k.startswith("RPMFLOW_")}
    base.update(PYTHONUNBUFFERED="1")
    group = f"e2e{secrets.token_hex(3)}"
    processes.start(
        "ingest",
        [_script("rpmflow-ingest"), "run"],
        dict(base, RPMFLOW_DATABASE_URL=database_urls.ingest, RPMFLOW_MQTT_URL=broker.add_ingest(),
             RPMFLOW_INGEST_GROUP=group),
    )
    wait_until_ingest_subscribed(broker.url_for(gw), database_url)
    processes.start("triage", [_script("rpmflow-triage"), "run"],
                    dict(base, RPMFLOW_DATABASE_URL=database_urls.triage, RPMFLOW_TRIAGE_INTERVAL_S="1"))
    port = free_port()
    processes.start(
        "dashboard",
        [_script("rpmflow-dashboard"), "run"],
        dict(base, RPMFLOW_DATABASE_URL=database_urls.dashboard, RPMFLOW_DASHBOARD_PORT=str(port),
             RPMFLOW_DASHBOARD_SECURE_COOKIES="false"),
    )
    processes.start(
        "gateway",
        [_script("rpmflow-gateway"), "run"],
        dict(base, RPMFLOW_GATEWAY_ID=gw, RPMFLOW_MQTT_URL=broker.url_for(gw),
             RPMFLOW_GATEWAY_OUTBOX=str(tmp_path / "outbox.sqlite3"), RPMFLOW_GATEWAY_BACKEND="sim",
             RPMFLOW_GATEWAY_SIM_SCENARIO="demo", RPMFLOW_GATEWAY_SIM_SEED="1",
             RPMFLOW_GATEWAY_SIM_INTERVAL_S="30",
             RPMFLOW_GATEWAY_SIM_DEVICES=f"bp:{bp_device},glucose:{gl_device}"),
    )

    def crisis_reading() -> tuple[object, ...] | None:
        assert processes.alive(), processes.log_tail()
        with psycopg.connect(database_url) as conn:
            return conn.execute(
                "SELECT reading_id, systolic_mmhg, diastolic_mmhg, patient_id FROM readings"
                " WHERE device_id = %s AND systolic_mmhg >= 180 AND quality = 'valid'",
                (bp_device,),
            ).fetchone()

    try:
        reading = wait_for(crisis_reading, 60, "the simulated crisis reading to be stored")
    except AssertionError:
        with psycopg.connect(database_url) as conn:
            stored = conn.execute("SELECT device_id, quality, systolic_mmhg FROM readings").fetchall()
            dead = conn.execute("SELECT topic, reason FROM dead_letters").fetchall()
        raise AssertionError(f"readings={stored} dead_letters={dead}\n{processes.log_tail()}") from None
    assert reading is not None
    assert reading[3] == patient.patient_id, "the reading maps to the patient the cuff is assigned to"

    def critical_flag() -> tuple[object, ...] | None:
        assert processes.alive(), processes.log_tail()
        with psycopg.connect(database_url) as conn:
            return conn.execute(
                "SELECT flag_id, severity, state FROM flags WHERE patient_id = %s AND severity = 'critical'",
                (patient.patient_id,),
            ).fetchone()

    flag = wait_for(critical_flag, 30, "triage to raise a critical flag")
    assert flag is not None
    assert flag[2] == "open"

    url = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=url, timeout=10) as client:
        wait_for(lambda: _healthy(client), 30, "the dashboard to answer /healthz")
        page = client.get("/login")
        signed_in = client.post(
            "/login",
            data={"username": "nurse", "password": PASSWORD, "csrf_token": csrf_of(page.text), "next": ""},
        )
        assert signed_in.status_code == 303, signed_in.text[:500]
        assert client.cookies, "signing in set no session cookie"
        queue = client.get("/queue")
        assert queue.status_code == 200
        assert patient.mrn in queue.text
        assert f"/flags/{flag[0]}" in queue.text
        assert "critical" in queue.text.lower()
    _services_connect_without_power(database_url)


def _services_connect_without_power(superuser_url: str) -> None:
    """Seen from outside, as the cluster superuser: every service is connected as its own role,
    and none of those roles is a superuser, may rewrite the audit log or run programs.

    Only client connections count (TimescaleDB's job scheduler is a server background worker
    running as the bootstrap superuser). This test's own superuser look-ups are closed by now, but
    on a loaded machine a closed connection's backend can stay listed for a moment, so the check is
    repeated until it holds: a service's long-lived connection as a powerful role never goes away.
    """
    with psycopg.connect(superuser_url, autocommit=True) as conn:

        def connected() -> set[str]:
            return {str(r[0]) for r in conn.execute(
                "SELECT DISTINCT usename FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND backend_type = 'client backend'")}

        def powerful() -> list[str]:
            return [str(r[0]) for r in conn.execute(
                "SELECT rolname FROM pg_roles WHERE rolname = ANY(%s) AND (rolsuper OR rolcreaterole OR"
                " rolcreatedb OR pg_has_role(oid, 'pg_execute_server_program', 'MEMBER')"
                " OR pg_has_role(oid, 'pg_read_server_files', 'MEMBER')"
                " OR has_table_privilege(oid, 'audit_log', 'UPDATE')"
                " OR has_table_privilege(oid, 'audit_log', 'DELETE')"
                " OR has_table_privilege(oid, 'audit_log', 'TRUNCATE'))", (sorted(connected()),))]

        services = {"rpmflow_ingest", "rpmflow_triage", "rpmflow_dashboard"}
        assert services <= connected(), connected()
        try:
            wait_for(lambda: not powerful(), 15, "no connection with too much power")
        except AssertionError as exc:
            raise AssertionError(f"connected with too much power: {powerful()}") from exc
        assert services <= connected(), connected()


def _healthy(client: httpx.Client) -> bool:
    try:
        return client.get("/healthz").status_code == 200
    except httpx.TransportError:
        return False
