"""Start-up: ingest waits for an unreachable database instead of exiting (a PostgreSQL restart
while ingest starts must not need a supervisor)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from simulators.embedded_mosquitto import EmbeddedMosquitto
from simulators.embedded_postgres import EmbeddedPostgres
from tests.waiting import wait_for


def test_ingest_waits_for_the_database_then_checks_the_schema_and_subscribes(
    broker: EmbeddedMosquitto, private_postgres: EmbeddedPostgres, tmp_path: Path
) -> None:
    private_postgres.stop()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RPMFLOW_")}
    env.update(
        RPMFLOW_DATABASE_URL=private_postgres.urls().ingest,
        RPMFLOW_INGEST_MQTT_URL=broker.add_ingest(),
    )
    log_path = tmp_path / "ingest.log"
    with log_path.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "ingest.cli", "run"], env=env, stdout=out,
                                stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: b"retrying" in log_path.read_bytes(), 30, "a retry line while the DB is down")
        assert proc.poll() is None, log_path.read_text()
        private_postgres.start()
        wait_for(lambda: b"subscribed to" in log_path.read_bytes(), 60, "subscribed once the DB is back")
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, log_path.read_text()[-2000:]
