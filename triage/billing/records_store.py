"""The writes behind recording dated billing facts: orders, payers, prior authorisations, claims
billed elsewhere, the counted-elsewhere mark on a time log, and the early end of a licence.

Billing owns ``rpm_orders``, ``patient_payers``, ``prior_authorisations`` and
``billing_claims_history``; the counted-elsewhere
mark is billing's update of the clinical room's ``time_logs`` (the columns exist for billing alone),
and ending a licence is billing's update of ``clinician_licenses`` (the dashboards' users room
creates them). :mod:`triage.billing.records` validates the input, opens the transaction and writes
the audit row; each function here is one statement on the caller's connection and transaction, and
returns the new id, or the row it changed (None when nothing matched).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

import psycopg

Conn = psycopg.Connection[Any]


def _id(row: Any) -> int:
    assert row is not None
    return int(row[0])


def insert_order(
    conn: Conn,
    patient_id: int,
    ordering_user_id: int,
    order_date: date,
    end_date: date | None,
    icd10_codes: Sequence[str],
    medical_necessity: str,
    recorded_by: int | None,
) -> int:
    return _id(
        conn.execute(
            "INSERT INTO rpm_orders (patient_id, ordering_user_id, order_date, end_date, icd10_codes,"
            " medical_necessity, recorded_by) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING order_id",
            (patient_id, ordering_user_id, order_date, end_date, icd10_codes, medical_necessity, recorded_by),
        ).fetchone()
    )


def end_order(conn: Conn, order_id: int, end_date: date) -> int | None:
    """The order's patient, or None when no such order is dated on or before ``end_date``."""
    row = conn.execute(
        "UPDATE rpm_orders SET end_date = %s WHERE order_id = %s AND order_date <= %s RETURNING patient_id",
        (end_date, order_id, end_date),
    ).fetchone()
    return None if row is None else int(row[0])


def mark_counted_elsewhere(
    conn: Conn, time_log_id: int, program: str, marked_by: int
) -> tuple[Any, int] | None:
    """(patient_id, minutes) of the marked time log, or None when there is no such log."""
    row = conn.execute(
        "UPDATE time_logs t SET counted_elsewhere = %s, counted_elsewhere_by = %s,"
        " counted_elsewhere_at = now() FROM flags f WHERE t.time_log_id = %s AND f.flag_id = t.flag_id"
        " RETURNING f.patient_id, t.minutes",
        (program, marked_by, time_log_id),
    ).fetchone()
    return None if row is None else (row[0], int(row[1]))


def insert_payer(
    conn: Conn,
    patient_id: int,
    payer: str,
    effective_from: date,
    effective_to: date | None,
    member_id: str | None,
    recorded_by: int | None,
) -> int:
    """A payer period; an open-ended one first closes the open earlier period the day before."""
    if effective_to is None:
        conn.execute(
            "UPDATE patient_payers SET effective_to = %s::date - 1 WHERE patient_id = %s"
            " AND effective_to IS NULL AND effective_from < %s",
            (effective_from, patient_id, effective_from),
        )
    return _id(
        conn.execute(
            "INSERT INTO patient_payers (patient_id, payer, effective_from, effective_to, member_id,"
            " recorded_by) VALUES (%s, %s, %s, %s, %s, %s) RETURNING patient_payer_id",
            (patient_id, payer, effective_from, effective_to, member_id, recorded_by),
        ).fetchone()
    )


def insert_prior_auth(
    conn: Conn,
    patient_id: int,
    payer: str,
    valid_from: date,
    valid_to: date,
    reference: str,
    recorded_by: int | None,
) -> int:
    return _id(
        conn.execute(
            "INSERT INTO prior_authorisations (patient_id, payer, valid_from, valid_to, reference,"
            " recorded_by) VALUES (%s, %s, %s, %s, %s, %s) RETURNING prior_auth_id",
            (patient_id, payer, valid_from, valid_to, reference, recorded_by),
        ).fetchone()
    )


def end_licence(conn: Conn, license_id: int, valid_to: date, reason: str) -> tuple[int, str] | None:
    """(user_id, state) of the ended licence, or None when none is in force on ``valid_to``."""
    row = conn.execute(
        "UPDATE clinician_licenses SET valid_to = %s, ended_reason = %s"
        " WHERE license_id = %s AND valid_from <= %s AND valid_to >= %s RETURNING user_id, state",
        (valid_to, reason, license_id, valid_to, valid_to),
    ).fetchone()
    return None if row is None else (int(row[0]), row[1])


def insert_claim_history(
    conn: Conn,
    patient_id: int,
    service_from: date,
    service_to: date,
    program: str,
    cpt: str,
    billing_npi: str,
    source: str,
) -> int:
    return _id(
        conn.execute(
            "INSERT INTO billing_claims_history (patient_id, service_from, service_to, program, cpt,"
            " billing_npi, source) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING claim_history_id",
            (patient_id, service_from, service_to, program, cpt, billing_npi, source),
        ).fetchone()
    )
