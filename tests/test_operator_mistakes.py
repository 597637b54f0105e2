"""An operator's mistakes, through the real console scripts against the real servers: each ends
in one line naming what is wrong and a non-zero exit (2 configuration, 3 a server refused us or
stayed unreachable past the bound, 4 a local port in use), never a traceback nor a silent loop."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from simulators.embedded_mosquitto import EmbeddedMosquitto, make_local_ca
from simulators.server_host import free_port
from tests.waiting import wait_for

BIN = Path(sys.executable).parent
# The commands that use the database, each with the arguments it needs to start.
DB_COMMANDS = {
    "ingest-run": ["rpmflow-ingest", "run"],
    "ingest-migrate": ["rpmflow-ingest", "migrate"],
    "triage-run": ["rpmflow-triage", "run"],
    "triage-once": ["rpmflow-triage", "once"],
    "triage-audit-verify": ["rpmflow-triage", "audit-verify"],
    "triage-audit-anchor": ["rpmflow-triage", "audit-anchor", "--file", os.devnull],  # never reached
    "dashboard-run": ["rpmflow-dashboard", "run", "--port", "0"],
    "dashboard-create-token": ["rpmflow-dashboard", "create-token", "--username", "nobody"],
}
# One-shot commands connect once (no start-up retry): a refusal ends them at the first attempt.
ONE_SHOT = ("triage-once", "triage-audit-verify", "triage-audit-anchor", "dashboard-create-token")
FAST = {
    "RPMFLOW_INGEST_STARTUP_TIMEOUT_S": "1", "RPMFLOW_INGEST_AUTH_TIMEOUT_S": "1",
    "RPMFLOW_TRIAGE_STARTUP_TIMEOUT_S": "1", "RPMFLOW_TRIAGE_AUTH_TIMEOUT_S": "1",
    "RPMFLOW_DASHBOARD_STARTUP_TIMEOUT_S": "1", "RPMFLOW_DASHBOARD_AUTH_TIMEOUT_S": "1",
}


def _replace(url: str, *, password: str | None = None, port: int | None = None,
             path: str | None = None) -> str:
    p = urlsplit(url)
    netloc = f"{p.username}:{password if password is not None else p.password}@{p.hostname}:{port or p.port}"
    return urlunsplit((p.scheme, netloc, path if path is not None else p.path, p.query, p.fragment))


def run_script(argv: list[str], env: dict[str, str], timeout: float = 60) -> tuple[int, str, float]:
    """(exit code, stderr + stdout, seconds taken) of a console script with a clean environment."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RPMFLOW_")}
    started = time.monotonic()
    proc = subprocess.run([str(BIN / argv[0]), *argv[1:]], env={**clean, **env}, capture_output=True,
                          text=True, timeout=timeout, check=False)
    return proc.returncode, proc.stderr + proc.stdout, time.monotonic() - started


def assert_one_line(prog: str, output: str, *fragments: str, secret: str | None = None) -> str:
    assert "Traceback" not in output, output
    if secret:
        assert secret not in output, output
    last = output.strip().splitlines()[-1] if output.strip() else ""
    fatal = [line for line in output.splitlines() if line.startswith(f"{prog}: ")]
    assert len(fatal) == 1, output
    for fragment in fragments:
        assert fragment in fatal[0], output
    assert last == fatal[0] or not last.startswith(prog), output
    return fatal[0]


@pytest.fixture
def env(database_url: str, broker: EmbeddedMosquitto) -> dict[str, str]:
    return {"RPMFLOW_DATABASE_URL": database_url, "RPMFLOW_MQTT_URL": broker.add_ingest(), **FAST}


@pytest.mark.parametrize("command", DB_COMMANDS)
def test_malformed_database_url(command: str, env: dict[str, str]) -> None:
    argv = DB_COMMANDS[command]
    code, out, _ = run_script(argv, {**env, "RPMFLOW_DATABASE_URL": "postgresql://u:hunter2@db:port/x"})
    assert code == 2, out
    assert_one_line(argv[0], out, "RPMFLOW_DATABASE_URL", "--database-url", "port", secret="hunter2")


