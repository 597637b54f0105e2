"""Pure FHIR builders for the parties and paperwork of a billing month: Device, Consent,
Coverage and Claim (plain values in, resource bodies out; :mod:`triage.billing.fhir` wires them)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from triage.billing.engine import PatientMonth
from triage.billing.fhir_model import (
    ACT_CODE,
    CLAIM_TYPE,
    CONSENT_SCOPE,
    CPT,
    ICD10,
    LOINC,
    POS,
    PRIORITY,
    RPM,
    _coding,
    _ext,
    _local,
    _ref,
)
from triage.billing.rules import Decision

DEVICE_TYPES = {
    "blood_pressure": "Blood pressure monitor",
    "glucose": "Blood glucose meter",
    "weight": "Weight scale",
    "spo2": "Pulse oximeter",
}


def device_body(
    device_id: str,
    kind: str | None,
    manufacturer: str | None,
    model: str | None,
    serial: str | None,
    firmware: str | None,
    fda: bool | None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "identifier": [{"system": RPM + "device", "value": device_id}],
        "status": "active",
    }
    if kind:
        body["type"] = {"text": DEVICE_TYPES.get(kind, kind)}
    if serial:
        body["serialNumber"] = serial
    if manufacturer:
        body["manufacturer"] = manufacturer
    if model:
        body["deviceName"] = [{"name": model, "type": "model-name"}]
        body["modelNumber"] = model
    if firmware:
        body["version"] = [{"value": firmware}]
    if fda is not None:
        body["extension"] = [_ext("fda-cleared", valueBoolean=bool(fda))]
    return body


def consent_body(
    pm: PatientMonth, at: datetime, method: str, version: str, revoked: datetime | None
) -> dict[str, Any]:
    patient = _ref("Patient", str(pm.patient_id))
    period = {"start": _local(at, pm.timezone)}
    if revoked is not None:
        period["end"] = _local(revoked, pm.timezone)
    return {
        "status": "inactive" if revoked is not None else "active",
        "scope": _coding(CONSENT_SCOPE, "treatment", "Treatment"),
        "category": [_coding(LOINC, "59284-0", "Patient Consent")],
        "patient": patient,
        "dateTime": _local(at, pm.timezone),
        "performer": [patient],
        "policy": [{"uri": f"{RPM}rpm-consent:{version}"}],
        "policyRule": _coding(ACT_CODE, "OPTIN", "opt-in"),
        "provision": {"type": "permit", "period": period},
        "extension": [_ext("consent-method", valueCode=method), _ext("consent-version", valueString=version)],
    }


def coverage_body(pm: PatientMonth) -> dict[str, Any]:
    return {
        "status": "active",
        "beneficiary": _ref("Patient", str(pm.patient_id)),
        "payor": [{"identifier": {"system": RPM + "payer", "value": pm.payer}, "display": pm.payer}],
    }


def claim_body(
    pm: PatientMonth,
    emitted: Sequence[tuple[Decision, dict[str, str]]],
    *,
    key: str,
    period: tuple[date, date],
    created: date,
    provider: dict[str, str],
    coverage: dict[str, str],
) -> dict[str, Any]:
    """One professional claim: an item per emitted code (CPT, units, POS, date of service)."""
    diagnosis = [
        {"sequence": n, "diagnosisCodeableConcept": _coding(ICD10, c)}
        for n, c in enumerate(pm.icd10_codes, 1)
    ]
    items = []
    for n, (d, ref) in enumerate(emitted, 1):
        item: dict[str, Any] = {
            "sequence": n,
            "productOrService": _coding(CPT, d.code),
            "quantity": {"value": d.units},
            "locationCodeableConcept": _coding(POS, pm.place_of_service),
            "extension": [_ext("charge-item", valueReference=ref)],
        }
        if diagnosis:
            item["diagnosisSequence"] = [x["sequence"] for x in diagnosis]
        if d.date_of_service is not None:
            item["servicedDate"] = d.date_of_service.isoformat()
        items.append(item)
    return {
        "identifier": [{"system": RPM + "claim", "value": key}],
        "status": "active",
        "type": _coding(CLAIM_TYPE, "professional", "Professional"),
        "use": "claim",
        "patient": _ref("Patient", str(pm.patient_id)),
        "billablePeriod": {"start": period[0].isoformat(), "end": period[1].isoformat()},
        "created": created.isoformat(),
        "provider": provider,
        "priority": _coding(PRIORITY, "normal", "Normal"),
        "insurance": [{"sequence": 1, "focal": True, "coverage": coverage}],
        "diagnosis": diagnosis,
        "item": items,
        "extension": [_ext("policy-version", valueString=pm.policy_version)],
    }
