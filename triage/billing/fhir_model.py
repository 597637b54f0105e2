"""Pure FHIR R4 building blocks for the billing export: code systems, value helpers and one
builder per resource, each a function of plain values (no database, no clock).

:mod:`triage.billing.fhir` reads the rows and wires the references; everything that decides what
a resource says lives here and is tested on plain data (``tests/triage/test_fhir_model.py``).
Findings fixed here (issue 15): tz-code only on date elements, an identity of its own for every
Observation, converted glucose without float noise, Provenance.reason as a purpose of use, and the
meter's own mmol/L (the wire's SI mol/L × 1000).
"""

from __future__ import annotations

import json
import math
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from gateway.contract import KIND_SPO2, KIND_WEIGHT
from triage.billing.engine import PatientMonth
from triage.billing.rules import Decision

UCUM = "http://unitsofmeasure.org"
LOINC = "http://loinc.org"
CPT = "http://www.ama-assn.org/go/cpt"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
NPI = "http://hl7.org/fhir/sid/us-npi"
POS = "https://www.cms.gov/Medicare/Coding/place-of-service-codes/Place_of_Service_Code_Set"
TZ_EXT = "http://hl7.org/fhir/StructureDefinition/tz-code"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
DATA_ABSENT = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
PARTICIPATION_MODE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationMode"
PROVENANCE_AGENT = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
CONSENT_SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
FLAG_CATEGORY = "http://terminology.hl7.org/CodeSystem/flag-category"
CLAIM_TYPE = "http://terminology.hl7.org/CodeSystem/claim-type"
PRIORITY = "http://terminology.hl7.org/CodeSystem/processpriority"
MRN_SYSTEM = "urn:rpmflow:mrn"
RPM = "urn:rpmflow:"  # prefix of our own extension urls and identifier systems

BP_PROFILE = "http://hl7.org/fhir/StructureDefinition/bp"
HR_PROFILE = "http://hl7.org/fhir/StructureDefinition/heartrate"
WEIGHT_PROFILE = "http://hl7.org/fhir/StructureDefinition/bodyweight"
SPO2_PROFILE = "http://hl7.org/fhir/StructureDefinition/oxygensat"
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:rpmflow:fhir")


def resource_uuid(resource_type: str, key: str) -> str:
    """The stable id of a resource: UUIDv5 of its type and database key (no PHI in the key)."""
    return str(uuid.uuid5(_NAMESPACE, f"{resource_type}/{key}"))


def _ref(resource_type: str, key: str) -> dict[str, str]:
    return {"reference": f"urn:uuid:{resource_uuid(resource_type, key)}"}


