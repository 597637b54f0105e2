"""The dated billing facts read back for staff: the patient page's facts panel and the review panel.

Recording them stays in records.py (validated and audited) and the month's computation reads its own
shape in load.py; these are the dashboards' reads of the same tables (patient_locations, rpm_orders,
time_logs, communications), stated here so the dashboards write no SQL of their own for them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg

from triage.rows import dict_rows

Conn = psycopg.Connection[Any]



def time_log_of_patient(conn: Conn, time_log_id: int, patient_id: int) -> bool:
    """Whether the time log was spent on a flag of this patient (a mark may only name its own)."""
    return bool(dict_rows(
        conn,
        "SELECT 1 AS ok FROM time_logs t JOIN flags f ON f.flag_id = t.flag_id"
        " WHERE t.time_log_id = %s AND f.patient_id = %s",
        (time_log_id, patient_id),
    ))


def billing_facts(conn: Conn, patient_id: int) -> dict[str, Any]:
    """Locations, orders, time logs and communications of one patient (no readings)."""
    return {
        "locations": dict_rows(
            conn,
            "SELECT location_id, state, effective_from, effective_to, source FROM patient_locations"
            " WHERE patient_id = %s ORDER BY effective_from, location_id",
            (patient_id,),
        ),
        "orders": dict_rows(
            conn,
            "SELECT o.order_id, o.order_date, o.end_date, o.icd10_codes, o.medical_necessity,"
            " u.display_name AS ordering_practitioner FROM rpm_orders o"
            " JOIN users u ON u.user_id = o.ordering_user_id WHERE o.patient_id = %s ORDER BY o.order_date",
            (patient_id,),
        ),
        "time_logs": dict_rows(
            conn,
            "SELECT t.time_log_id, t.flag_id, t.minutes, t.logged_at, t.role, t.counted_elsewhere,"
            " (b.billable_event_id IS NOT NULL) AS promoted"
            " FROM time_logs t JOIN flags f ON f.flag_id = t.flag_id"
            " LEFT JOIN billable_events b ON b.flag_id = t.flag_id WHERE f.patient_id = %s"
            " ORDER BY t.logged_at DESC LIMIT 200",
            (patient_id,),
        ),
        "communications": dict_rows(
            conn,
            "SELECT communication_id, flag_id, at, mode, coalesce(realtime, two_way_realtime) AS realtime,"
            " coalesce(two_way, two_way_realtime) AS two_way FROM communications WHERE patient_id = %s"
            " ORDER BY at DESC LIMIT 200",
            (patient_id,),
        ),
    }


def flag_logs(conn: Conn, patient_id: int, since: datetime) -> dict[str, list[dict[str, Any]]]:
    return {
        "time_logs": dict_rows(
            conn,
            "SELECT t.time_log_id, t.flag_id, t.minutes, t.logged_at, t.role, t.note, u.display_name AS who"
            " FROM time_logs t JOIN flags f ON f.flag_id = t.flag_id JOIN users u ON u.user_id = t.user_id"
            " WHERE f.patient_id = %s AND t.logged_at >= %s ORDER BY t.logged_at DESC LIMIT 100",
            (patient_id, since),
        ),
        "communications": dict_rows(
            conn,
            "SELECT communication_id, flag_id, at, mode, coalesce(realtime, two_way_realtime) AS realtime,"
            " coalesce(two_way, two_way_realtime) AS two_way, note FROM communications"
            " WHERE patient_id = %s AND at >= %s ORDER BY at DESC LIMIT 100",
            (patient_id, since),
        ),
    }
