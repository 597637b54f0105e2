"""Fault injection with ``rpmflow-ingest run`` as a real subprocess and a live fleet stream.

Each test ends with every published reading stored exactly once (count and ids) and no valid
message dead-lettered. The PostgreSQL outage lasts ``RPMFLOW_TEST_PG_OUTAGE_S`` seconds of
stream (default 5; set 30 for the long version of the scenario).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

import psycopg
import pytest

from simulators.embedded_mosquitto import EmbeddedMosquitto
from simulators.embedded_postgres import DatabaseUrls, EmbeddedPostgres
from simulators.fleet import FleetConfig, provision
from tests.ingest.helpers import (
    FleetThread,
    IngestProcess,
    assert_stored_exactly_once,
    count,
    make_settings,
    restart_broker_under_load,
)
from tests.waiting import wait_for

Conn = psycopg.Connection[tuple[Any, ...]]
OUTAGE_S = float(os.environ.get("RPMFLOW_TEST_PG_OUTAGE_S", "5"))


def _fleet(broker: EmbeddedMosquitto, count_: int, rate: float) -> tuple[FleetConfig, dict[str, str]]:
    config = FleetConfig(
        gateways=3,
        devices_per_gateway=4,
        rate=rate,
        count=count_,
        window=300,
        prefix=f"f{secrets.token_hex(3)}",
        seed=7,
    )
    return config, provision(broker, config)


def _rows(db: Conn) -> int:
    return count(db, "SELECT count(*) FROM readings")


@pytest.mark.slow
def test_kill_9_mid_stream_then_restart_and_sigterm_drains(
    database_urls: DatabaseUrls, broker: EmbeddedMosquitto, database_url: str, db: Conn, tmp_path: Path
) -> None:
    total = 4000
    ingest = IngestProcess(
        make_settings(database_urls.ingest, broker.add_ingest(), batch_size=200, shared=True),
        tmp_path / "ingest.log"
    )
    config, creds = _fleet(broker, total, rate=1500)
    ingest.start()
    try:
        fleet = FleetThread(broker.port, creds, config, enrol_in=database_url)
        wait_for(lambda: _rows(db) >= 600, 30, "some readings committed")
        ingest.kill()  # SIGKILL: whatever batch was open is neither committed nor acked
        at_kill = fleet.published
        wait_for(
            lambda: fleet.published >= min(at_kill + 1000, total), 30, "the stream going on without ingest"
        )
        ingest.start()  # same client id: the broker resends what the dead process never acked
        report = fleet.join()
        wait_for(lambda: _rows(db) == total, 60, f"all {total} readings stored")
        assert ingest.terminate() == 0, ingest.tail()  # SIGTERM: drain, commit, ack, exit 0
        assert "stopped" in ingest.tail()
    finally:
        ingest.cleanup()
    assert_stored_exactly_once(db, report.message_ids)


@pytest.mark.slow
def test_postgres_outage_during_stream(
    broker: EmbeddedMosquitto, private_postgres: EmbeddedPostgres, tmp_path: Path
) -> None:
    rate = 500.0
    total = int(rate * (OUTAGE_S + 4))
    settings = make_settings(private_postgres.urls().ingest, broker.add_ingest())
    ingest = IngestProcess(settings, tmp_path / "ingest.log")
    config, creds = _fleet(broker, total, rate=rate)
    ingest.start()
    try:
        with psycopg.connect(private_postgres.url, autocommit=True) as db:
            fleet = FleetThread(broker.port, creds, config, enrol_in=private_postgres.url)
            wait_for(lambda: _rows(db) >= 300, 60, "some readings committed")
        private_postgres.stop()
        at_stop = fleet.published
        # The fleet publishes from this process: on a loaded 2-core machine it may fall behind its
        # nominal rate, so the deadline is generous; the database stays down until it is met.
        # Capped at the total: when ingest commits slowly the fleet may be far along already.
        wait_for(lambda: fleet.published >= min(at_stop + OUTAGE_S * rate, total), max(OUTAGE_S * 3, 60),
                 "the stream during the outage")
        assert ingest.alive, ingest.tail()
        private_postgres.start()
        report = fleet.join()
        with psycopg.connect(private_postgres.url, autocommit=True) as db:
            wait_for(lambda: _rows(db) == total, 60, f"all {total} readings stored after the outage")
            assert ingest.alive, ingest.tail()
            assert "not committed, retrying" in ingest.tail() or "retrying" in ingest.log_path.read_text()
            assert_stored_exactly_once(db, report.message_ids)
    finally:
        ingest.cleanup()


@pytest.mark.slow
def test_broker_restart_during_stream(
    database_urls: DatabaseUrls,
    private_broker: EmbeddedMosquitto, database_url: str, db: Conn, tmp_path: Path
) -> None:
    """The plain subscription (``shared=False``): the broker alone keeps everything across its
    restart, so even publishers that stop at the PUBACK lose nothing (the shared default relies on
    the gateways' end-to-end acks: test_shared_restart.py)."""
    total = 3000
    settings = make_settings(database_urls.ingest, private_broker.add_ingest(), shared=False)
    ingest = IngestProcess(settings, tmp_path / "ingest.log")
    config, creds = _fleet(private_broker, total, rate=1000)
    ingest.start()
    try:
        fleet = FleetThread(private_broker.port, creds, config, enrol_in=database_url)
        # Persistence on: the ingest session, its (plain) subscription and its queued messages are
        # saved. A shared subscription would not be (Mosquitto 2.0; docs/ingest.md).
        report = restart_broker_under_load(db, private_broker, fleet, [ingest], total)
    finally:
        ingest.cleanup()
    assert_stored_exactly_once(db, report.message_ids)


@pytest.mark.slow
def test_two_ingest_processes_share_the_stream_and_one_is_killed(
    database_urls: DatabaseUrls, broker: EmbeddedMosquitto, database_url: str, db: Conn, tmp_path: Path
) -> None:
    """Shared subscription: the survivor keeps working, but (DOMAIN.md I1) Mosquitto does not hand
    the dead member's un-acked messages to it: they wait in the dead member's session. The killed
    process therefore comes back with the same account (its client id), and then everything is
    stored once."""
    total = 4000
    first = make_settings(database_urls.ingest, broker.add_ingest(), batch_size=200, shared=True)
    a = IngestProcess(first, tmp_path / "a.log")
    b = IngestProcess(first.override(mqtt_url=broker.add_ingest()), tmp_path / "b.log")  # its own account
    config, creds = _fleet(broker, total, rate=1500)
    a.start()
    b.start()
    try:
        fleet = FleetThread(broker.port, creds, config, enrol_in=database_url)
        wait_for(lambda: _rows(db) >= 600, 30, "some readings committed")
        b.kill()
        at_kill = _rows(db)
        wait_for(lambda: _rows(db) >= at_kill + 500, 30, "the surviving member storing on its own")
        b.start()
        report = fleet.join()
        wait_for(lambda: _rows(db) == total, 60, f"all {total} readings stored")
        assert a.alive, a.tail()
    finally:
        a.cleanup()
        b.cleanup()
    assert_stored_exactly_once(db, report.message_ids)
