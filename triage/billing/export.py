"""Claim export: CSV claim lines (837P-ready columns, plus the deciding profile, rule and reason),
a CSV and JSON of every code considered (emitted or withheld, with why), and the FHIR R4 Bundle in
:mod:`.fhir`.

Lossless by construction: zeros stay zeros (no ``value or ''``), units are whole numbers, and the
CSV carries codes, dates, units, diagnoses and reasons only, no readings (minimum necessary, HIPAA
§164.502(b)). ``export_fhir`` and the code-system constants are re-exported from
:mod:`triage.billing.fhir` so callers keep importing them from here.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

from triage.billing.compute import PatientMonth
from triage.billing.fhir import CPT, ICD10, LOINC, MRN_SYSTEM, NPI, POS, TZ_EXT, UCUM, export_fhir
from triage.billing.rules import Decision

__all__ = [
    "CPT",
    "CSV_COLUMNS",
    "DECISION_COLUMNS",
    "ICD10",
    "LOINC",
    "MRN_SYSTEM",
    "NPI",
    "POS",
    "TZ_EXT",
    "UCUM",
    "export_csv",
    "export_decisions_csv",
    "export_fhir",
    "month_report",
]

CSV_COLUMNS = (
    "patient_mrn",
    "date_of_service",
    "cpt",
    "units",
    "place_of_service",
    "modifiers",
    "icd10",
    "rendering_npi",
    "payer_profile",
    "rule",
    "reason",
)
DECISION_COLUMNS = (
    "patient_mrn",
    "year_month",
    "cpt",
    "emitted",
    "units",
    "date_of_service",
    "period",
    "payer_profile",
    "rule",
    "reason",
)


def _profile(pm: PatientMonth, d: Decision) -> str:
    """The payer profile that decided this code (the device period's may differ from the month's)."""
    return str(d.evidence.get("policy") or pm.policy_version)


# A spreadsheet runs a cell starting with one of these as a formula (CSV injection, OWASP).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(cell: object) -> object:
    """Prefix a text cell that a spreadsheet would read as a formula with ``'``; numbers pass."""
    if isinstance(cell, str) and cell.startswith(_FORMULA_START):
        return "'" + cell
    return cell


def export_csv(results: Sequence[PatientMonth]) -> str:
    """One line per emitted code; ICD-10 codes joined with ``;``; modifiers empty (none needed)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for pm in results:
        for d in pm.emitted:
            w.writerow(neutralise(c) for c in
                [
                    pm.mrn,
                    d.date_of_service.isoformat() if d.date_of_service else "",
                    d.code,
                    d.units,
                    pm.place_of_service,
                    "",
                    ";".join(pm.icd10_codes),
                    pm.billing_npi or "",
                    _profile(pm, d),
                    d.rule,
                    d.reason,
                ]
            )
    return buf.getvalue()


def export_decisions_csv(results: Sequence[PatientMonth]) -> str:
    """Every code considered, emitted or withheld, with the rule, reason and profile that decided."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(DECISION_COLUMNS)
    for pm in results:
        for d in pm.decisions:
            w.writerow(
                neutralise(c)
                for c in [
                    pm.mrn,
                    f"{pm.year:04d}-{pm.month:02d}",
                    d.code,
                    "yes" if d.emitted else "no",
                    d.units,
                    d.date_of_service.isoformat() if d.date_of_service else "",
                    d.evidence.get("period", "month"),
                    _profile(pm, d),
                    d.rule,
                    d.reason,
                ]
            )
    return buf.getvalue()


def _decision(pm: PatientMonth, d: Decision) -> dict[str, Any]:
    return {
        "code": d.code,
        "units": d.units,
        "emitted": d.emitted,
        "rule": d.rule,
        "reason": d.reason,
        "date_of_service": d.date_of_service.isoformat() if d.date_of_service else None,
        "payer_profile": _profile(pm, d),
        "evidence": d.evidence,
    }


def month_report(results: Sequence[PatientMonth]) -> list[dict[str, Any]]:
    """JSON-ready summary per patient-month: codes emitted, every decision and its reason."""
    out = []
    for pm in results:
        codes: dict[str, int] = {}
        for d in pm.emitted:
            codes[d.code] = codes.get(d.code, 0) + d.units
        out.append(
            {
                "patient_id": pm.patient_id,
                "mrn": pm.mrn,
                "month": f"{pm.year:04d}-{pm.month:02d}",
                "state": pm.state,
                "payer": pm.payer,
                "payer_profile": pm.policy_version,
                "profile_label": pm.policy_label,
                "billing_npi": pm.billing_npi,
                "icd10": list(pm.icd10_codes),
                "mgmt_minutes": pm.mgmt_minutes,
                "interactive": pm.interactive,
                "codes": codes,
                "device_periods": [
                    {
                        "start": p.start.isoformat(),
                        "end": p.end.isoformat(),
                        "index": p.index,
                        "days_with_data": p.days_with_data,
                        "excluded": p.excluded,
                    }
                    for p in pm.device_periods
                ],
                "decisions": [_decision(pm, d) for d in pm.decisions],
            }
        )
    return out


def dumps(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=True, default=str)
