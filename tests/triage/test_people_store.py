"""The users table's store, run as the roles that call it: the dashboard (admin, sign-in) and triage."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from simulators.embedded_postgres import DatabaseUrls
from triage.clinical import people, people_store

Conn = psycopg.Connection[Any]


@pytest.fixture
def as_dashboard(database_urls: DatabaseUrls) -> Iterator[Conn]:
    with psycopg.connect(database_urls.dashboard, autocommit=True) as conn:
        yield conn


@pytest.fixture
def as_triage(database_urls: DatabaseUrls) -> Iterator[Conn]:
    with psycopg.connect(database_urls.triage, autocommit=True) as conn:
        yield conn


def test_dashboard_reads_and_updates_accounts(db: Conn, as_dashboard: Conn) -> None:
    doc = people.create_user(db, username="ps-doc", display_name="Dr Store", role="clinician",
                             password_hash="h1", npi="1234567893", is_physician_or_qhp=True)
    nurse = people.create_user(db, username="ps-nurse", display_name="Nurse Store", role="nurse")
    missing = doc + nurse + 1000

    assert people_store.username_of(as_dashboard, nurse) == "ps-nurse"
    assert people_store.username_of(as_dashboard, missing) is None
    assert people_store.role_of(as_dashboard, doc) == "clinician"
    assert people_store.role_of(as_dashboard, missing) is None
    assert people_store.user_exists(as_dashboard, doc)
    assert not people_store.user_exists(as_dashboard, missing)
    assert people_store.username_taken(as_dashboard, "ps-doc")
    assert not people_store.username_taken(as_dashboard, "ps-nobody")
    assert people_store.sign_in_record(as_dashboard, "ps-doc") == people_store.SignInRecord(doc, "h1", True)
    assert people_store.sign_in_record(as_dashboard, "ps-nobody") is None

    people_store.set_password_hash(as_dashboard, doc, "h2")
    assert people_store.sign_in_record(as_dashboard, "ps-doc") == people_store.SignInRecord(doc, "h2", True)
    assert {"user_id": doc, "display_name": "Dr Store"} in people_store.active_clinicians(as_dashboard)
    staff = people_store.active_care_staff(as_dashboard)
    assert {"user_id": nurse, "username": "ps-nurse", "role": "nurse"} in staff

    assert people_store.set_active(as_dashboard, nurse, False)
    assert not people_store.set_active(as_dashboard, missing, False)
    assert people_store.active_user_id(as_dashboard, "ps-nurse") is None
    assert people_store.active_user_id(as_dashboard, "ps-doc") == doc
    assert nurse not in [s["user_id"] for s in people_store.active_care_staff(as_dashboard)]


def test_triage_reads_actors_and_practitioners(db: Conn, as_triage: Conn) -> None:
    doc = people.create_user(db, username="ps-qhp", display_name="Q", role="clinician", npi="1234567893",
                             is_physician_or_qhp=True)
    gone = people.create_user(db, username="ps-gone", display_name="G", role="nurse")
    db.execute("UPDATE users SET active = false WHERE user_id = %s", (gone,))

    assert people_store.active_actor(as_triage, doc) == (doc, "ps-qhp", "clinician", "1234567893")
    assert people_store.active_actor(as_triage, gone) is None
    expected = people_store.PractitionerRow(doc, "ps-qhp", "clinician", "1234567893", True)
    assert people_store.practitioner(as_triage, doc) == expected
    assert sorted(people_store.practitioners(as_triage, {doc, gone}), key=lambda p: p.user_id) == [
        expected, people_store.PractitionerRow(gone, "ps-gone", "nurse", None, False)
    ]


def test_patient_lookups(db: Conn, as_dashboard: Conn, as_triage: Conn) -> None:
    pid = people.create_patient(db, mrn="PS-1", display_name="Pat Store", state="ny",
                                timezone="America/Chicago")
    digits = people.create_patient(db, mrn=str(pid), display_name="Digits", state="NJ")
    missing = pid + digits + 1000

    assert people_store.patient_exists(as_triage, pid)
    assert not people_store.patient_exists(as_triage, missing)
    assert people_store.mrn_taken(as_dashboard, "PS-1")
    assert not people_store.mrn_taken(as_dashboard, "PS-none")
    assert people_store.patient_id_by_mrn_or_id(as_triage, "PS-1") == pid
    assert people_store.patient_id_by_mrn_or_id(as_triage, str(digits)) == digits
    # An all-digit MRN wins over the patient whose id it happens to be.
    assert people_store.patient_id_by_mrn_or_id(as_triage, str(pid)) == digits
    assert people_store.patient_id_by_mrn_or_id(as_triage, "PS-none") is None
    assert people_store.patient_header(as_triage, pid) == people_store.PatientHeader(
        pid, "PS-1", "NY", "America/Chicago")
    assert people_store.patient_header(as_triage, missing) is None
    assert people_store.patient_names(as_dashboard, [pid, missing]) == {pid: "Pat Store"}
    assert {"patient_id": pid, "mrn": "PS-1"} in people_store.patient_picker(as_dashboard)
