"""The FHIR export's reads: what one patient-month's bundle shows beyond the computed decisions.

None of these tables is billing's own: readings and devices are ingest's, flags and billable events
triage's, reviews, communications and consents the clinical room's, licences the dashboards' users
room's. Each statement is billing's read of that family for the export (valid readings of the
calendar month in the patient's zone, promoted flags behind the month, each review with the
licence in force in the patient's state on its date of service), kept here so
:mod:`triage.billing.fhir` builds resources and writes no SQL. Rows come back as plain tuples in
the column order of the statement.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any

import psycopg

Conn = psycopg.Connection[Any]
Row = tuple[Any, ...]


def reading_rows(
    conn: Conn, patient_id: int, tz: str, month: tuple[date, date], extra_ids: Iterable[int]
) -> list[Row]:
    """Valid readings in the month (local dates) or named in ``extra_ids``, in the column order of
    :class:`triage.billing.fhir_model.ReadingRow`."""
    start, end = month
    return conn.execute(
        "SELECT r.reading_id, replace(r.message_id::text, '-', '') AS message_id, r.kind, r.measured_at,"
        " r.systolic_mmhg, r.diastolic_mmhg,"
        " r.pulse_bpm, r.glucose_mg_dl, r.device_id, r.transmission, r.original, r.meal, r.sample_type,"
        " r.weight_kg, r.spo2_pct"
        " FROM readings r WHERE r.patient_id = %(pid)s AND r.quality = 'valid'"
        " AND (r.reading_id = ANY(%(ids)s)"
        "      OR (r.measured_at >= (%(start)s::timestamp AT TIME ZONE %(tz)s)"
        " AND r.measured_at < (%(end)s::timestamp AT TIME ZONE %(tz)s)))"
        " ORDER BY r.measured_at, r.reading_id",
        {
            "pid": patient_id,
            "ids": sorted(set(extra_ids)),
            "tz": tz,
            "start": start,
            "end": end + timedelta(days=1),
        },
    ).fetchall()


def device_rows(conn: Conn, device_ids: list[str]) -> list[Row]:
    """(device_id, kind, manufacturer, model, serial, firmware, fda_cleared) of the known devices."""
    return conn.execute(
        "SELECT device_id, kind, manufacturer, model, serial, firmware, fda_cleared FROM devices"
        " WHERE device_id = ANY(%s) ORDER BY device_id",
        (device_ids,),
    ).fetchall()


def promoted_flag_rows(
    conn: Conn, patient_id: int, flag_ids: Iterable[int], communication_ids: Iterable[int],
    since: date, until: date,
) -> list[Row]:
    """Promoted flags named in ``flag_ids``, behind ``communication_ids``, or with a date of service
    in ``since..until``: the flag's columns, then its billable event's."""
    return conn.execute(
        "SELECT f.flag_id, f.rule_id, f.severity, f.state, f.reason, f.reading_ids, f.opened_at,"
        " f.closed_at,"
        " b.date_of_service, b.minutes, b.interactive, b.place_of_service, b.rendering_npi"
        " FROM flags f JOIN billable_events b ON b.flag_id = f.flag_id WHERE f.patient_id = %(pid)s"
        " AND (f.flag_id = ANY(%(ids)s) OR f.flag_id IN (SELECT flag_id FROM communications"
        "      WHERE communication_id = ANY(%(comms)s))"
        "      OR b.date_of_service BETWEEN %(start)s AND %(end)s)"
        " ORDER BY f.flag_id",
        {
            "pid": patient_id,
            "ids": sorted(flag_ids),
            "comms": list(communication_ids),
            "start": since,
            "end": until,
        },
    ).fetchall()


def review_rows(conn: Conn, state: str, flag_ids: list[int]) -> list[Row]:
    """The reviews of the flags, each with the reviewer's licence number in ``state`` on the date of
    service (None when unlicensed there)."""
    return conn.execute(
        "SELECT r.review_id, r.flag_id, r.reviewer_user_id, r.reviewed_at, r.date_of_service,"
        " r.determination, r.icd10_codes, r.action_taken, r.minutes, r.interactive, r.interactive_mode,"
        " r.place_of_service, l.license_number"
        " FROM reviews r LEFT JOIN LATERAL (SELECT license_number FROM clinician_licenses l"
        "   WHERE l.user_id = r.reviewer_user_id AND l.state = %s"
        "   AND r.date_of_service BETWEEN l.valid_from AND l.valid_to"
        "   ORDER BY l.valid_to DESC LIMIT 1) l ON true"
        " WHERE r.flag_id = ANY(%s) ORDER BY r.reviewed_at, r.review_id",
        (state, flag_ids),
    ).fetchall()


def communication_rows(conn: Conn, communication_ids: Iterable[int]) -> list[Row]:
    """(communication_id, at, mode, two_way_realtime, by_user_id, flag_id) of the named ones."""
    return conn.execute(
        "SELECT communication_id, at, mode, two_way_realtime, by_user_id, flag_id FROM communications"
        " WHERE communication_id = ANY(%s) ORDER BY at, communication_id",
        (list(communication_ids),),
    ).fetchall()


def consent_rows(conn: Conn, patient_id: int) -> list[Row]:
    """(consent_id, consented_at, method, version, revoked_at) of every consent of the patient."""
    return conn.execute(
        "SELECT consent_id, consented_at, method, version, revoked_at FROM consents"
        " WHERE patient_id = %s ORDER BY consented_at, consent_id",
        (patient_id,),
    ).fetchall()
