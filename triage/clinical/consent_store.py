"""Consents, enrolments and clinician licences: the statements of the facts RPM billing is gated on.

One module per table family (issue 12): :mod:`triage.clinical.people` validates and records them
through these, promotion reads them at the review's date of service, and the admin's patient list
summarises them. Billing's month reads of the same tables stay in its stores
(``triage/billing/billing_store.py``, ``fhir_store.py``), which say that they read this room's tables.
Each function is one statement on the caller's connection and transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import psycopg

from triage.rows import dict_rows

Conn = psycopg.Connection[Any]


def _id(row: Any) -> int:
    assert row is not None
    return int(row[0])


# -- licences --------------------------------------------------------------------------------------

def insert_licence(conn: Conn, user_id: int, state: str, license_number: str, valid_from: date,
                   valid_to: date) -> int:
    return _id(conn.execute(
        "INSERT INTO clinician_licenses (user_id, state, license_number, valid_from, valid_to)"
        " VALUES (%s, %s, %s, %s, %s) RETURNING license_id",
        (user_id, state, license_number, valid_from, valid_to),
    ).fetchone())


def licence_states(conn: Conn, user_id: int) -> set[str]:
    """The states the user holds a licence row in, current or not (the demo seed tops them up)."""
    rows = conn.execute("SELECT state FROM clinician_licenses WHERE user_id = %s", (user_id,)).fetchall()
    return {r[0] for r in rows}


def licences(conn: Conn, user_id: int) -> list[tuple[str, date, date]]:
    """(state, valid_from, valid_to) of every licence row of the user."""
    return [(r[0], r[1], r[2]) for r in conn.execute(
        "SELECT state, valid_from, valid_to FROM clinician_licenses WHERE user_id = %s", (user_id,)
    ).fetchall()]


# -- enrolments ------------------------------------------------------------------------------------

def insert_enrolment(
    conn: Conn, patient_id: int, ordering_user_id: int, codes: Sequence[str], start_date: date,
    end_date: date | None, established_visit_date: date | None, education_documented_on: date | None,
    payer: str, episode_id: int | None,
) -> int:
    """A new episode of care unless ``episode_id`` continues one (the column's default starts it)."""
    values = [patient_id, ordering_user_id, list(codes), start_date, end_date, established_visit_date,
              education_documented_on, payer]
    if episode_id is None:
        return _id(conn.execute(
            "INSERT INTO enrolments (patient_id, ordering_user_id, order_icd10, start_date,"
            " end_date, established_visit_date, education_documented_on, payer)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING enrolment_id",
            values,
        ).fetchone())
    return _id(conn.execute(
        "INSERT INTO enrolments (patient_id, ordering_user_id, order_icd10, start_date, end_date,"
        " established_visit_date, education_documented_on, payer, episode_id)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING enrolment_id",
        [*values, episode_id],
    ).fetchone())


def end_enrolment(conn: Conn, enrolment_id: int, end_date: date) -> bool:
    """False when no enrolment with that id starts on or before ``end_date``."""
    cur = conn.execute(
        "UPDATE enrolments SET end_date = %s WHERE enrolment_id = %s AND start_date <= %s",
        (end_date, enrolment_id, end_date),
    )
    return cur.rowcount == 1


def enrolment_spans(conn: Conn, patient_id: int | None) -> list[tuple[date, date | None]]:
    """(start_date, end_date) of every enrolment of the patient."""
    return [(r[0], r[1]) for r in conn.execute(
        "SELECT start_date, end_date FROM enrolments WHERE patient_id = %s", (patient_id,)
    ).fetchall()]


def enrolment_summaries(conn: Conn) -> list[dict[str, Any]]:
    """Per patient: the latest start and whether any enrolment is in force today (the admin list)."""
    return dict_rows(
        conn,
        "SELECT patient_id, max(start_date) AS start_date,"
        " bool_or(end_date IS NULL OR end_date >= current_date) AS active"
        " FROM enrolments GROUP BY patient_id")


# -- consents --------------------------------------------------------------------------------------

def insert_consent(conn: Conn, patient_id: int, consented_at: datetime, method: str, recorded_by: int,
                   version: str, scopes: Sequence[str]) -> int:
    return _id(conn.execute(
        "INSERT INTO consents (patient_id, consented_at, method, recorded_by, version, scope)"
        " VALUES (%s, %s, %s, %s, %s, %s) RETURNING consent_id",
        (patient_id, consented_at, method, recorded_by, version, list(scopes)),
    ).fetchone())


def revoke_consent(conn: Conn, consent_id: int, revoked_at: datetime) -> bool:
    """False when there is no unrevoked consent with that id."""
    cur = conn.execute(
        "UPDATE consents SET revoked_at = %s WHERE consent_id = %s AND revoked_at IS NULL",
        (revoked_at, consent_id),
    )
    return cur.rowcount == 1


def consent_dates(conn: Conn, patient_id: int | None, tz: str) -> list[tuple[date, date | None, str]]:
    """(consented on, revoked on or None, version) of every consent, as dates in the zone ``tz``."""
    return [(r[0], r[1], r[2]) for r in conn.execute(
        "SELECT (consented_at AT TIME ZONE %s)::date, (revoked_at AT TIME ZONE %s)::date, version"
        " FROM consents WHERE patient_id = %s",
        (tz, tz, patient_id),
    ).fetchall()]


def consent_summaries(conn: Conn) -> list[dict[str, Any]]:
    """Per patient: the highest version among unrevoked consents (the admin list)."""
    return dict_rows(conn, "SELECT patient_id, max(version) AS version FROM consents"
                           " WHERE revoked_at IS NULL GROUP BY patient_id")
