"""The ``users`` and ``patients`` tables' reads and small updates, stated once for triage and dashboards.

Staff accounts and patients are read by review, billing records, load and FHIR, and by the
dashboards' sign-in, admin, billing and care-team pages; each used to write its own ``SELECT … FROM
users`` (or ``patients``). Creating a row stays in ``people.create_user``/``create_patient`` (they
validate it); a patient's state follows its location history in ``locations.py``; statements that
join these tables to another table's rows (sessions, reviews, time logs) belong to that table's owner.

Every function runs one statement on the caller's connection and transaction. Rows a page renders
come back as dicts (the dashboards' templates read them by name); the rest as plain values.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import psycopg

from triage.rows import dict_rows

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


def mrn_taken(conn: Conn, mrn: str) -> bool:
    return _scalar(conn, "SELECT 1 AS x FROM patients WHERE mrn = %s", (mrn,)) is not None


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


def patient_names(conn: Conn, patient_ids: list[int]) -> dict[int, str]:
    """``display_name`` by patient id, for the ids that exist."""
    rows = conn.execute(
        "SELECT patient_id, display_name FROM patients WHERE patient_id = ANY(%s)", (patient_ids,)
    )
    return {int(pid): name for pid, name in rows}


def patient_picker(conn: Conn) -> list[dict[str, Any]]:
    """``patient_id``, ``mrn`` of the first 2000 patients by MRN (the admin's pick lists)."""
    return dict_rows(conn, "SELECT patient_id, mrn FROM patients ORDER BY mrn LIMIT 2000")
