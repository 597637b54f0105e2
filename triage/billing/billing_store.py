"""The billing month's SQL: payer profiles, stored runs, and every fact the computation reads.

Billing owns ``billing_policy``, ``billing_runs`` and ``billing_decisions`` and reads them and writes
them only here. The month's computation also reads other rooms' tables, each with its own owner:
readings and devices (ingest), time logs and communications (clinical review), enrolments, consents
and locations (clinical people), clinician licences (dashboards' users); those statements are
billing's reads of them, kept here because they ask billing's questions (local dates in the
patient's zone, promoted or not), and they say so. Rows come back as plain tuples in the column
order of the statement: :mod:`triage.billing.load` turns them into facts, and nothing here decides a
code. Recording dated facts is :mod:`triage.billing.records_store`; the FHIR export's reads are
:mod:`triage.billing.fhir_store`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, timedelta
from typing import Any

import psycopg

Conn = psycopg.Connection[Any]
Row = tuple[Any, ...]

# The measured numbers of every kind: two rows of one device, kind and time with these equal are
# the same measurement (duplicates collapse, triage.valid_reading.judge_all).
VALUE_COLUMNS = (
    "systolic_mmhg",
    "diastolic_mmhg",
    "mean_arterial_mmhg",
    "pulse_bpm",
    "glucose_mg_dl",
    "weight_kg",
    "spo2_pct",
)


# -- billing_policy ------------------------------------------------------------------------------
def policy_rows(conn: Conn) -> list[Row]:
    """(payer, effective_from, effective_to, key, value) of every payer profile."""
    return conn.execute(
        "SELECT payer, effective_from, effective_to, key, value FROM billing_policy"
    ).fetchall()


def replace_policy(
    conn: Conn, payer: str, effective_from: date, effective_to: date | None, values: Mapping[str, str]
) -> None:
    """One profile's key/value rows, replacing any of the same payer and start (caller's transaction)."""
    conn.execute(
        "DELETE FROM billing_policy WHERE payer = %s AND effective_from = %s", (payer, effective_from)
    )
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO billing_policy (effective_from, effective_to, payer, key, value)"
            " VALUES (%s, %s, %s, %s, %s)",
            [(effective_from, effective_to, payer, k, v) for k, v in sorted(values.items())],
        )


# -- billing_runs, billing_decisions -------------------------------------------------------------
def insert_run(conn: Conn, year_month: str, computed_by: str, as_of: date | None, patients: int) -> int:
    row = conn.execute(
        "INSERT INTO billing_runs (year_month, computed_by, as_of, patients) VALUES (%s, %s, %s, %s)"
        " RETURNING run_id",
        (year_month, computed_by, as_of, patients),
    ).fetchone()
    assert row is not None
    return int(row[0])


def insert_decisions(conn: Conn, rows: Iterable[Sequence[Any]]) -> None:
    """(run_id, patient_id, seq, code, units, emitted, rule, reason, date_of_service, payer_profile,
    evidence) per decision; ``evidence`` a mapping, stored as sorted JSON."""
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO billing_decisions (run_id, patient_id, seq, code, units, emitted, rule, reason,"
            " date_of_service, payer_profile, evidence)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [(*r[:-1], json.dumps(r[-1], sort_keys=True, default=str)) for r in rows],
        )


# -- the month's facts ---------------------------------------------------------------------------
def patient_ids_for_month(conn: Conn, m_start: date, m_end: date) -> list[int]:
    """Patients enrolled at some point from two months before the month to its end (billing's read
    of the people room's patients and enrolments)."""
    rows = conn.execute(
        "SELECT p.patient_id FROM patients p WHERE EXISTS ("
        " SELECT 1 FROM enrolments e WHERE e.patient_id = p.patient_id AND e.start_date <= %s"
        " AND (e.end_date IS NULL OR e.end_date >= %s)) ORDER BY p.patient_id",
        (m_end, m_start - timedelta(days=62)),
    ).fetchall()
    return [int(r[0]) for r in rows]


def reading_rows(conn: Conn, pid: int, tz: str, until: date) -> list[Row]:
    """Billing's read of ingest's readings and devices: every reading up to ``until`` (local), with
    its local date, grade, transmission, status bits, the device's clearance and its values
    (reading_id, kind, measured_at, local date, quality, quality_reason, transmission, device_status,
    fda_cleared, device_id, measurement, *VALUE_COLUMNS)."""
    cols = ", ".join(f"r.{c}" for c in VALUE_COLUMNS)
    return conn.execute(
        "SELECT r.reading_id, r.kind, r.measured_at, (r.measured_at AT TIME ZONE %(tz)s)::date, r.quality,"
        " r.quality_reason, r.transmission, r.device_status, coalesce(d.fda_cleared, false), r.device_id,"
        f" r.measurement, {cols}"
        " FROM readings r LEFT JOIN devices d ON d.device_id = r.device_id"
        " WHERE r.patient_id = %(pid)s AND r.measured_at < (%(end)s::timestamp AT TIME ZONE %(tz)s)",
        {"pid": pid, "tz": tz, "end": until + timedelta(days=1)},
    ).fetchall()


def licence_rows(conn: Conn, user_ids: Iterable[int]) -> list[Row]:
    """Billing's read of the staff's licences: (user_id, state, valid_from, valid_to, license_number)."""
    return conn.execute(
        "SELECT user_id, state, valid_from, valid_to, license_number FROM clinician_licenses"
        " WHERE user_id = ANY(%s)",
        (sorted(user_ids),),
    ).fetchall()


def time_log_rows(conn: Conn, pid: int, tz: str) -> list[Row]:
    """Billing's read of clinical time logs on the patient's flags, with the local date, the staff
    member and whether the flag was promoted (a billable event)."""
    return conn.execute(
        "SELECT t.time_log_id, t.flag_id, t.user_id, t.minutes, (t.logged_at AT TIME ZONE %(tz)s)::date,"
        " t.role, u.username, u.is_physician_or_qhp, b.billable_event_id IS NOT NULL, t.counted_elsewhere"
        " FROM time_logs t JOIN flags f ON f.flag_id = t.flag_id JOIN users u ON u.user_id = t.user_id"
        " LEFT JOIN billable_events b ON b.flag_id = t.flag_id"
        " WHERE f.patient_id = %(pid)s ORDER BY t.logged_at, t.time_log_id",
        {"pid": pid, "tz": tz},
    ).fetchall()


def communication_rows(conn: Conn, pid: int, tz: str) -> list[Row]:
    """Billing's read of clinical communications: local date, mode, real-time, two-way, flag, and
    whether that flag was promoted."""
    return conn.execute(
        "SELECT c.communication_id, (c.at AT TIME ZONE %(tz)s)::date, c.mode,"
        " coalesce(c.realtime, c.two_way_realtime), coalesce(c.two_way, c.two_way_realtime), c.flag_id,"
        " b.billable_event_id IS NOT NULL"
        " FROM communications c LEFT JOIN billable_events b ON b.flag_id = c.flag_id"
        " WHERE c.patient_id = %(pid)s ORDER BY c.at, c.communication_id",
        {"pid": pid, "tz": tz},
    ).fetchall()


# Each dated history in the order the engine's facts list them. Enrolments, consents and locations
# are billing's reads of the people room's tables; orders, payers, prior authorisations and claims
# elsewhere are billing's own. ``%(tz)s`` turns an instant into the patient's local date.
_HISTORY_SQL = {
    "enrolments": "SELECT enrolment_id, ordering_user_id, start_date, end_date, established_visit_date,"
    " education_documented_on, episode_id, payer FROM enrolments WHERE patient_id = %(pid)s"
    " ORDER BY start_date, enrolment_id",
    "orders": "SELECT o.order_id, o.ordering_user_id, o.order_date, o.icd10_codes, o.end_date,"
    " o.medical_necessity, u.role FROM rpm_orders o JOIN users u ON u.user_id = o.ordering_user_id"
    " WHERE o.patient_id = %(pid)s ORDER BY o.order_date, o.order_id",
    "consents": "SELECT consent_id, (consented_at AT TIME ZONE %(tz)s)::date,"
    " (revoked_at AT TIME ZONE %(tz)s)::date, scope, method, version FROM consents"
    " WHERE patient_id = %(pid)s ORDER BY consented_at",
    "locations": "SELECT state, effective_from, effective_to, source FROM patient_locations"
    " WHERE patient_id = %(pid)s ORDER BY effective_from, location_id",
    "payers": "SELECT payer, effective_from, effective_to FROM patient_payers WHERE patient_id = %(pid)s"
    " ORDER BY effective_from, patient_payer_id",
    "prior_auths": "SELECT payer, valid_from, valid_to, reference FROM prior_authorisations"
    " WHERE patient_id = %(pid)s",
    "claims": "SELECT service_from, service_to, program, cpt, billing_npi FROM billing_claims_history"
    " WHERE patient_id = %(pid)s",
}


def history_rows(conn: Conn, pid: int, tz: str) -> dict[str, list[Row]]:
    """The dated histories of one patient, by name (see ``_HISTORY_SQL``)."""
    params = {"pid": pid, "tz": tz}
    return {name: conn.execute(sql, params).fetchall() for name, sql in _HISTORY_SQL.items()}
