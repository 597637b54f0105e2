"""The clinical FHIR builders (Practitioner, Flag, Provenance, Communication) on plain rows, each
body validated by fhir.resources R4B."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, cast

import pytest
from fhir.resources.R4B import get_fhir_model_class

from triage.billing import fhir_clinical as fc
from triage.billing import fhir_model as fm

AT = datetime(2026, 3, 8, 7, 0, 30, tzinfo=UTC)  # 03:00:30 EDT, an hour after the DST change
NY = "America/New_York"
PATIENT = fm._ref("Patient", "1")


@dataclass(frozen=True)
class Staff:
    username: str
    role: str
    npi: str | None
    is_physician_or_qhp: bool


def _valid(rt: str, body: dict[str, object]) -> None:
    get_fhir_model_class(rt).model_validate({"resourceType": rt, "id": "x", **body})


def _ext(body: dict[str, Any], name: str) -> dict[str, Any]:
    [e] = [e for e in body["extension"] if e["url"] == "urn:rpmflow:" + name]
    return cast(dict[str, Any], e)


def test_practitioner_shows_npi_and_username_only() -> None:
    body = fc.practitioner_body(Staff("dr-a", "clinician", "1234567893", True))
    assert body["identifier"] == [
        {"system": "http://hl7.org/fhir/sid/us-npi", "value": "1234567893"},
        {"system": "urn:rpmflow:username", "value": "dr-a"},
    ]
    assert _ext(body, "physician-or-qhp")["valueBoolean"] is True
    _valid("Practitioner", body)


def test_unknown_practitioner_is_bare() -> None:
    assert fc.practitioner_body(None) == {"identifier": [], "active": True}
    assert fc.practitioner_body(Staff("n", "nurse", None, False))["identifier"] == [
        {"system": "urn:rpmflow:username", "value": "n"}
    ]


@pytest.mark.parametrize("state,status", [("reviewed", "active"), ("open", "active"), ("closed", "inactive")])
def test_flag_status_period_and_billable_event(state: str, status: str) -> None:
    row = (
        9,
        "bp_high",
        "high",
        state,
        "BP above goal",
        [4],
        AT,
        None,
        date(2026, 3, 8),
        25,
        True,
        "11",
        "123",
    )
    reading = fm._ref("Observation", "4")
    body = fc.flag_body(row, PATIENT, NY, [reading])
    assert body["status"] == status
    assert body["period"] == {"start": "2026-03-08T03:00:30-04:00"}
    assert json.loads(_ext(body, "billable-event")["valueString"]) == {
        "date_of_service": "2026-03-08",
        "minutes": 25,
        "interactive": True,
        "place_of_service": "11",
        "rendering_npi": "123",
    }
    assert _ext(body, "flag-reading")["valueReference"] == reading
    _valid("Flag", body)


def test_provenance_says_whether_the_reviewer_was_licensed() -> None:
    who = fm._ref("Practitioner", "3")
    row = (5, 9, 3, AT, date(2026, 3, 8), "above goal", ["I10"], "titrate", 20, True, "phone", "11", None)
    body = fc.provenance_body(row, who, "NJ", NY)
    assert body["target"] == [fm._ref("Flag", "9")] and body["agent"][0]["who"] == who
    assert body["recorded"] == "2026-03-08T07:00:30+00:00"
    assert json.loads(_ext(body, "licensed-in-state")["valueString"]) == {
        "state": "NJ",
        "on": "2026-03-08",
        "licensed": False,
        "license_number": None,
    }
    licensed = fc.provenance_body((*row[:-1], "L-1"), who, "NJ", NY)
    assert json.loads(_ext(licensed, "licensed-in-state")["valueString"])["licensed"] is True
    _valid("Provenance", body)


@pytest.mark.parametrize(
    "mode,medium", [("phone", "PHONE"), ("portal_message", "ONLINEWRIT"), ("voicemail", None)]
)
def test_communication_medium_and_about(mode: str, medium: str | None) -> None:
    sender, flag = fm._ref("Practitioner", "3"), fm._ref("Flag", "9")
    body = fc.communication_body((7, AT, mode, True, 3, 9), PATIENT, sender, NY, flag)
    assert body["sender"] == sender and body["recipient"] == [PATIENT] and body["about"] == [flag]
    assert [m["coding"][0]["code"] for m in body.get("medium", [])] == ([medium] if medium else [])
    assert "about" not in fc.communication_body((7, AT, mode, False, 3, None), PATIENT, sender, NY, None)
    _valid("Communication", body)
