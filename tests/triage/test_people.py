from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import psycopg
import pytest

from triage.clinical import assignments, people
from triage.clinical.icd10 import InvalidICD10


def test_device_assignment_keeps_history(db: psycopg.Connection[Any]) -> None:
    a = people.create_patient(db, mrn="A", display_name="A", state="ny")
    b = people.create_patient(db, mrn="B", display_name="B", state="NJ", timezone="America/Chicago")
    t1, t2, t3 = (datetime(2026, 1, d, tzinfo=UTC) for d in (1, 10, 20))
    people.assign_device(db, "bp-9", a, at=t1, assigned_by="nurse")
    people.assign_device(db, "bp-9", b, at=t2, assigned_by="nurse")
    people.unassign_device(db, "bp-9", at=t3)
    assert assignments.device_history(db, "bp-9") == [(a, t1, t2), (b, t2, t3)]
    with pytest.raises(people.InvalidPerson):
        people.unassign_device(db, "bp-9", at=t3)


@pytest.mark.parametrize("kw,field", [({"state": "New York"}, "state"), ({"timezone": "EST+5"}, "timezone")])
def test_patient_validation(db: psycopg.Connection[Any], kw: dict[str, str], field: str) -> None:
    args: dict[str, Any] = {"mrn": "X", "display_name": "X", "state": "NY", **kw}
    with pytest.raises(people.InvalidPerson) as info:
        people.create_patient(db, **args)
    assert info.value.field == field


def test_enrolment_consent_and_licence_validation(db: psycopg.Connection[Any]) -> None:
    pid = people.create_patient(db, mrn="C", display_name="C", state="NY")
    doc = people.create_user(db, username="doc", display_name="Doc", role="clinician", npi="1234567893")
    with pytest.raises(InvalidICD10):
        people.enrol(db, pid, ordering_user_id=doc, icd10_codes=["HTN"], start_date=date(2026, 1, 1))
    eid = people.enrol(db, pid, ordering_user_id=doc, icd10_codes=["e1165"], start_date=date(2026, 1, 1))
    assert db.execute("SELECT order_icd10 FROM enrolments WHERE enrolment_id = %s", (eid,)).fetchone() == (
        ["E11.65"],
    )
    people.end_enrolment(db, eid, end_date=date(2026, 6, 30))
    with pytest.raises(people.InvalidPerson):
        people.record_consent(
            db, pid, consented_at=datetime(2026, 1, 1), method="verbal", recorded_by=doc, version="v1"
        )
    with pytest.raises(people.InvalidPerson):
        people.record_consent(
            db,
            pid,
            consented_at=datetime(2026, 1, 1, tzinfo=UTC),
            method="implied",
            recorded_by=doc,
            version="v1",
        )
    with pytest.raises(people.InvalidPerson):
        people.add_licence(
            db, doc, state="NY", license_number="1", valid_from=date(2026, 2, 1), valid_to=date(2026, 1, 1)
        )
    with pytest.raises(people.InvalidPerson):
        people.create_user(db, username="x", display_name="x", role="superuser")
