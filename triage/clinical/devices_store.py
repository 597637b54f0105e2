"""The ``devices``, ``device_assignments`` and ``device_enrolments`` reads the workflows do not own.

The assignment and enrolment workflows (``assignments.py``, ``device_enrolments.py``) hold the SQL
of their own changes and of the admin's history pages. The other questions about devices were asked
in place, each with its own SQL: the silence rules' assigned devices and the daily rules' monitoring
start (the jobs' loader), which patient a demo cuff belongs to (the demo's history), and the
simulated fleets' set-up (fleet and chaos runs). They are here. Queries joining other tables
(patients, readings, gateway status) live here because the question is about a device or an
assignment; the SQL text is the one the callers sent. Each function runs on the caller's connection
and transaction; the jobs get frames, the rest plain typed values.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
import psycopg

Conn = psycopg.Connection[Any]

ASSIGNED_DEVICE_COLUMNS = (
    "patient_id", "device_id", "gateway_id", "assigned_from", "last_reading_at", "last_contact_at",
)


def _frame(cur: psycopg.Cursor[Any]) -> pd.DataFrame:
    cols = [d.name for d in cur.description or []]
    return pd.DataFrame(cur.fetchall(), columns=cols)


def assigned_devices(conn: Conn, now: datetime) -> pd.DataFrame:
    """Currently assigned devices with their last reading, last BLE contact and gateway (the
    silence rules' input; the last reading is a readings probe per assignment, asked here because
    the question is about the device)."""
    with conn.cursor() as cur:
        cur.execute(
            """
            SELECT a.patient_id, a.device_id,
                   coalesce(last.gateway_id, d.last_gateway_id) AS gateway_id,
                   a.valid_from AS assigned_from,
                   last.measured_at AS last_reading_at,
                   greatest((gs.status->'devices'->a.device_id->>'last_contact')::timestamptz,
                            d.last_seen_at) AS last_contact_at
            FROM device_assignments a
            JOIN devices d ON d.device_id = a.device_id
            LEFT JOIN LATERAL (
                SELECT r.measured_at, r.gateway_id FROM readings r
                WHERE r.patient_id = a.patient_id AND r.device_id = a.device_id
                  AND r.measured_at >= a.valid_from
                ORDER BY r.measured_at DESC LIMIT 1) last ON true
            LEFT JOIN gateway_status gs ON gs.gateway_id = coalesce(last.gateway_id, d.last_gateway_id)
            WHERE a.valid_from <= %(now)s AND (a.valid_to IS NULL OR a.valid_to > %(now)s)
            """,
            {"now": now},
        )
        df = _frame(cur)
    if df.empty:
        df = pd.DataFrame(columns=list(ASSIGNED_DEVICE_COLUMNS))
    return df


def patients_enrolled_at(conn: Conn, patient_ids: Collection[int] | None = None) -> pd.DataFrame:
    """``patient_id, timezone, enrolled_at`` (first device assignment, else the record's creation);
    every patient when ``patient_ids`` is None (the daily rules' population)."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT p.patient_id, p.timezone, coalesce(min(a.valid_from), p.created_at) AS enrolled_at"
            " FROM patients p LEFT JOIN device_assignments a ON a.patient_id = p.patient_id"
            " WHERE %(ids)s::bigint[] IS NULL OR p.patient_id = ANY(%(ids)s)"
            " GROUP BY p.patient_id",
            {"ids": None if patient_ids is None else list(patient_ids)},
        )
        return _frame(cur)


def current_holder(conn: Conn, device_id: str) -> int | None:
    """The patient the device is assigned to now; None when nobody holds it."""
    row = conn.execute("SELECT patient_id FROM device_assignments WHERE device_id = %s"
                       " AND valid_to IS NULL", (device_id,)).fetchone()
    return None if row is None else int(row[0])


@dataclass(frozen=True)
class SimulatedDevice:
    """A simulated device as a fleet or chaos run sets it up, enrolled on its gateway."""

    device_id: str
    kind: str
    gateway_id: str
    manufacturer: str
    model: str
    serial: str | None = None


def provision_simulated(conn: Conn, devices: Iterable[SimulatedDevice], *, since: datetime, by: str,
                        reason: str) -> None:
    """Describe and enrol simulated devices in bulk, from ``since``; devices and open enrolments
    already there are kept. No audit rows and no overlap checks: this is a load generator's set-up
    (thousands of devices in one go), never an admin's enrolment (``device_enrolments.enrol``)."""
    rows = list(devices)
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO devices (device_id, kind, manufacturer, model, serial, last_gateway_id)"
                        " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (device_id) DO NOTHING",
                        [(d.device_id, d.kind, d.manufacturer, d.model, d.serial, d.gateway_id)
                         for d in rows])
        cur.executemany("INSERT INTO device_enrolments (device_id, gateway_id, valid_from, enrolled_by,"
                        " reason) VALUES (%s, %s, %s, %s, %s)"
                        " ON CONFLICT (device_id) WHERE valid_to IS NULL DO NOTHING",
                        [(d.device_id, d.gateway_id, since, by, reason) for d in rows])


def assign_simulated(conn: Conn, holders: Iterable[tuple[str, int]], *, since: datetime, by: str) -> None:
    """Assign simulated devices (device_id, patient_id) from ``since``, in bulk and unaudited, like
    :func:`provision_simulated` (``assignments.assign`` is the admin's way, readings moved and audited)."""
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO device_assignments (device_id, patient_id, valid_from, assigned_by)"
                        " VALUES (%s, %s, %s, %s)", [(d, p, since, by) for d, p in holders])
