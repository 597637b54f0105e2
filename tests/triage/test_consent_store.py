"""Licences, enrolments and consents' store, read as the roles that call it: triage (promotion at
the date of service) and the dashboard (the admin's patient list)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import psycopg
import pytest

from triage.clinical import consent_store, people

Conn = psycopg.Connection[Any]


def _patient_and_clinician(db: Conn) -> tuple[int, int]:
    pid = people.create_patient(db, mrn="CS-1", display_name="Consent Store", state="NY")
    doc = people.create_user(db, username="cs-doc", display_name="Dr Consent", role="clinician",
                             npi="1234567893", is_physician_or_qhp=True)
    return pid, doc


def test_promotion_reads_licences_consents_and_enrolments(db: Conn, as_triage: Conn) -> None:
    pid, doc = _patient_and_clinician(db)
    people.add_licence(db, doc, state="ny", license_number="NY-1", valid_from=date(2025, 1, 1),
                       valid_to=date(2027, 12, 31))
    first = people.enrol(db, pid, ordering_user_id=doc, icd10_codes=["I10"], start_date=date(2026, 1, 5))
    people.end_enrolment(db, first, end_date=date(2026, 2, 28))
    people.enrol(db, pid, ordering_user_id=doc, icd10_codes=[], start_date=date(2026, 4, 1))
    consent = people.record_consent(db, pid, consented_at=datetime(2026, 1, 5, 3, tzinfo=UTC),
                                    method="verbal", recorded_by=doc, version="v1")
    people.revoke_consent(db, consent, revoked_at=datetime(2026, 3, 1, 12, tzinfo=UTC))

    assert consent_store.licences(as_triage, doc) == [("NY", date(2025, 1, 1), date(2027, 12, 31))]
    assert consent_store.licence_states(as_triage, doc) == {"NY"}
    assert sorted(consent_store.enrolment_spans(as_triage, pid), key=lambda s: s[0]) == [
        (date(2026, 1, 5), date(2026, 2, 28)), (date(2026, 4, 1), None)]
    # consented 03:00 UTC on 5 January is still 4 January in New York
    assert consent_store.consent_dates(as_triage, pid, "America/New_York") == [
        (date(2026, 1, 4), date(2026, 3, 1), "v1")]


def test_admin_list_summaries(db: Conn, as_dashboard: Conn) -> None:
    pid, doc = _patient_and_clinician(db)
    people.enrol(db, pid, ordering_user_id=doc, icd10_codes=["I10"], start_date=date(2020, 1, 1),
                 end_date=date(2020, 12, 31))
    people.record_consent(db, pid, consented_at=datetime(2020, 1, 1, tzinfo=UTC), method="written",
                          recorded_by=doc, version="v2")
    revoked = people.record_consent(db, pid, consented_at=datetime(2020, 1, 1, tzinfo=UTC),
                                    method="written", recorded_by=doc, version="v9")
    people.revoke_consent(db, revoked, revoked_at=datetime(2020, 6, 1, tzinfo=UTC))

    assert consent_store.enrolment_summaries(as_dashboard) == [
        {"patient_id": pid, "start_date": date(2020, 1, 1), "active": False}]
    assert consent_store.consent_summaries(as_dashboard) == [{"patient_id": pid, "version": "v2"}]


def test_refused_changes_leave_nothing_to_change(db: Conn) -> None:
    pid, doc = _patient_and_clinician(db)
    enrolment = people.enrol(db, pid, ordering_user_id=doc, icd10_codes=[], start_date=date(2026, 3, 1))
    assert not consent_store.end_enrolment(db, enrolment, date(2026, 2, 1)), "ends before it starts"
    assert not consent_store.revoke_consent(db, 10_000, datetime(2026, 3, 1, tzinfo=UTC))
    with pytest.raises(people.InvalidPerson, match="no such unrevoked consent"):
        people.revoke_consent(db, 10_000, revoked_at=datetime(2026, 3, 1, tzinfo=UTC))
