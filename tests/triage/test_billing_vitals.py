"""Weight and SpO2 downstream: device-days count them as physiologic data (99454), and the FHIR
export codes them with LOINC/UCUM (body weight 29463-7 kg, SpO2 59408-5 %, pulse 8867-4 /min),
every resource valid for fhir.resources (R4B)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle

from tests.triage.rpm_seed import add_reading, make_world, promoted_flag
from triage.billing import compute, export

NY = ZoneInfo("America/New_York")


def _vital(
    db: psycopg.Connection[Any], pid: int, device: str, kind: str, at: datetime, **values: float
) -> int:
    rid = add_reading(db, pid, device, at, kind=kind)
    sets = ", ".join(f"{k} = %s" for k in values)
    db.execute(f"UPDATE readings SET {sets} WHERE reading_id = %s", (*values.values(), rid))
    return rid


def test_weight_and_spo2_count_as_device_days_and_export_with_loinc(db: psycopg.Connection[Any]) -> None:
    w = make_world(db)
    for i in range(16):  # Jan 5..20, weight only: the device period ending Feb 3 reaches 99454
        _vital(
            db,
            w.patient_id,
            "ws-1",
            "weight",
            datetime(2026, 1, 5, 8, tzinfo=NY) + timedelta(days=i),
            weight_kg=81.25 + i / 100,
        )
    ids = {
        "weight": _vital(
            db, w.patient_id, "ws-1", "weight", datetime(2026, 2, 2, 8, tzinfo=NY), weight_kg=0.0
        ),
        "spo2": _vital(
            db,
            w.patient_id,
            "ox-1",
            "spo2",
            datetime(2026, 2, 2, 9, tzinfo=NY),
            spo2_pct=97.5,
            pulse_bpm=64.0,
        ),
    }
    promoted_flag(db, w, dos=date(2026, 2, 2), minutes=25, interactive=True)
    [pm] = compute.compute_month(db, 2026, 2, patient_id=w.patient_id)
    bundle = export.export_fhir(db, [pm], generated_at=datetime(2026, 3, 2, tzinfo=UTC))

    Bundle.model_validate(bundle)
    for e in bundle["entry"]:
        get_fhir_model_class(e["resource"]["resourceType"]).model_validate(e["resource"])
    charges = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "ChargeItem"]
    billable = {c["code"]["coding"][0]["code"] for c in charges if c["status"] == "billable"}
    assert "99454" in billable, "16 days of weighings are 16 device-days"

    obs = {
        e["fullUrl"]: e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation"
    }

    def by_reading(rid: int, system: str = "urn:rpmflow:reading") -> dict[str, Any]:
        found: list[dict[str, Any]] = [
            o for o in obs.values() if {"system": system, "value": str(rid)} in o["identifier"]
        ]
        assert len(found) == 1, (rid, system)
        return found[0]

    weight = by_reading(ids["weight"])
    assert [c["code"] for c in weight["code"]["coding"]] == ["29463-7"]
    assert weight["valueQuantity"] == {
        "value": 0.0,
        "unit": "kg",
        "system": "http://unitsofmeasure.org",
        "code": "kg",
    }
    assert weight["meta"]["profile"] == ["http://hl7.org/fhir/StructureDefinition/bodyweight"]
    spo2 = by_reading(ids["spo2"])
    assert [c["code"] for c in spo2["code"]["coding"]] == ["59408-5", "2708-6"]
    assert spo2["valueQuantity"]["value"] == 97.5 and spo2["valueQuantity"]["code"] == "%"
    pulse = by_reading(ids["spo2"], "urn:rpmflow:reading-heart-rate")
    assert pulse["code"]["coding"][0]["code"] == "8867-4" and pulse["valueQuantity"]["code"] == "/min"
    devices = {
        e["resource"]["identifier"][0]["value"]: e["resource"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "Device"
    }
    assert (
        devices["ws-1"]["type"]["text"] == "Weight scale"
        and devices["ox-1"]["type"]["text"] == "Pulse oximeter"
    )
