"""The fleet load generator with scales and oximeters: every weight and spo2 reading stored once."""

from __future__ import annotations

import random
import secrets
from datetime import UTC, datetime
from typing import Any

import psycopg

from ingest.contract import ValidReading, decode
from ingest.plausibility import grade
from simulators.embedded_mosquitto import EmbeddedMosquitto
from simulators.fleet import FleetConfig, make_devices, provision
from simulators.fleet_messages import VirtualDevice, build_reading
from tests.ingest.helpers import FleetThread, make_settings, running_consumer
from tests.waiting import wait_for


def test_fleet_readings_of_every_kind_pass_the_contract() -> None:
    now = datetime(2026, 3, 15, 8, 0, tzinfo=UTC)
    for kind in ("blood_pressure", "glucose", "weight", "spo2"):
        dev = VirtualDevice(f"SIM-{kind}", kind, "SIM", random.Random(1))
        for _ in range(50):
            mid, payload = build_reading("gw-f", dev, dev.next_time(now), now)
            r = decode("rpm/v1/gw-f/readings", payload)
            assert isinstance(r, ValidReading) and r.message_id == mid and r.kind == kind
            assert grade(r, now=now).quality == "valid"


def test_vitals_share_zero_keeps_the_old_fleet() -> None:
    old = FleetConfig(gateways=3, devices_per_gateway=5, seed=11)
    kinds = {d.kind for _, d in make_devices(old, old.gateway_ids())}
    assert kinds <= {"blood_pressure", "glucose"}
    mixed = FleetConfig(gateways=3, devices_per_gateway=5, seed=11, vitals_share=0.6)
    assert {"weight", "spo2"} <= {d.kind for _, d in make_devices(mixed, mixed.gateway_ids())}


def test_fleet_with_scales_and_oximeters_stores_each_reading_once(
    broker: EmbeddedMosquitto, database_url: str, db: psycopg.Connection[Any]
) -> None:
    prefix = f"v{secrets.token_hex(3)}"
    config = FleetConfig(
        gateways=2,
        devices_per_gateway=6,
        rate=0,
        count=240,
        window=100,
        prefix=prefix,
        seed=5,
        vitals_share=0.5,
    )
    creds = provision(broker, config)
    settings = make_settings(database_url, broker.add_ingest())
    with running_consumer(settings):
        report = FleetThread(broker.port, creds, config, enrol_in=database_url).join()
        ids = report.message_ids

        def stored() -> int:
            row = db.execute(
                "SELECT count(*) FROM readings WHERE gateway_id LIKE %s", (prefix + "%",)
            ).fetchone()
            return int(row[0]) if row else 0

        wait_for(lambda: stored() >= len(ids), 60, f"all {len(ids)} fleet readings stored")
    rows = db.execute(
        "SELECT message_id::text, kind, quality FROM readings WHERE gateway_id LIKE %s", (prefix + "%",)
    ).fetchall()
    assert len(rows) == len(ids) == 240
    assert {str(r[0]).replace("-", "") for r in rows} == set(ids)
    by_kind = {k: sum(1 for r in rows if r[1] == k) for k in ("weight", "spo2")}
    assert all(n > 0 for n in by_kind.values()), by_kind
    assert {r[2] for r in rows} == {"valid"}
