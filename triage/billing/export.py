"""Claim export: CSV claim lines (837P-ready columns) here, the FHIR R4 Bundle in :mod:`.fhir`.

Lossless by construction: zeros stay zeros (no ``value or ''``), units are whole numbers, and the
CSV carries codes, dates, units and diagnoses only, no readings (minimum necessary, HIPAA
§164.502(b)). ``export_fhir`` and the code-system constants are re-exported from
:mod:`triage.billing.fhir` so callers keep importing them from here.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from triage.billing.compute import PatientMonth
from triage.billing.fhir import CPT, ICD10, LOINC, MRN_SYSTEM, NPI, POS, TZ_EXT, UCUM, export_fhir

__all__ = ["CPT", "CSV_COLUMNS", "ICD10", "LOINC", "MRN_SYSTEM", "NPI", "POS", "TZ_EXT", "UCUM", "export_csv",
           "export_fhir"]

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
