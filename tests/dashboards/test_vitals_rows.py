"""The patient page lists weight and SpO2 readings in their own units (never "None mg/dL")."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg

from tests.dashboards.seed import World, add_reading

Db = psycopg.Connection[tuple[Any, ...]]


def test_weight_and_spo2_rows(signed_in: Any, world: World, db: Db) -> None:
    now = datetime.now(UTC) - timedelta(hours=1)
    weight = add_reading(db, world, now, kind="weight", systolic=None, diastolic=None)
    spo2 = add_reading(db, world, now - timedelta(minutes=5), kind="spo2", systolic=None, diastolic=None)
    db.execute("UPDATE readings SET weight_kg = 81.30189640, original = %s WHERE reading_id = %s",
               (json.dumps({"unit": "lb", "weight": 179.24}), weight))
    db.execute("UPDATE readings SET spo2_pct = 95.5, spo2_min_pct = 88, sample_count = 60, pulse_bpm = 64"
               " WHERE reading_id = %s", (spo2,))
    client: httpx.Client = signed_in("nurse")
    page = client.get(f"/patients/{world.patient_id}", params={"days": 7})
    assert page.status_code == 200
    assert "81.3 kg (179.2 lb)" in page.text
    assert "SpO2 95.5 % (lowest 88 %, 60 samples), 64 /min" in page.text
    assert "None mg/dL" not in page.text