@pytest.mark.parametrize("command", DB_COMMANDS)
def test_nothing_listening_on_the_port_is_retried_then_exits(command: str, env: dict[str, str]) -> None:
    argv = DB_COMMANDS[command]
    url = _replace(env["RPMFLOW_DATABASE_URL"], port=free_port())
    code, out, took = run_script(argv, {**env, "RPMFLOW_DATABASE_URL": url})
    assert code == 3, out
    assert_one_line(argv[0], out, "cannot", "PostgreSQL at 127.0.0.1", secret=urlsplit(url).password)
    assert took < 30


@pytest.mark.parametrize("command", DB_COMMANDS)
def test_wrong_password_is_retried_for_the_bound_then_exits(command: str, env: dict[str, str]) -> None:
    argv = DB_COMMANDS[command]
    url = _replace(env["RPMFLOW_DATABASE_URL"], password="not-the-password")
    code, out, took = run_script(argv, {**env, "RPMFLOW_DATABASE_URL": url})
    assert code == 3, out
    line = assert_one_line(argv[0], out, "password authentication failed", secret="not-the-password")
    assert "gave up after" in line or command in ONE_SHOT
    assert took < 30


@pytest.mark.parametrize("command", DB_COMMANDS)
def test_missing_database_exits_at_once(command: str, env: dict[str, str]) -> None:
    argv = DB_COMMANDS[command]
    url = _replace(env["RPMFLOW_DATABASE_URL"], path="/no_such_database")
    code, out, _ = run_script(argv, {**env, "RPMFLOW_DATABASE_URL": url,
                                     "RPMFLOW_INGEST_STARTUP_TIMEOUT_S": "60",
                                     "RPMFLOW_TRIAGE_STARTUP_TIMEOUT_S": "60",
                                     "RPMFLOW_DASHBOARD_STARTUP_TIMEOUT_S": "60"}, timeout=30)
    assert code == 3, out
    assert_one_line(argv[0], out, 'database "no_such_database" does not exist')


@pytest.mark.parametrize(("argv", "variable"), [
    (["rpmflow-ingest", "run", "--batch-size", "0"], "RPMFLOW_INGEST_BATCH_SIZE (flag --batch-size)"),
    (["rpmflow-triage", "once", "--shards", "many"], "RPMFLOW_TRIAGE_SHARDS (flag --shards)"),
    (["rpmflow-dashboard", "run", "--port", "99999"], "RPMFLOW_DASHBOARD_PORT (flag --port)"),
    (["rpmflow-ingest", "run", "--log-level", "LOUD"], "RPMFLOW_INGEST_LOG_LEVEL (flag --log-level)"),
])
def test_invalid_setting_names_the_variable_and_the_flag(argv: list[str], variable: str,
                                                         env: dict[str, str]) -> None:
    code, out, _ = run_script(argv, env)
    assert code == 2, out
    assert_one_line(argv[0], out, "configuration error", variable)


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_dashboard_port_already_in_use(env: dict[str, str], taken_port: int) -> None:
    code, out, _ = run_script(["rpmflow-dashboard", "run", "--port", str(taken_port)], env)
    assert code == 4, out
    assert_one_line("rpmflow-dashboard", out, f"cannot listen on 127.0.0.1:{taken_port}", "--port")


def test_ingest_metrics_port_already_in_use(env: dict[str, str], taken_port: int) -> None:
    code, out, _ = run_script(["rpmflow-ingest", "run", "--metrics-port", str(taken_port)], env)
    assert code == 4, out
    assert_one_line("rpmflow-ingest", out, f"cannot serve metrics on 127.0.0.1:{taken_port}",
                    "--metrics-port")


# -- the gateway and the broker -------------------------------------------------------------------


def _gateway_env(gateway: str, url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"RPMFLOW_GATEWAY_ID": gateway, "RPMFLOW_GATEWAY_MQTT_URL": url,
            "RPMFLOW_GATEWAY_OUTBOX": str(tmp_path / "outbox.sqlite3"), "RPMFLOW_GATEWAY_BACKEND": "sim",
            "RPMFLOW_GATEWAY_SIM_DEVICES": "bp:OP-BP-1", "RPMFLOW_GATEWAY_SIM_INTERVAL_S": "0",
            "RPMFLOW_GATEWAY_SIM_EPOCH": "2026-03-01T08:00:00", "RPMFLOW_GATEWAY_SCAN_INTERVAL_S": "0.5",
            **extra}


