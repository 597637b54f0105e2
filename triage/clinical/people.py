"""The people and facts RPM billing is gated on: patients, users and licences, enrolments (the
order), consent and device assignment history.

Thin on purpose: each helper validates its input into a typed error and makes one statement or one
small transaction, returning the new row's id; the statements are the stores' (``people_store``
for users and patients, ``consent_store`` for licences, enrolments and consents). Device
assignments keep their history (a reassigned device closes its previous row), because a reading
maps to the assignment valid at its time.
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import psycopg

from triage.clinical import assignments, consent_store, icd10, people_store
from triage.errors import TerminalTriageError

ROLES = ("nurse", "clinician", "billing", "admin")
CONSENT_METHODS = ("verbal", "written", "electronic")
LOCKED = "!"  # a password hash no password matches: the account cannot sign in


class InvalidPerson(TerminalTriageError):
    """Input about a patient, user, licence, enrolment or consent that cannot be stored."""

    def __init__(self, field: str, value: object, reason: str) -> None:
        super().__init__(f"{field}={value!r}: {reason}")
        self.field = field
        self.value = value
        self.reason = reason


def _need_aware(field: str, at: datetime) -> None:
    if at.tzinfo is None:
        raise InvalidPerson(field, at, "must be timezone-aware")


def create_patient(
    conn: psycopg.Connection[Any],
    *,
    mrn: str,
    display_name: str,
    state: str,
    timezone: str = "America/New_York",
    birth_year: int | None = None,
) -> int:
    if len(state) != 2 or not state.isalpha():
        raise InvalidPerson("state", state, "must be a two-letter US state code")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidPerson("timezone", timezone, "not an IANA time zone") from None
    return people_store.insert_patient(conn, mrn, display_name, state.upper(), timezone, birth_year)


def create_user(
    conn: psycopg.Connection[Any],
    *,
    username: str,
    display_name: str,
    role: str,
    password_hash: str = LOCKED,
    npi: str | None = None,
    is_physician_or_qhp: bool = False,
) -> int:
    """A user row; ``password_hash='!'`` is a locked account (seeding, tests, service users)."""
    if role not in ROLES:
        raise InvalidPerson("role", role, f"must be one of {', '.join(ROLES)}")
    if npi is not None and not (len(npi) == 10 and npi.isdigit()):
        raise InvalidPerson("npi", npi, "must be 10 digits")
    return people_store.insert_user(
        conn, username, display_name, role, password_hash, npi, is_physician_or_qhp
    )


def add_licence(
    conn: psycopg.Connection[Any],
    user_id: int,
    *,
    state: str,
    license_number: str,
    valid_from: date,
    valid_to: date,
) -> int:
    if valid_to < valid_from:
        raise InvalidPerson("valid_to", valid_to, "is before valid_from")
    if len(state) != 2 or not state.isalpha():
        raise InvalidPerson("state", state, "must be a two-letter US state code")
    return consent_store.insert_licence(conn, user_id, state.upper(), license_number, valid_from, valid_to)


def enrol(
    conn: psycopg.Connection[Any],
    patient_id: int,
    *,
    ordering_user_id: int,
    icd10_codes: Sequence[str],
    start_date: date,
    end_date: date | None = None,
    established_visit_date: date | None = None,
    education_documented_on: date | None = None,
    episode_id: int | None = None,
    payer: str = "medicare",
) -> int:
    """Record an RPM enrolment and, when ``icd10_codes`` are given, its order (an ``rpm_orders``
    row dated ``start_date``, written by the database). A new episode of care starts unless
    ``episode_id`` continues one (a device swap or re-enrolment in the same episode: no second
    99453). Without codes there is no order until ``triage.billing.records.record_order``."""
    codes = icd10.validate_codes(icd10_codes) if icd10_codes else []
    if end_date is not None and end_date < start_date:
        raise InvalidPerson("end_date", end_date, "is before start_date")
    return consent_store.insert_enrolment(conn, patient_id, ordering_user_id, codes, start_date, end_date,
                                          established_visit_date, education_documented_on, payer, episode_id)


def end_enrolment(conn: psycopg.Connection[Any], enrolment_id: int, *, end_date: date) -> None:
    if not consent_store.end_enrolment(conn, enrolment_id, end_date):
        raise InvalidPerson("enrolment_id", enrolment_id, "no such enrolment starting on/before end_date")


def record_consent(
    conn: psycopg.Connection[Any],
    patient_id: int,
    *,
    consented_at: datetime,
    method: str,
    recorded_by: int,
    version: str,
    scope: Sequence[str] = ("rpm",),
) -> int:
    """Consent from ``consented_at`` for ``scope`` (RPM billing needs ``"rpm"``, DOMAIN G2)."""
    _need_aware("consented_at", consented_at)
    if method not in CONSENT_METHODS:
        raise InvalidPerson("method", method, f"must be one of {', '.join(CONSENT_METHODS)}")
    scopes = [s.strip().lower() for s in scope if s.strip()]
    if not scopes:
        raise InvalidPerson("scope", list(scope), "name at least one scope, e.g. 'rpm'")
    return consent_store.insert_consent(conn, patient_id, consented_at, method, recorded_by, version, scopes)


def revoke_consent(conn: psycopg.Connection[Any], consent_id: int, *, revoked_at: datetime) -> None:
    _need_aware("revoked_at", revoked_at)
    if not consent_store.revoke_consent(conn, consent_id, revoked_at):
        raise InvalidPerson("consent_id", consent_id, "no such unrevoked consent")


def assign_device(
    conn: psycopg.Connection[Any],
    device_id: str,
    patient_id: int,
    *,
    at: datetime,
    assigned_by: str,
    kind: str = "blood_pressure",
    fda_cleared: bool = True,
) -> int:
    """Assign a device from ``at`` (past or now), closing its open assignment at that instant and
    moving the readings that changed hands (triage/clinical/assignments.py); the new row's id."""
    try:
        moved = assignments.assign(conn, device_id, patient_id, at=at, assigned_by=assigned_by, kind=kind,
                                   fda_cleared=fda_cleared)
    except assignments.AssignmentRefused as exc:
        raise InvalidPerson("at", at, str(exc)) from exc
    assert moved.assignment_id is not None
    return moved.assignment_id


def unassign_device(
    conn: psycopg.Connection[Any], device_id: str, *, at: datetime, ended_by: str = "system"
) -> None:
    """End the device's open assignment at ``at``; readings from then on are no longer the patient's."""
    try:
        assignments.end(conn, device_id, at=at, ended_by=ended_by)
    except assignments.AssignmentRefused as exc:
        raise InvalidPerson("device_id", device_id, str(exc)) from exc
