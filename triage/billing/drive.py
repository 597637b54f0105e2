"""Two helpers for driving billing from code (docs/billing.md, "Driving billing from code"):
store a reading and open a flag without the gateway, broker or rules in between.

Everything else a billing scenario needs already has its production function (people, locations,
orders, consent, licences, assignments, reviews, promotion, time logs, communications, the monthly
computation). Readings normally arrive through ingest, and flags through the triage rules; these
two write the same rows those paths write (a reading maps to the patient whose device assignment
is valid at ``measured_at``, with ingest's quality grade given explicitly), for back-fills,
scenario tables and tests. The statements are :mod:`triage.billing.scenario_store`'s.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg

from triage.billing import scenario_store
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
    _check_reading(measured_at, kind, quality, transmission)
    bp = kind == "blood_pressure"
    values = (systolic, diastolic, pulse) if bp else (None, None, pulse if kind == "spo2" else None)
    row = scenario_store.ReadingRow(
        message_id=_message_id(device_id, kind, measured_at, values, glucose_mg_dl),
        gateway_id=gateway_id,
        device_id=device_id,
        kind=kind,
        measured_at=measured_at,
        quality=quality,
        transmission=transmission,
        systolic=values[0],
        diastolic=values[1],
        pulse=values[2],
        glucose_mg_dl=glucose_mg_dl if kind == "glucose" else None,
        weight_kg=weight_kg if kind == "weight" else None,
        spo2_pct=spo2_pct if kind == "spo2" else None,
        device_status=list(device_status) or None,
    )
    with conn.transaction():
        reading_id, patient_id = scenario_store.insert_reading(conn, row)
        if patient_id is None:
            raise InvalidScenario("device_id", device_id, f"not assigned to a patient at {measured_at}")
    return reading_id


def _check_reading(measured_at: datetime, kind: str, quality: str, transmission: str) -> None:
    if measured_at.tzinfo is None:
        raise InvalidScenario("measured_at", measured_at, "must be timezone-aware")
    if kind not in KINDS:
        raise InvalidScenario("kind", kind, f"must be one of {', '.join(KINDS)}")
    if quality not in QUALITIES:
        raise InvalidScenario("quality", quality, f"must be one of {', '.join(QUALITIES)}")
    if transmission not in ("automatic", "manual"):
        raise InvalidScenario("transmission", transmission, "must be automatic or manual")


def _message_id(
    device_id: str, kind: str, measured_at: datetime, values: tuple[float | None, ...], glucose: float | None
) -> str:
    """A fresh wire-shaped id (16 bytes as hex): a scenario may store the same values twice."""
    identity = f"{device_id}|{kind}|{measured_at.isoformat()}|{values}|{glucose}|{secrets.token_hex(4)}"
    return hashlib.sha256(identity.encode()).hexdigest()[:32]


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
    return scenario_store.insert_flag(
        conn,
        patient_id,
        rule_id=rule_id,
        episode_key=secrets.token_hex(6),
        severity=severity,
        reason=reason,
        reading_ids=reading_ids,
    )
