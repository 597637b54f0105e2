"""The ``users`` and ``patients`` tables' reads and small updates, stated once for triage and dashboards.

Staff accounts and patients are read by review, billing records, load and FHIR, and by the
dashboards' sign-in, admin, billing and care-team pages; each used to write its own ``SELECT … FROM
users`` (or ``patients``). Rows are created through ``people.create_user``/``create_patient``, which
validate them before calling :func:`insert_user`/:func:`insert_patient`; a patient's state follows
its location history (``locations.py`` decides, :func:`set_state_from_locations` writes); statements
that join these tables to another table's rows (sessions, reviews, time logs) belong to that
table's owner.

Every function runs one statement on the caller's connection and transaction. Rows a page renders
come back as dicts (the dashboards' templates read them by name); the rest as plain values.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any, Final

import psycopg

from triage.rows import dict_one, dict_rows

Conn = psycopg.Connection[Any]


@dataclass(frozen=True)
class SignInRecord:
    """What a password check needs about one username."""

    user_id: int
    password_hash: str
    active: bool


@dataclass(frozen=True)
class PractitionerRow:
    """One staff member as billing and the FHIR export describe a practitioner."""

    user_id: int
    username: str
    role: str
    npi: str | None
    is_physician_or_qhp: bool


def _scalar(conn: Conn, sql: str, params: tuple[object, ...]) -> Any:
    row = conn.execute(sql, params).fetchone()
    return None if row is None else row[0]



def insert_user(conn: Conn, username: str, display_name: str, role: str, password_hash: str,
                npi: str | None, is_physician_or_qhp: bool) -> int:
    """A new account (already validated by ``people.create_user``); returns user_id."""
    return int(_scalar(
        conn,
        "INSERT INTO users (username, display_name, role, password_hash, npi, is_physician_or_qhp)"
        " VALUES (%s, %s, %s, %s, %s, %s) RETURNING user_id",
        (username, display_name, role, password_hash, npi, is_physician_or_qhp),
    ))


def username_of(conn: Conn, user_id: int) -> str | None:
    """The account's username, active or not; None when there is no such user."""
    name = _scalar(conn, "SELECT username FROM users WHERE user_id = %s", (user_id,))
    return None if name is None else str(name)


def role_of(conn: Conn, user_id: int) -> str | None:
    """The account's role, active or not; None when there is no such user."""
    role = _scalar(conn, "SELECT role FROM users WHERE user_id = %s", (user_id,))
    return None if role is None else str(role)


def user_exists(conn: Conn, user_id: int) -> bool:
    return _scalar(conn, "SELECT 1 AS x FROM users WHERE user_id = %s", (user_id,)) is not None


def username_taken(conn: Conn, username: str) -> bool:
    return _scalar(conn, "SELECT 1 AS x FROM users WHERE username = %s", (username,)) is not None


def user_id_of(conn: Conn, username: str) -> int | None:
    """The id of the account called ``username``, active or not; None when there is none."""
    uid = _scalar(conn, "SELECT user_id FROM users WHERE username = %s", (username,))
    return None if uid is None else int(uid)


def user_ids(conn: Conn, usernames: list[str]) -> dict[str, int]:
    """user_id by username, for the names that exist."""
    rows = conn.execute("SELECT username, user_id FROM users WHERE username = ANY(%s)", (usernames,))
    return {str(name): int(uid) for name, uid in rows}


def active_user_id(conn: Conn, username: str) -> int | None:
    """The id of the active account called ``username``; None when none is active."""
    uid = _scalar(conn, "SELECT user_id FROM users WHERE username = %s AND active", (username,))
    return None if uid is None else int(uid)


def active_actor(conn: Conn, user_id: int) -> tuple[int, str, str, str | None] | None:
    """(user_id, username, role, npi) of an active account: who may act on a flag."""
    row = conn.execute(
        "SELECT user_id, username, role, npi FROM users WHERE user_id = %s AND active", (user_id,)
    ).fetchone()
    return None if row is None else (int(row[0]), row[1], row[2], row[3])


def sign_in_record(conn: Conn, username: str) -> SignInRecord | None:
    row = conn.execute(
        "SELECT user_id, password_hash, active FROM users WHERE username = %s", (username,)
    ).fetchone()
    return None if row is None else SignInRecord(int(row[0]), row[1], bool(row[2]))


