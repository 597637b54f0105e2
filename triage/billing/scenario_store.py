"""The writes behind :mod:`triage.billing.drive`: a reading and a flag stored as their own paths would.

Neither table is billing's: readings, reading keys and devices are ingest's family, flags triage's.
These statements are billing's writes into them for scenario tables, back-fills and tests, shaped
like the rows ingest's writer and the triage rules write (the reading's patient is the one whose
device assignment is valid at ``measured_at``). Validation stays in drive.py; each function runs
on the caller's connection and transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from ingest.writer import keys_table

Conn = psycopg.Connection[Any]


@dataclass(frozen=True)
class ReadingRow:
    """One reading as drive.add_reading states it (values already placed by kind)."""

    message_id: str
    gateway_id: str
    device_id: str
    kind: str
    measured_at: datetime
    quality: str
    transmission: str
    systolic: float | None
    diastolic: float | None
    pulse: float | None
    glucose_mg_dl: float | None
    weight_kg: float | None
    spo2_pct: float | None
    device_status: list[str] | None


def insert_reading(conn: Conn, r: ReadingRow) -> tuple[int, int | None]:
    """(reading_id, patient_id) of the stored reading; patient_id None when the device was not
    assigned at ``measured_at`` (the caller refuses that inside its transaction)."""
    conn.execute(
        "INSERT INTO devices (device_id, kind) VALUES (%s, %s) ON CONFLICT (device_id) DO NOTHING",
        (r.device_id, r.kind),
    )
    if keys_table(conn):  # TimescaleDB: the dedupe ids live beside the hypertable
        conn.execute("INSERT INTO reading_keys (message_id) VALUES (%s)", (r.message_id,))
    row = conn.execute(
        "INSERT INTO readings (message_id, gateway_id, device_id, patient_id, kind, measured_at,"
        " received_at, quality, transmission, systolic_mmhg, diastolic_mmhg, pulse_bpm, glucose_mg_dl,"
        " weight_kg, spo2_pct, device_status, raw)"
        " SELECT %s, %s, %s, (SELECT a.patient_id FROM device_assignments a WHERE a.device_id = %s"
        "   AND a.valid_from <= %s AND (a.valid_to IS NULL OR a.valid_to > %s)"
        "   ORDER BY a.valid_from DESC LIMIT 1),"
        " %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, ''"
        " RETURNING reading_id, patient_id",
        (
            r.message_id,
            r.gateway_id,
            r.device_id,
            r.device_id,
            r.measured_at,
            r.measured_at,
            r.kind,
            r.measured_at,
            r.measured_at,
            r.quality,
            r.transmission,
            r.systolic,
            r.diastolic,
            r.pulse,
            r.glucose_mg_dl,
            r.weight_kg,
            r.spo2_pct,
            r.device_status,
        ),
    ).fetchone()
    assert row is not None
    return int(row[0]), row[1]


def insert_flag(
    conn: Conn,
    patient_id: int,
    *,
    rule_id: str,
    episode_key: str,
    severity: str,
    reason: str,
    reading_ids: Sequence[int],
) -> int:
    row = conn.execute(
        "INSERT INTO flags (patient_id, subject_key, rule_id, episode_key, severity, reason, reading_ids)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING flag_id",
        (patient_id, f"patient:{patient_id}", rule_id, episode_key, severity, reason, list(reading_ids)),
    ).fetchone()
    assert row is not None
    return int(row[0])
