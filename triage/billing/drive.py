"""Two helpers for driving billing from code (docs/billing.md, "Driving billing from code"):
store a reading and open a flag without the gateway, broker or rules in between.

Everything else a billing scenario needs already has its production function (people, locations,
orders, consent, licences, assignments, reviews, promotion, time logs, communications, the monthly
computation). Readings normally arrive through ingest, and flags through the triage rules; these
two write the same rows those paths write (a reading maps to the patient whose device assignment
is valid at ``measured_at``, with ingest's quality grade given explicitly), for back-fills,
scenario tables and tests.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg

from ingest.writer import keys_table
from triage.errors import TerminalTriageError

KINDS = ("blood_pressure", "glucose", "weight", "spo2")
QUALITIES = ("valid", "quarantined", "failed")
SEVERITIES = ("critical", "high", "moderate", "info")


class InvalidScenario(TerminalTriageError):
    def __init__(self, field: str, value: object, reason: str) -> None:
        super().__init__(f"{field}={value!r}: {reason}")
        self.field = field
        self.value = value
        self.reason = reason


def add_reading(
    conn: psycopg.Connection[Any],
    device_id: str,
    measured_at: datetime,
    *,
    kind: str = "blood_pressure",
    systolic: float | None = 128.0,
    diastolic: float | None = 82.0,
    pulse: float | None = 70.0,
    glucose_mg_dl: float | None = None,
    weight_kg: float | None = None,
    spo2_pct: float | None = None,
    transmission: str = "automatic",
    quality: str = "valid",
    device_status: Sequence[str] = (),
    gateway_id: str = "gw-drive",
) -> int:
    """Store one reading of an assigned device; returns reading_id (patient from the assignment).

    ``transmission='manual'`` is a typed-in value; ``device_status`` carries the device's status
    bits (e.g. ``["body_movement"]``); ``quality`` is ingest's plausibility grade.
    """
    if measured_at.tzinfo is None:
        raise InvalidScenario("measured_at", measured_at, "must be timezone-aware")
    if kind not in KINDS:
        raise InvalidScenario("kind", kind, f"must be one of {', '.join(KINDS)}")
    if quality not in QUALITIES:
        raise InvalidScenario("quality", quality, f"must be one of {', '.join(QUALITIES)}")
    if transmission not in ("automatic", "manual"):
        raise InvalidScenario("transmission", transmission, "must be automatic or manual")
    bp = kind == "blood_pressure"
    values = (systolic, diastolic, pulse) if bp else (None, None, pulse if kind == "spo2" else None)
    identity = f"{device_id}|{kind}|{measured_at.isoformat()}|{values}|{glucose_mg_dl}|{secrets.token_hex(4)}"
    message_id = hashlib.sha256(identity.encode()).hexdigest()[:32]  # the wire's 16-byte id
    with conn.transaction():
        conn.execute(
            "INSERT INTO devices (device_id, kind) VALUES (%s, %s) ON CONFLICT (device_id) DO NOTHING",
            (device_id, kind),
        )
        if keys_table(conn):  # TimescaleDB: the dedupe ids live beside the hypertable
            conn.execute("INSERT INTO reading_keys (message_id) VALUES (%s)", (message_id,))
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
                message_id,
                gateway_id,
                device_id,
                device_id,
                measured_at,
                measured_at,
                kind,
                measured_at,
                measured_at,
                quality,
                transmission,
                *values,
                glucose_mg_dl if kind == "glucose" else None,
                weight_kg if kind == "weight" else None,
                spo2_pct if kind == "spo2" else None,
                list(device_status) or None,
            ),
        ).fetchone()
        assert row is not None
        if row[1] is None:
            raise InvalidScenario("device_id", device_id, f"not assigned to a patient at {measured_at}")
    return int(row[0])


def open_flag(
    conn: psycopg.Connection[Any],
    patient_id: int,
    *,
    rule_id: str = "bp_stage2_sustained",
    severity: str = "high",
    reason: str = "opened for a billing scenario",
    reading_ids: Sequence[int] = (),
) -> int:
    """Open a flag on a patient (as the rules would); review, promote and log time on it next."""
    if severity not in SEVERITIES:
        raise InvalidScenario("severity", severity, f"must be one of {', '.join(SEVERITIES)}")
    row = conn.execute(
        "INSERT INTO flags (patient_id, subject_key, rule_id, episode_key, severity, reason, reading_ids)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING flag_id",
        (
            patient_id,
            f"patient:{patient_id}",
            rule_id,
            secrets.token_hex(6),
            severity,
            reason,
            list(reading_ids),
        ),
    ).fetchone()
    assert row is not None
    return int(row[0])
