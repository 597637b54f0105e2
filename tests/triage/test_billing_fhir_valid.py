"""The month's FHIR export validated by fhir.resources (R4B models) and checked for each rule
finding of issue 15: tz-code only on date elements, distinct identifiers per Observation,
converted glucose without float noise, Provenance.reason a purpose of use, the meter's mmol/L."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle

from tests.triage.rpm_seed import add_reading, make_world, promoted_flag
from triage.billing import compute, drive, export
from triage.clinical import people

NY = ZoneInfo("America/New_York")
TZ_EXT = "http://hl7.org/fhir/StructureDefinition/tz-code"


def _glucose(db: psycopg.Connection[Any], patient_id: int, at: datetime, original: dict[str, Any]) -> int:
    mg = {"mol/L": 18015.6, "mmol/L": 18.0156}[original["unit"]] * original["concentration"]
    db.execute("INSERT INTO devices (device_id, kind) VALUES ('gl-si', 'glucose') ON CONFLICT DO NOTHING")
    row = db.execute(
        "INSERT INTO readings (message_id, gateway_id, device_id, patient_id, kind, measured_at, received_at,"
        " glucose_mg_dl, original, raw) VALUES (%s, 'gw-1', 'gl-si', %s, 'glucose', %s, %s, %s,"
        " %s, '\\x00') RETURNING reading_id",
        (secrets.token_hex(16), patient_id, at, at, mg, json.dumps(original)),
    ).fetchone()
    assert row is not None
    return int(row[0])


def _month(db: psycopg.Connection[Any]) -> tuple[dict[str, Any], dict[str, int]]:
    w = make_world(db)
    for i in range(20):
        add_reading(db, w.patient_id, "bp-1", datetime(2026, 1, 5, 9, tzinfo=NY) + timedelta(days=i))
    ids = {
        "bp": add_reading(db, w.patient_id, "bp-1", datetime(2026, 2, 2, 9, tzinfo=NY)),
        "si": _glucose(
            db, w.patient_id, datetime(2026, 2, 3, 9, tzinfo=NY), {"unit": "mol/L", "concentration": 0.0055}
        ),
        "mmol": _glucose(
            db, w.patient_id, datetime(2026, 2, 4, 9, tzinfo=NY), {"unit": "mmol/L", "concentration": 6.1}
        ),
    }
    scale, oximeter = f"scale-{w.mrn}", f"ox-{w.mrn}"
    for device, kind in ((scale, "weight"), (oximeter, "spo2")):
        people.assign_device(
            db, device, w.patient_id, at=datetime(2026, 1, 1, tzinfo=NY), assigned_by="n", kind=kind
        )
    drive.add_reading(db, scale, datetime(2026, 2, 5, 7, tzinfo=NY), kind="weight", weight_kg=81.6466)
    drive.add_reading(
        db, oximeter, datetime(2026, 2, 5, 7, 5, tzinfo=NY), kind="spo2", spo2_pct=97.0, pulse=70.0
    )
    promoted_flag(db, w, dos=date(2026, 2, 2), minutes=25, interactive=True)
    [pm] = compute.compute_month(db, 2026, 2, patient_id=w.patient_id)
    return export.export_fhir(db, [pm], generated_at=datetime(2026, 3, 2, tzinfo=UTC)), ids


def _resources(bundle: dict[str, Any], rt: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == rt]


def test_every_resource_validates_with_fhir_resources(db: psycopg.Connection[Any]) -> None:
    bundle, _ = _month(db)
    Bundle.model_validate(bundle)
    kinds = set()
    for e in bundle["entry"]:
        r = e["resource"]
        get_fhir_model_class(r["resourceType"]).model_validate(r)
        kinds.add(r["resourceType"])
    assert {"Patient", "Observation", "Provenance", "ChargeItem", "Claim", "Consent"} <= kinds
    codes = {c["code"] for o in _resources(bundle, "Observation") for c in o["code"]["coding"]}
    assert {"85354-9", "8867-4", "2339-0", "15074-8", "29463-7", "2708-6", "59408-5"} <= codes


def test_each_finding_is_fixed(db: psycopg.Connection[Any]) -> None:
    bundle, _ = _month(db)
    for rt in ("Observation", "Patient"):  # tz-code only on date elements
        for r in _resources(bundle, rt):
            assert all(x["url"] != TZ_EXT for x in r.get("extension", [])), rt
    obs = _resources(bundle, "Observation")
    assert all(o["_effectiveDateTime"]["extension"][0]["url"] == TZ_EXT for o in obs)
    identifiers = [json.dumps(i, sort_keys=True) for o in obs for i in o["identifier"]]
    assert len(identifiers) == len(set(identifiers))  # no two Observations share an identifier
    by_code: dict[str, list[dict[str, Any]]] = {}
    for o in obs:
        by_code.setdefault(o["code"]["coding"][0]["code"], []).append(o)
    assert len(by_code["8867-4"]) >= 1
    mg = sorted(o["valueQuantity"]["value"] for o in by_code["2339-0"])
    assert mg == [99.1, 109.9]  # 0.0055 mol/L and 6.1 mmol/L, one decimal, no float noise
    mmol = sorted(o["valueQuantity"]["value"] for o in by_code["15074-8"])
    assert mmol == [5.5, 6.1]  # the meter's own number, SI mol/L included
    for p in _resources(bundle, "Provenance"):
        assert p["reason"][0]["coding"][0]["code"] == "TREAT"
        review = next(x for x in p["extension"] if x["url"] == "urn:rpmflow:review")
        assert json.loads(review["valueString"])["icd10_codes"] == ["I10"]
