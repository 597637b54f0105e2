"""A scale and an oximeter, end to end: exact bytes → gateway → MQTT → ingest → readings, once each.

The gateway and ingest run as their console scripts over the session's real Mosquitto and
PostgreSQL; the devices are the simulators (the BLE seam is the only fake). The test rebuilds the
same simulated devices (same seed and epoch) to know what must be stored: every weighing and every
stored spot-check exactly once (matched on the device's bytes), and continuous oximetry as summaries
whose sample counts add up to the usable samples the oximeter sent.
"""

from __future__ import annotations

import os
import secrets
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg

from simulators.devices import build_devices
from simulators.embedded_mosquitto import EmbeddedMosquitto
from simulators.probe import wait_until_ingest_subscribed
from tests.ingest.helpers import enrol
from tests.test_end_to_end import Processes, processes  # noqa: F401  (the fixture)
from tests.waiting import wait_for

EPOCH = "2026-03-15T12:00:00"


def raw_hex_sql(conn: psycopg.Connection[Any]) -> str:
    """The device bytes as hex, whether readings keeps them as text (raw_hex) or bytea (raw)."""
    row = conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'readings'"
        " AND column_name IN ('raw', 'raw_hex') ORDER BY column_name LIMIT 1"
    ).fetchone()
    assert row is not None
    return "encode(raw, 'hex')" if row[0] == "raw" else "raw_hex"


def _script(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def test_weight_and_spo2_are_stored_exactly_once(
    database_url: str, broker: EmbeddedMosquitto, processes: Processes, tmp_path: Path  # noqa: F811
) -> None:
    gw = f"gw-vit-{secrets.token_hex(3)}"
    tag = secrets.token_hex(3).upper()
    spec = f"scale:WS-{tag},oximeter:OX-{tag}"
    broker.add_gateways([gw])
    with psycopg.connect(database_url, autocommit=True) as conn:  # ingest takes them only from gw
        enrol(conn, f"WS-{tag}", gw, "weight")
        enrol(conn, f"OX-{tag}", gw, "spo2")
    base = {k: v for k, v in os.environ.items() if not k.startswith("RPMFLOW_")}
    base.update(RPMFLOW_DATABASE_URL=database_url, PYTHONUNBUFFERED="1")
    group = f"vit{secrets.token_hex(3)}"
    processes.start(
        "ingest",
        [_script("rpmflow-ingest"), "run"],
        dict(base, RPMFLOW_MQTT_URL=broker.add_ingest(), RPMFLOW_INGEST_GROUP=group),
    )
    wait_until_ingest_subscribed(broker.url_for(gw), database_url)
    processes.start(
        "gateway",
        [_script("rpmflow-gateway"), "run"],
        dict(base, RPMFLOW_GATEWAY_ID=gw, RPMFLOW_MQTT_URL=broker.url_for(gw),
             RPMFLOW_GATEWAY_OUTBOX=str(tmp_path / "outbox.sqlite3"), RPMFLOW_GATEWAY_BACKEND="sim",
             RPMFLOW_GATEWAY_SIM_SCENARIO="normal", RPMFLOW_GATEWAY_SIM_SEED="7",
             RPMFLOW_GATEWAY_SIM_EPOCH=EPOCH, RPMFLOW_GATEWAY_SESSION_IDLE_S="0.5",
             RPMFLOW_GATEWAY_SIM_DEVICES=spec),
    )
    devices = build_devices(spec, "normal", seed=7, epoch=datetime.fromisoformat(EPOCH))
    scale, oximeter = devices
    weighings = {r.raw.hex() for r in scale.produced if r.kind == "weight"}
    spots = {r.raw.hex() for r in oximeter.produced if r.kind == "spo2"}
    samples = [r for r in oximeter.produced if r.kind == "spo2_sample"]
    assert len(weighings) == 3 and len(spots) == 3 and len(samples) == 30

    def rows(kind: str, device: str) -> list[tuple[str, str, float | None, float | None, int | None]]:
        assert processes.alive(), processes.log_tail()
        with psycopg.connect(database_url) as conn:
            got = conn.execute(
                f"SELECT {raw_hex_sql(conn)}, quality, weight_kg, spo2_pct, sample_count FROM readings"
                " WHERE kind = %s AND device_id = %s",
                (kind, device),
            ).fetchall()
            return [(str(r[0]), str(r[1]), r[2], r[3], r[4]) for r in got]

    def summaries_complete() -> bool:
        got = [r for r in rows("spo2", oximeter.serial) if r[4] is not None]
        return sum(r[4] or 0 for r in got) >= len(samples)

    try:
        wait_for(lambda: len(rows("weight", scale.serial)) >= len(weighings), 60, "the weighings stored")
        wait_for(summaries_complete, 60, "the continuous oximetry summaries stored")
    except AssertionError:
        with psycopg.connect(database_url) as conn:
            dead = conn.execute("SELECT topic, reason FROM dead_letters").fetchall()
        raise AssertionError(f"dead_letters={dead}\n{processes.log_tail()}") from None
    weight_rows = rows("weight", scale.serial)
    assert sorted(r[0] for r in weight_rows) == sorted(weighings), "each weighing exactly once"
    assert all(r[1] == "valid" and r[2] is not None and 20 < r[2] < 200 for r in weight_rows)
    spo2_rows = rows("spo2", oximeter.serial)
    spot_rows = [r for r in spo2_rows if r[4] is None]
    assert sorted(r[0] for r in spot_rows) == sorted(spots), "each stored spot-check exactly once"
    assert all(r[1] == "valid" and r[3] is not None and 90 <= r[3] <= 100 for r in spot_rows)
    summary_rows = [r for r in spo2_rows if r[4] is not None]
    assert sum(r[4] or 0 for r in summary_rows) == len(samples), "no sample summarised twice or lost"
    assert min(r[3] or 0 for r in summary_rows) >= 93.0
