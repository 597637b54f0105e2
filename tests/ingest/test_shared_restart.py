"""Scale-out by default: three ingest processes on one ``$share`` group across a broker restart.

Mosquitto 2.0.11 restores the processes' persistent sessions after a restart but not their
``$share`` subscriptions, nor the messages queued or in flight on them. Each process subscribes
again on every connect (idempotent), and the gateways (here the fleet in confirm mode, as
``gateway/publisher.py`` does) re-send every reading ingest has not acknowledged end to end. So
every reading is stored exactly once, whatever the broker dropped.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import psycopg
import pytest

from simulators.embedded_mosquitto import EmbeddedMosquitto
from simulators.embedded_postgres import DatabaseUrls
from simulators.fleet import FleetConfig, provision
from tests.ingest.helpers import (
    FleetThread,
    IngestProcess,
    assert_stored_exactly_once,
    make_settings,
    restart_broker_under_load,
)

Conn = psycopg.Connection[tuple[Any, ...]]


def _subscriptions(ingest: IngestProcess) -> int:
    return ingest.log_path.read_text(errors="replace").count("subscribed to $share/")


@pytest.mark.slow
def test_three_shared_processes_survive_a_broker_restart_under_load(
    database_urls: DatabaseUrls, private_broker: EmbeddedMosquitto, db: Conn, tmp_path: Path
) -> None:
    total = 4000
    base = make_settings(database_urls.ingest, private_broker.add_ingest(), batch_size=200, workers=1)
    assert base.shared, "shared subscriptions are the default"
    # Each process its own MQTT account: the broker binds client ids to usernames.
    ingests = [IngestProcess(base.override(mqtt_url=private_broker.add_ingest()), tmp_path / f"ingest{i}.log")
               for i in range(3)]
    config = FleetConfig(gateways=4, devices_per_gateway=4, rate=800, count=total, window=300,
                         prefix=f"s{secrets.token_hex(3)}", seed=5, confirm=True, confirm_timeout_s=4.0)
    creds = provision(private_broker, config)
    for ingest in ingests:
        ingest.start()
    try:
        fleet = FleetThread(private_broker.port, creds, config, enrol_in=database_urls.superuser)
        # every process comes back and subscribes again (the broker forgot the $share subscription)
        report = restart_broker_under_load(db, private_broker, fleet, ingests, total,
                                           lambda: all(_subscriptions(i) >= 2 for i in ingests))
    finally:
        for ingest in ingests:
            ingest.cleanup()
    print("\n" + report.table())
    assert report.confirmed == total, report.table()
    assert_stored_exactly_once(db, report.message_ids)
