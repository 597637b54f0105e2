"""Claim export: CSV claim lines (837P-ready columns) and a FHIR R4 Bundle (DOMAIN E1, H12).

Lossless by construction: zeros stay zeros (no ``value or ''``), every quantity carries its UCUM
unit, and times keep the patient's offset plus the IANA zone (FHIR ``tz-code`` extension). The
billing export carries codes, dates, minutes and diagnoses; raw readings go only into the FHIR
Observations that evidence an emitted device code (minimum necessary, HIPAA §164.502(b)).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from triage.billing.compute import PatientMonth

CSV_COLUMNS = (
    "patient_mrn",
    "date_of_service",
    "cpt",
    "units",
    "place_of_service",
    "modifiers",
    "icd10",
    "rendering_npi",
)
UCUM = "http://unitsofmeasure.org"
LOINC = "http://loinc.org"
CPT = "http://www.ama-assn.org/go/cpt"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
NPI = "http://hl7.org/fhir/sid/us-npi"
TZ_EXT = "http://hl7.org/fhir/StructureDefinition/tz-code"
MRN_SYSTEM = "urn:rpmflow:mrn"


def export_csv(results: Sequence[PatientMonth]) -> str:
    """One line per emitted code; ICD-10 codes joined with ``;``; modifiers empty (none needed)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for pm in results:
        for d in pm.emitted:
            w.writerow(
                [
                    pm.mrn,
                    d.date_of_service.isoformat() if d.date_of_service else "",
                    d.code,
                    d.units,
                    pm.place_of_service,
                    "",
                    ";".join(pm.icd10_codes),
                    pm.billing_npi or "",
                ]
            )
    return buf.getvalue()


def _local(ts: datetime, tz: str) -> str:
    return ts.astimezone(ZoneInfo(tz)).isoformat()


def _quantity(value: float, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}


def _coding(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    c = {"system": system, "code": code}
    if display:
        c["display"] = display
    return {"coding": [c], "text": display or code}


def _observations(
    conn: psycopg.Connection[Any], pm: PatientMonth, reading_ids: list[int]
) -> list[dict[str, Any]]:
    if not reading_ids:
        return []
    rows = conn.execute(
        "SELECT reading_id, kind, measured_at, systolic_mmhg, diastolic_mmhg, pulse_bpm, glucose_mg_dl,"
        " device_id FROM readings WHERE reading_id = ANY(%s) ORDER BY measured_at, reading_id",
        (reading_ids,),
    ).fetchall()
    out: list[dict[str, Any]] = []
    subject = {"identifier": {"system": MRN_SYSTEM, "value": pm.mrn}}
    for rid, kind, at, sys_, dia, pulse, glucose, device in rows:
        base = {
            "resourceType": "Observation",
            "status": "final",
            "subject": subject,
            "effectiveDateTime": _local(at, pm.timezone),
            "extension": [{"url": TZ_EXT, "valueCode": pm.timezone}],
            "device": {"identifier": {"value": device}},
            "category": [
                _coding("http://terminology.hl7.org/CodeSystem/observation-category", "vital-signs")
            ],
        }
        if kind == "blood_pressure":
            comps = []
            if sys_ is not None:
                comps.append(
                    {
                        "code": _coding(LOINC, "8480-6", "Systolic blood pressure"),
                        "valueQuantity": _quantity(sys_, "mm[Hg]"),
                    }
                )
            if dia is not None:
                comps.append(
                    {
                        "code": _coding(LOINC, "8462-4", "Diastolic blood pressure"),
                        "valueQuantity": _quantity(dia, "mm[Hg]"),
                    }
                )
            out.append(
                {
                    **base,
                    "id": f"reading-{rid}",
                    "code": _coding(LOINC, "85354-9", "Blood pressure panel"),
                    "component": comps,
                }
            )
            if pulse is not None:
                out.append(
                    {
                        **base,
                        "id": f"reading-{rid}-hr",
                        "code": _coding(LOINC, "8867-4", "Heart rate"),
                        "valueQuantity": _quantity(pulse, "/min"),
                    }
                )
        elif kind == "glucose" and glucose is not None:
            out.append(
                {
                    **base,
                    "id": f"reading-{rid}",
                    "category": [
                        _coding("http://terminology.hl7.org/CodeSystem/observation-category", "laboratory")
                    ],
                    "code": _coding(LOINC, "2339-0", "Glucose [Mass/volume] in Blood"),
                    "valueQuantity": _quantity(glucose, "mg/dL"),
                }
            )
    return out


def export_fhir(conn: psycopg.Connection[Any], results: Sequence[PatientMonth]) -> dict[str, Any]:
    """A FHIR R4 ``collection`` Bundle: a ChargeItem per code considered (``billable`` when emitted,
    ``not-billable`` with the reason when withheld) and the Observations behind emitted device codes."""
    entries: list[dict[str, Any]] = []
    for pm in results:
        subject = {"identifier": {"system": MRN_SYSTEM, "value": pm.mrn}}
        evidence_ids: list[int] = []
        for n, d in enumerate(pm.decisions):
            qualifying = d.evidence.get("qualifying_dates")
            ids: list[int] = []
            if d.emitted and qualifying:
                for p in pm.device_periods:
                    for day in qualifying:
                        ids.extend(p.readings_by_date.get(day, []))
            evidence_ids.extend(i for i in ids if i not in evidence_ids)
            charge: dict[str, Any] = {
                "resourceType": "ChargeItem",
                "id": f"{pm.mrn}-{pm.year:04d}{pm.month:02d}-{n}-{d.code}",
                "status": "billable" if d.emitted else "not-billable",
                "code": _coding(CPT, d.code),
                "subject": subject,
                "quantity": {"value": d.units},
                "reason": [_coding(ICD10, c) for c in pm.icd10_codes],
                "note": [{"text": f"{d.rule}: {d.reason}"}],
                "extension": [
                    {"url": "urn:rpmflow:billing-evidence", "valueString": _json(d.evidence)},
                    {"url": "urn:rpmflow:policy-version", "valueString": pm.policy_version},
                ],
                "supportingInformation": [{"reference": f"Observation/reading-{i}"} for i in ids],
            }
            if d.date_of_service is not None:
                charge["occurrenceDateTime"] = d.date_of_service.isoformat()
            if pm.billing_npi:
                charge["performer"] = [{"actor": {"identifier": {"system": NPI, "value": pm.billing_npi}}}]
            entries.append({"fullUrl": f"urn:rpmflow:ChargeItem/{charge['id']}", "resource": charge})
        for obs in _observations(conn, pm, evidence_ids):
            entries.append({"fullUrl": f"urn:rpmflow:Observation/{obs['id']}", "resource": obs})
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def _json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, default=str)