def test_gateway_broker_refusing_credentials_exits_after_the_bound(
        broker: EmbeddedMosquitto, gateway_id: str, tmp_path: Path) -> None:
    url = f"mqtt://{gateway_id}:wrong-password@127.0.0.1:{broker.port}"
    code, out, took = run_script(["rpmflow-gateway", "run"], _gateway_env(
        gateway_id, url, tmp_path, RPMFLOW_GATEWAY_AUTH_TIMEOUT_S="1"))
    assert code == 3, out
    assert_one_line("rpmflow-gateway", out, f"refused gateway {gateway_id}", "gave up after",
                    secret="wrong-password")
    assert took < 40


def test_gateway_bad_ca_file(broker: EmbeddedMosquitto, gateway_id: str, tmp_path: Path) -> None:
    url = f"mqtts://{gateway_id}:pw@127.0.0.1:{broker.port}"
    code, out, _ = run_script(["rpmflow-gateway", "run"], _gateway_env(
        gateway_id, url, tmp_path, RPMFLOW_GATEWAY_MQTT_CA_FILE=str(tmp_path / "missing-ca.pem")))
    assert code == 2, out
    assert_one_line("rpmflow-gateway", out, "RPMFLOW_GATEWAY_MQTT_CA_FILE", "missing-ca.pem")


def _run_until(argv: list[str], env: dict[str, str], log_path: Path, needle: str, timeout: float) -> str:
    """Start a service, wait until its log shows ``needle``, stop it with SIGTERM; its log."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RPMFLOW_")}
    with log_path.open("wb") as log:
        proc = subprocess.Popen([str(BIN / argv[0]), *argv[1:]], env={**clean, **env}, stdout=log,
                                stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: needle in log_path.read_text() or proc.poll() is not None, timeout, needle)
    finally:
        proc.terminate()
        proc.wait(30)
    return log_path.read_text()


def test_gateway_tls_with_a_certificate_for_another_host_says_why(tmp_path: Path) -> None:
    b = EmbeddedMosquitto.create(tls=True)
    make_local_ca(b.state_dir / "tls", "192.0.2.1")
    b.start()
    try:
        gw = "gw-tls-host"
        b.add_gateways([gw])
        env = _gateway_env(gw, b.tls_url_for(gw), tmp_path, RPMFLOW_GATEWAY_MQTT_CA_FILE=str(b.ca_file))
        out = _run_until(["rpmflow-gateway", "run"], env, tmp_path / "gw.log",
                         "TLS certificate not accepted", 30)
    finally:
        b.destroy()
    assert "Traceback" not in out
    line = next(x for x in out.splitlines() if "TLS certificate not accepted" in x)
    assert f"cannot connect to broker 127.0.0.1:{b.tls_port} (TLS)" in line and "127.0.0.1" in line


def test_gateway_topic_refused_by_the_acl_is_logged_and_never_counted_delivered(
        broker: EmbeddedMosquitto, tmp_path: Path) -> None:
    own, other = f"gw-own-{os.getpid()}", f"gw-other-{os.getpid()}"
    broker.add_gateways([own, other])
    # the credentials of one gateway, the id (and so the topics) of another: the ACL refuses them
    env = _gateway_env(other, broker.url_for(own), tmp_path)
    out = _run_until(["rpmflow-gateway", "run"], env, tmp_path / "gw.log", "broker refused topic", 30)
    assert "Traceback" not in out
    assert f"broker refused topic rpm/v1/{other}/readings: not authorized (0x87)" in out, out
    with sqlite3.connect(tmp_path / "outbox.sqlite3") as db:
        states = dict(db.execute("SELECT state, count(*) FROM outbox GROUP BY state").fetchall())
    assert states.get("pending", 0) + states.get("in_flight", 0) > 0, states
    assert "published" not in states, states


@pytest.mark.parametrize("workers", ["0", "2"])
def test_ingest_broker_refusing_credentials_exits_after_the_bound(
        env: dict[str, str], broker: EmbeddedMosquitto, workers: str) -> None:
    url = f"mqtt://rpmflow-ingest:wrong-password@127.0.0.1:{broker.port}"
    code, out, took = run_script(["rpmflow-ingest", "run", "--workers", workers],
                                 {**env, "RPMFLOW_MQTT_URL": url})
    assert code == 3, out
    assert_one_line("rpmflow-ingest", out, "refused ingest", "gave up after", secret="wrong-password")
    assert took < 40