def _coding(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    c = {"system": system, "code": code}
    if display:
        c["display"] = display
    return {"coding": [c], "text": display or code}


def _quantity(value: float, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _value(value: Any, unit: str) -> dict[str, Any]:
    """``valueQuantity`` (a zero stays 0), or ``dataAbsentReason`` for a missing or non-finite value."""
    if _finite(value):
        return {"valueQuantity": _quantity(value, unit)}
    code = "unknown" if value is None else "error"
    return {"dataAbsentReason": _coding(DATA_ABSENT, code)}


def _decimal(value: Any, places: int | None) -> Any:
    """A finite number without float noise: ``places`` decimals (converted values), or as stored
    but cut at 6 decimals (e.g. 128.00000000000003 → 128.0). Anything else is passed through."""
    if not _finite(value):
        return value
    d = Decimal(repr(float(value))).quantize(Decimal(1).scaleb(-(6 if places is None else places)))
    return float(d.normalize()) if d != d.to_integral_value() else float(d.to_integral_value())


def _molar(original: Any) -> bool:
    return isinstance(original, dict) and original.get("unit") in ("mol/L", "mmol/L")


def _meter_mmol(original: Any) -> float | None:
    """The meter's own value in mmol/L: the wire carries SI ``mol/L`` (× 1000) or ``mmol/L``."""
    if not _molar(original) or not _finite(original.get("concentration")):
        return None
    conc = Decimal(repr(float(original["concentration"])))
    if original["unit"] == "mol/L":
        conc *= 1000
    return float(conc.quantize(Decimal("0.01")).normalize())


def _local(ts: datetime, tz: str) -> str:
    return ts.astimezone(ZoneInfo(tz)).isoformat()


def _ext(name: str, **value: Any) -> dict[str, Any]:
    return {"url": RPM + name, **value}


def _json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, default=str)


class Bundle:
    """Entries keyed by fullUrl: a resource reached from two patient-months is written once."""

    def __init__(self) -> None:
        self.entries: dict[str, dict[str, Any]] = {}

    def add(self, resource_type: str, key: str, body: dict[str, Any]) -> dict[str, str]:
        rid = resource_uuid(resource_type, key)
        url = f"urn:uuid:{rid}"
        if url not in self.entries:
            self.entries[url] = {
                "fullUrl": url,
                "resource": {"resourceType": resource_type, "id": rid, **body},
            }
        return {"reference": url}

    def has(self, resource_type: str, key: str) -> bool:
        return f"urn:uuid:{resource_uuid(resource_type, key)}" in self.entries


def patient_body(pm: PatientMonth) -> dict[str, Any]:
    """MRN and state only (no name, birth date or contact); the zone as our own extension, since
    R4 allows tz-code on date elements only."""
    return {
        "identifier": [{"system": MRN_SYSTEM, "value": pm.mrn}],
        "address": [{"state": pm.state}],
        "extension": [_ext("timezone", valueCode=pm.timezone)],
    }


@dataclass(frozen=True)
class ReadingRow:
    reading_id: int
    message_id: str
    kind: str
    measured_at: datetime
    systolic: float | None = None
    diastolic: float | None = None
    pulse: float | None = None
    glucose_mg_dl: float | None = None
    device_id: str = ""
    transmission: str = "automatic"
    original: Any = None
    meal: str | None = None
    sample_type: str | None = None
    weight_kg: float | None = None
    spo2_pct: float | None = None


def observation_bodies(r: ReadingRow, patient: dict[str, str], tz: str) -> list[tuple[str, dict[str, Any]]]:
    """(key, body) of the Observations one reading becomes: BP panel (+ heart rate), or glucose in
    mg/dL (+ the meter's own mmol/L it was derived from). Each has identifiers of its own."""
    base = _observation_base(r, patient, tz)
    if r.kind == "blood_pressure":
        return _bp_bodies(r, base)
    if r.kind == "glucose":
        return _glucose_bodies(r, base)
    if r.kind in (KIND_WEIGHT, KIND_SPO2):
        return _vitals_bodies(r, base)
    return []


def _observation_base(r: ReadingRow, patient: dict[str, str], tz: str) -> dict[str, Any]:
    """What every Observation of a reading shares: its identity, time in the patient's zone, device."""
    rid = str(r.reading_id)
    return {
        "identifier": [
            {"system": RPM + "reading", "value": rid},
            {"system": RPM + "message-id", "value": r.message_id},
        ],
        "status": "final",
        "subject": patient,
        "effectiveDateTime": _local(r.measured_at, tz),
        "_effectiveDateTime": {"extension": [{"url": TZ_EXT, "valueCode": tz}]},
        "extension": [_ext("transmission", valueCode=r.transmission)],
        "device": _ref("Device", r.device_id),
        "category": [_coding(OBS_CATEGORY, "vital-signs", "Vital Signs")],
    }


def _bp_bodies(r: ReadingRow, base: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The BP panel (85354-9, mm[Hg]) and, when the cuff sent one, its heart rate (8867-4)."""
    rid = str(r.reading_id)
    out: list[tuple[str, dict[str, Any]]] = [
        (
            rid,
            {
                **base,
                "meta": {"profile": [BP_PROFILE]},
                "code": _coding(LOINC, "85354-9", "Blood pressure panel"),
                "component": [
                    {
                        "code": _coding(LOINC, "8480-6", "Systolic blood pressure"),
                        **_value(_decimal(r.systolic, None), "mm[Hg]"),
                    },
                    {
                        "code": _coding(LOINC, "8462-4", "Diastolic blood pressure"),
                        **_value(_decimal(r.diastolic, None), "mm[Hg]"),
                    },
                ],
            },
        )
    ]
    if r.pulse is not None:
        out.append(
            (
                f"{rid}/hr",
                {
                    **base,
                    "identifier": [{"system": RPM + "reading-heart-rate", "value": rid}],
                    "meta": {"profile": [HR_PROFILE]},
                    "code": _coding(LOINC, "8867-4", "Heart rate"),
                    **_value(_decimal(r.pulse, None), "/min"),
                    "derivedFrom": [_ref("Observation", rid)],
                },
            )
        )
    return out


def _glucose_bodies(r: ReadingRow, base: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Glucose in mg/dL (2339-0), after the meter's own mmol/L (15074-8) it was derived from, if any."""
    rid = str(r.reading_id)
    out: list[tuple[str, dict[str, Any]]] = []
    glu: dict[str, Any] = {
        **base,
        "category": [_coding(OBS_CATEGORY, "laboratory", "Laboratory")],  # US Core: laboratory
        "code": _coding(LOINC, "2339-0", "Glucose [Mass/volume] in Blood"),
        **_value(_decimal(r.glucose_mg_dl, 1 if _molar(r.original) else None), "mg/dL"),
    }
    glu["extension"] = [
        *base["extension"],
        *(_ext(k, valueString=v) for k, v in (("meal", r.meal), ("sample-type", r.sample_type)) if v),
    ]
    mmol = _meter_mmol(r.original)
    if mmol is not None:
        out.append(
            (
                f"{rid}/mmol",
                {
                    **glu,
                    "identifier": [{"system": RPM + "reading-meter-unit", "value": rid}],
                    "code": _coding(LOINC, "15074-8", "Glucose [Moles/volume] in Blood"),
                    **_value(mmol, "mmol/L"),
                },
            )
        )
        glu["derivedFrom"] = [_ref("Observation", f"{rid}/mmol")]
    out.append((rid, glu))
    return out


def _vitals_bodies(r: ReadingRow, base: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Body weight (29463-7, kg), or SpO2 (59408-5 with 2708-6, %) plus the oximeter's pulse rate
    (8867-4, /min): FHIR R4 vital-signs profiles, UCUM units (DOMAIN E1, issue 16)."""
    rid = str(r.reading_id)
    if r.kind == KIND_WEIGHT:
        weight = {
            **base,
            "meta": {"profile": [WEIGHT_PROFILE]},
            "code": _coding(LOINC, "29463-7", "Body weight"),
            **_value(_decimal(r.weight_kg, None), "kg"),
        }
        return [(rid, weight)]
    code = _coding(LOINC, "59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry")
    code["coding"].append(
        {"system": LOINC, "code": "2708-6", "display": "Oxygen saturation in Arterial blood"}
    )
    spo2 = {
        **base,
        "meta": {"profile": [SPO2_PROFILE]},
        "code": code,
        **_value(_decimal(r.spo2_pct, None), "%"),
    }
    out: list[tuple[str, dict[str, Any]]] = [(rid, spo2)]
    if r.pulse is not None:
        pulse = {
            **base,
            "identifier": [{"system": RPM + "reading-heart-rate", "value": rid}],
            "meta": {"profile": [HR_PROFILE]},
            "code": _coding(LOINC, "8867-4", "Heart rate"),
            **_value(_decimal(r.pulse, None), "/min"),
            "derivedFrom": [_ref("Observation", rid)],
        }
        out.append((f"{rid}/hr", pulse))
    return out


def provenance_reason() -> list[dict[str, Any]]:
    """Provenance.reason is the purpose of use (treatment); the diagnoses travel with the review."""
    return [_coding(ACT_REASON, "TREAT", "treatment")]


def charge_item_body(
    pm: PatientMonth,
    d: Decision,
    key: str,
    *,
    support: list[dict[str, str]],
    performer: dict[str, str] | None,
) -> dict[str, Any]:
    """One code considered: billable or not, with the rule, reason, evidence and profile."""
    charge: dict[str, Any] = {
        "identifier": [{"system": RPM + "charge", "value": key}],
        "status": "billable" if d.emitted else "not-billable",
        "code": _coding(CPT, d.code),
        "subject": _ref("Patient", str(pm.patient_id)),
        "quantity": {"value": d.units},
        "reason": [_coding(ICD10, c) for c in pm.icd10_codes],
        "note": [{"text": f"{d.rule}: {d.reason}"}],
        "extension": [
            _ext("billing-evidence", valueString=_json(d.evidence)),
            _ext("policy-version", valueString=str(d.evidence.get("policy") or pm.policy_version)),
            _ext("rule", valueCode=d.rule),
        ],
    }
    if support:
        charge["supportingInformation"] = support
    if d.date_of_service is not None:
        charge["occurrenceDateTime"] = d.date_of_service.isoformat()
    if performer is not None:
        charge["performer"] = [{"actor": performer}]
    return charge
