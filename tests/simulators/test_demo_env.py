"""The demo's gateway processes: each on the simulated radio, with its own id, seed, outbox and devices."""

from __future__ import annotations

from pathlib import Path

from simulators.demo import Demo


def test_gateway_env_runs_the_sim_backend_without_a_database(tmp_path: Path) -> None:
    demo = Demo(gateways=3, interval_s=7.5, state=tmp_path)
    env = demo._gateway_env(2, "gw-0002", "mqtt://gw-0002:pw@127.0.0.1:1883", tmp_path / "logs")
    assert env["RPMFLOW_GATEWAY_ID"] == "gw-0002"
    assert env["RPMFLOW_MQTT_URL"] == "mqtt://gw-0002:pw@127.0.0.1:1883"
    assert env["RPMFLOW_GATEWAY_OUTBOX"] == str(tmp_path / "gw-0002-outbox.sqlite3")
    assert env["RPMFLOW_GATEWAY_BACKEND"] == "sim"
    assert env["RPMFLOW_GATEWAY_SIM_SEED"] == "2"
    assert env["RPMFLOW_GATEWAY_SIM_INTERVAL_S"] == "7.5"
    assert env["RPMFLOW_GATEWAY_SIM_DEVICES"].startswith("bp:SIM-BP-0002,glucose:SIM-GL-0002")
    assert "RPMFLOW_DATABASE_URL" not in env, "a gateway never gets a database login"
