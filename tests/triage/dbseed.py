"""Minimal rows for triage DB tests: a patient with devices, and readings as ingest would write them."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

import psycopg


def patient(
    conn: psycopg.Connection[Any],
    *,
    tz: str = "America/New_York",
    assigned_from: datetime,
    gateway_id: str = "gw-t",
) -> int:
    row = conn.execute(
        "INSERT INTO patients (mrn, display_name, state, timezone) VALUES (%s, %s, 'NY', %s)"
        " RETURNING patient_id",
        (f"MRN-{secrets.token_hex(4)}", "Test Patient", tz),
    ).fetchone()
    assert row is not None
    pid = int(row[0])
    for kind, prefix in (("blood_pressure", "BP"), ("glucose", "GL")):
        dev = f"{prefix}-{pid}"
        conn.execute(
            "INSERT INTO devices (device_id, kind, last_gateway_id) VALUES (%s, %s, %s)",
            (dev, kind, gateway_id),
        )
        conn.execute(
            "INSERT INTO device_assignments (device_id, patient_id, valid_from) VALUES (%s, %s, %s)",
            (dev, pid, assigned_from),
        )
        conn.execute(
            "INSERT INTO device_enrolments (device_id, gateway_id, valid_from, enrolled_by, reason)"
            " VALUES (%s, %s, %s, 'test', 'test set-up')",
            (dev, gateway_id, assigned_from),
        )
    return pid


def reading(
    conn: psycopg.Connection[Any],
    pid: int,
    at: datetime,
    *,
    sbp: float | None = None,
    dbp: float | None = None,
    glucose: float | None = None,
    quality: str = "valid",
    measurement: str = "ok",
    gateway_id: str = "gw-t",
    ingested_at: datetime | None = None,
) -> int:
    kind = "glucose" if glucose is not None or measurement.startswith("out_of_range") else "blood_pressure"
    dev = ("GL-" if kind == "glucose" else "BP-") + str(pid)
    row = conn.execute(
        "INSERT INTO readings (message_id, gateway_id, device_id, patient_id, kind, measured_at, received_at,"
        " ingested_at, quality, measurement, systolic_mmhg, diastolic_mmhg, pulse_bpm, glucose_mg_dl,"
        " raw) VALUES (%s, %s, %s, %s, %s, %s, %s, coalesce(%s, now()), %s, %s, %s, %s, %s, %s, '\\x00')"
        " RETURNING reading_id",
        (
            secrets.token_hex(16),
            gateway_id,
            dev,
            pid,
            kind,
            at,
            at,
            ingested_at,
            quality,
            measurement,
            sbp,
            dbp,
            70 if sbp else None,
            glucose,
        ),
    ).fetchone()
    assert row is not None
    return int(row[0])