def set_password_hash(conn: Conn, user_id: int, password_hash: str) -> None:
    conn.execute("UPDATE users SET password_hash = %s WHERE user_id = %s", (password_hash, user_id))


# A user's glucose display unit (named parameter ``user``): a constant, so pages can batch it.
GLUCOSE_UNIT_SQL: Final = "SELECT glucose_unit FROM users WHERE user_id = %(user)s"


def set_glucose_unit(conn: Conn, user_id: int, unit: str) -> None:
    """Store the display unit (``dashboards.units`` checks it is one it knows)."""
    conn.execute("UPDATE users SET glucose_unit = %s WHERE user_id = %s", (unit, user_id))


def set_active(conn: Conn, user_id: int, active: bool) -> bool:
    """Activate or deactivate an account; False when there is no such user."""
    cur = conn.execute("UPDATE users SET active = %s WHERE user_id = %s", (active, user_id))
    return cur.rowcount == 1


def practitioner(conn: Conn, user_id: int) -> PractitionerRow | None:
    row = conn.execute(
        "SELECT npi, username, role, is_physician_or_qhp FROM users WHERE user_id = %s", (user_id,)
    ).fetchone()
    return None if row is None else PractitionerRow(user_id, row[1], row[2], row[0], bool(row[3]))


def practitioners(conn: Conn, user_ids: Iterable[int]) -> list[PractitionerRow]:
    rows = conn.execute(
        "SELECT user_id, username, role, npi, is_physician_or_qhp FROM users WHERE user_id = ANY(%s)",
        (sorted(user_ids),),
    )
    return [PractitionerRow(int(uid), name, role, npi, bool(qhp)) for uid, name, role, npi, qhp in rows]


def active_clinicians(conn: Conn) -> list[dict[str, Any]]:
    """``user_id``, ``display_name`` of active clinicians, by name (who may order RPM)."""
    return dict_rows(conn, "SELECT user_id, display_name FROM users"
                        " WHERE role = 'clinician' AND active ORDER BY 2")


def active_care_staff(conn: Conn) -> list[dict[str, Any]]:
    """``user_id``, ``username``, ``role`` of active nurses and clinicians (care-team members)."""
    return dict_rows(conn, "SELECT user_id, username, role FROM users"
                        " WHERE active AND role IN ('nurse', 'clinician') ORDER BY username")


@dataclass(frozen=True)
class PatientHeader:
    """What billing needs to place a patient: its MRN, state and time zone."""

    patient_id: int
    mrn: str
    state: str
    timezone: str


def patient_exists(conn: Conn, patient_id: int) -> bool:
    return _scalar(conn, "SELECT 1 FROM patients WHERE patient_id = %s", (patient_id,)) is not None


def insert_patient(conn: Conn, mrn: str, display_name: str, state: str, timezone: str,
                   birth_year: int | None) -> int:
    """A new patient (already validated by ``people.create_patient``); returns patient_id."""
    return int(_scalar(
        conn,
        "INSERT INTO patients (mrn, display_name, state, timezone, birth_year)"
        " VALUES (%s, %s, %s, %s, %s) RETURNING patient_id",
        (mrn, display_name, state, timezone, birth_year),
    ))


def lock_patient(conn: Conn, patient_id: int) -> bool:
    """Lock the patient's row for the transaction; False when there is no such patient."""
    return conn.execute("SELECT 1 FROM patients WHERE patient_id = %s FOR UPDATE", (patient_id,)).fetchone() \
        is not None


def set_state_from_locations(conn: Conn, patient_id: int, on: date) -> None:
    """``patients.state`` follows the location row in force on ``on`` (``locations.py`` records them)."""
    conn.execute(
        "UPDATE patients SET state = rpm_patient_state_on(patient_id, %s) WHERE patient_id = %s",
        (on, patient_id),
    )


def mrn_taken(conn: Conn, mrn: str) -> bool:
    return _scalar(conn, "SELECT 1 AS x FROM patients WHERE mrn = %s", (mrn,)) is not None


def patient_id_of_mrn(conn: Conn, mrn: str) -> int | None:
    pid = _scalar(conn, "SELECT patient_id FROM patients WHERE mrn = %s", (mrn,))
    return None if pid is None else int(pid)


