"""Pure FHIR builders for the clinical side of a billing month: Practitioner, Flag, Provenance (the
clinician review) and Communication.

Plain rows in, resource bodies out, no database and no clock: :mod:`triage.billing.fhir` reads the
rows (:mod:`triage.billing.fhir_store`) and decides which references exist in the bundle; what each
resource says is decided here. The row tuples are in the column order of the fhir_store read that
produces them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC
from typing import Any, Protocol

from triage import lifecycle
from triage.billing.fhir_model import (
    FLAG_CATEGORY,
    NPI,
    PARTICIPATION_MODE,
    PROVENANCE_AGENT,
    RPM,
    _coding,
    _ext,
    _json,
    _local,
    _ref,
    provenance_reason,
)

Ref = dict[str, str]

# Communication modes that map to a v3 ParticipationMode; the others (voicemail, letter) have none.
MEDIUM = {
    "phone": ("PHONE", "telephone"),
    "video": ("VIDEOCONF", "videoconferencing"),
    "portal_live_chat": ("ONLINEWRIT", "online written"),
    "portal_message": ("ONLINEWRIT", "online written"),
}


class StaffMember(Protocol):
    """What a Practitioner shows of a staff account (people_store.PractitionerRow has it)."""

    @property
    def username(self) -> str: ...
    @property
    def role(self) -> str: ...
    @property
    def npi(self) -> str | None: ...
    @property
    def is_physician_or_qhp(self) -> bool: ...


def practitioner_body(row: StaffMember | None) -> dict[str, Any]:
    """NPI and staff username only; an unknown user still gets a (bare) Practitioner."""
    ident = []
    if row is not None and row.npi:
        ident.append({"system": NPI, "value": row.npi})
    if row is not None:  # staff identifier, never a patient's
        ident.append({"system": RPM + "username", "value": row.username})
    body: dict[str, Any] = {"identifier": ident, "active": True}
    if row is not None:
        body["extension"] = [
            _ext("role", valueCode=row.role),
            _ext("physician-or-qhp", valueBoolean=row.is_physician_or_qhp),
        ]
    return body


def flag_body(row: Sequence[Any], patient: Ref, tz: str, readings: Sequence[Ref]) -> dict[str, Any]:
    """A promoted flag with its billable event; ``readings`` are the Observations in the bundle."""
    _fid, rule, severity, state, reason, _ids, opened, closed, dos, minutes, inter, pos, npi = row
    period = {"start": _local(opened, tz)}
    if closed is not None:
        period["end"] = _local(closed, tz)
    event = {
        "date_of_service": dos,
        "minutes": minutes,
        "interactive": inter,
        "place_of_service": pos,
        "rendering_npi": npi,
    }
    return {
        "identifier": [{"system": RPM + "flag", "value": str(row[0])}],
        "status": "active" if state in lifecycle.ACTIVE_STATES else "inactive",
        "category": [_coding(FLAG_CATEGORY, "clinical", "Clinical")],
        "code": {"coding": [{"system": RPM + "triage-rule", "code": rule}], "text": reason},
        "subject": patient,
        "period": period,
        "author": {"display": "rpmflow triage rules"},
        "extension": [
            _ext("severity", valueCode=severity),
            _ext("state", valueCode=state),
            _ext("billable-event", valueString=_json(event)),
            *(_ext("flag-reading", valueReference=r) for r in readings),
        ],
    }


def provenance_body(row: Sequence[Any], who: Ref, state: str, tz: str) -> dict[str, Any]:
    """The clinician review of a flag, with whether the reviewer was licensed in ``state`` then."""
    rid, fid, _uid, at, dos, determination, icd, action, minutes, inter, mode, pos, licence = row
    review = {
        "review_id": rid,
        "icd10_codes": list(icd),
        "date_of_service": dos,
        "determination": determination,
        "action_taken": action,
        "minutes": minutes,
        "interactive": inter,
        "interactive_mode": mode,
        "place_of_service": pos,
    }
    licensed = {"state": state, "on": dos, "licensed": licence is not None, "license_number": licence}
    return {
        "target": [_ref("Flag", str(fid))],
        "occurredDateTime": _local(at, tz),
        "recorded": at.astimezone(UTC).isoformat(),
        "activity": {
            "coding": [{"system": RPM + "activity", "code": "flag.review"}],
            "text": "clinician review of a triage flag",
        },
        "agent": [{"type": _coding(PROVENANCE_AGENT, "verifier", "Verifier"), "who": who}],
        "reason": provenance_reason(),
        "extension": [
            _ext("review", valueString=_json(review)),
            _ext("licensed-in-state", valueString=_json(licensed)),
        ],
    }


def communication_body(
    row: Sequence[Any], patient: Ref, sender: Ref, tz: str, about: Ref | None
) -> dict[str, Any]:
    """A contact with the patient; ``about`` is its flag when that flag is in the bundle."""
    cid, at, mode, two_way, _uid, _fid = row
    body: dict[str, Any] = {
        "identifier": [{"system": RPM + "communication", "value": str(cid)}],
        "status": "completed",
        "subject": patient,
        "sent": _local(at, tz),
        "sender": sender,
        "recipient": [patient],
        "extension": [
            _ext("two-way-realtime", valueBoolean=bool(two_way)),
            _ext("mode", valueCode=mode),
        ],
    }
    if mode in MEDIUM:
        body["medium"] = [_coding(PARTICIPATION_MODE, *MEDIUM[mode])]
    if about is not None:
        body["about"] = [about]
    return body