def patient_id_by_mrn_or_id(conn: Conn, text: str) -> int | None:
    """The patient whose MRN is ``text`` (preferred) or whose id it is; None when neither."""
    as_id = int(text) if text.isdigit() and len(text) <= 18 else -1
    pid = _scalar(
        conn,
        "SELECT patient_id FROM patients WHERE mrn = %s OR patient_id = %s ORDER BY mrn = %s DESC LIMIT 1",
        (text, as_id, text),
    )
    return None if pid is None else int(pid)


def patient_header(conn: Conn, patient_id: int) -> PatientHeader | None:
    row = conn.execute(
        "SELECT patient_id, mrn, state, timezone FROM patients WHERE patient_id = %s", (patient_id,)
    ).fetchone()
    return None if row is None else PatientHeader(int(row[0]), row[1], row[2], row[3])


def timezone_of(conn: Conn, patient_id: int | None, device_id: str | None = None) -> str | None:
    """The time zone of the patient, or (no patient given) of the device's current patient."""
    tz = _scalar(
        conn,
        "SELECT p.timezone FROM patients p WHERE p.patient_id = coalesce(%s::bigint, (SELECT a.patient_id"
        " FROM device_assignments a WHERE a.device_id = %s AND a.valid_to IS NULL))",
        (patient_id, device_id),
    )
    return None if tz is None else str(tz)


def patient_names(conn: Conn, patient_ids: list[int]) -> dict[int, str]:
    """``display_name`` by patient id, for the ids that exist."""
    rows = conn.execute(
        "SELECT patient_id, display_name FROM patients WHERE patient_id = ANY(%s)", (patient_ids,)
    )
    return {int(pid): name for pid, name in rows}


def patient_picker(conn: Conn) -> list[dict[str, Any]]:
    """``patient_id``, ``mrn`` of the first 2000 patients by MRN (the admin's pick lists)."""
    return dict_rows(conn, "SELECT patient_id, mrn FROM patients ORDER BY mrn LIMIT 2000")


# For SQL with named parameters: true when the row's patient is visible to %(viewer)s, or the
# viewer is unscoped (NULL). Flags of no patient (an unassigned device) carry no patient data.
# ``patients_visible_to(user_id)`` (migration 0097) is the one definition of who sees whom.
VISIBLE: Final = ("(%(viewer)s::bigint IS NULL OR {col} IS NULL"
                  " OR {col} IN (SELECT patients_visible_to(%(viewer)s::bigint)))")


def visible(col: str) -> str:
    """The :data:`VISIBLE` condition for the patient id column ``col`` (a fixed identifier)."""
    return VISIBLE.format(col=col)


def patient_row(conn: Conn, patient_id: int) -> dict[str, Any] | None:
    """The patient as its pages show it; None when there is no such patient."""
    return dict_one(
        conn,
        "SELECT patient_id, mrn, display_name, state, timezone, birth_year, created_at FROM patients"
        " WHERE patient_id = %s",
        (patient_id,),
    )


def patient_list(conn: Conn, limit: int = 500) -> list[dict[str, Any]]:
    """The newest ``limit`` patients with their count of current devices (the admin's list)."""
    return dict_rows(
        conn,
        "SELECT p.patient_id, p.mrn, p.display_name, p.state, p.timezone, p.created_at,"
        " (SELECT count(*) FROM device_assignments a WHERE a.patient_id = p.patient_id"
        "  AND a.valid_to IS NULL) AS devices"
        " FROM patients p ORDER BY p.patient_id DESC LIMIT %s",
        (limit,),
    )


def user_list(conn: Conn) -> list[dict[str, Any]]:
    """Every account by username, with whether MFA is enrolled and its licences (the admin's list)."""
    return dict_rows(
        conn,
        "SELECT u.user_id, u.username, u.display_name, u.role, u.npi, u.is_physician_or_qhp, u.active,"
        " u.created_at, EXISTS (SELECT 1 FROM user_mfa m WHERE m.user_id = u.user_id"
        " AND m.confirmed_at IS NOT NULL) AS mfa_enrolled,"
        " coalesce(json_agg(json_build_object('state', l.state, 'license_number',"
        " l.license_number, 'valid_from', l.valid_from, 'valid_to', l.valid_to)"
        " ORDER BY l.state) FILTER (WHERE l.license_id IS NOT NULL), '[]') AS licenses"
        " FROM users u LEFT JOIN clinician_licenses l USING (user_id) GROUP BY u.user_id ORDER BY u.username",
    )
