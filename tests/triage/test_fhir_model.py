"""The FHIR builders on plain data (no database), each resource validated by fhir.resources R4B."""

from __future__ import annotations

from datetime import UTC, date, datetime

from fhir.resources.R4B import get_fhir_model_class

from tests.triage.billing_facts import bill, call, minutes, patient
from triage.billing import fhir_model as fm
from triage.billing.rules import Decision

AT = datetime(2026, 3, 8, 7, 0, 30, tzinfo=UTC)  # 03:00:30 EDT, an hour after the DST change
PATIENT = fm._ref("Patient", "1")


def _valid(rt: str, body: dict[str, object]) -> None:
    get_fhir_model_class(rt).model_validate({"resourceType": rt, "id": "x", **body})


def test_blood_pressure_panel_and_heart_rate() -> None:
    row = fm.ReadingRow(7, "m-7", "blood_pressure", AT, 128.00000000000003, 0.0, 61.0, device_id="cuff")
    [(k1, panel), (k2, hr)] = fm.observation_bodies(row, PATIENT, "America/New_York")
    assert (k1, k2) == ("7", "7/hr")
    assert panel["effectiveDateTime"] == "2026-03-08T03:00:30-04:00"
    assert panel["_effectiveDateTime"] == {"extension": [{"url": fm.TZ_EXT, "valueCode": "America/New_York"}]}
    assert [c["valueQuantity"]["value"] for c in panel["component"]] == [128.0, 0.0]  # noise gone, zero kept
    assert hr["identifier"] != panel["identifier"] and hr["derivedFrom"] == [fm._ref("Observation", "7")]
    for body in (panel, hr):
        _valid("Observation", body)


def test_glucose_from_si_mol_per_litre_keeps_the_meters_number() -> None:
    row = fm.ReadingRow(
        8,
        "m-8",
        "glucose",
        AT,
        glucose_mg_dl=0.0055 * 18015.6,
        device_id="meter",
        original={"unit": "mol/L", "concentration": 0.0055},
        meal="preprandial",
    )
    [(k_mmol, mmol), (k_mg, mg)] = fm.observation_bodies(row, PATIENT, "Australia/Sydney")
    assert (k_mmol, k_mg) == ("8/mmol", "8")
    assert mmol["valueQuantity"]["value"] == 5.5 and mmol["valueQuantity"]["code"] == "mmol/L"
    assert mg["valueQuantity"]["value"] == 99.1 and mg["derivedFrom"] == [fm._ref("Observation", "8/mmol")]
    assert {"url": "urn:rpmflow:meal", "valueString": "preprandial"} in mg["extension"]
    for body in (mmol, mg):
        _valid("Observation", body)


def test_missing_values_become_data_absent_reasons() -> None:
    row = fm.ReadingRow(9, "m-9", "glucose", AT, glucose_mg_dl=float("nan"), device_id="meter")
    [(_, body)] = fm.observation_bodies(row, PATIENT, "UTC")
    assert "valueQuantity" not in body and body["dataAbsentReason"]["coding"][0]["code"] == "error"
    _valid("Observation", body)


def test_patient_and_charge_items_carry_the_reasons() -> None:
    pm = bill(patient(time_logs=(minutes(date(2026, 2, 10), 25),), communications=(call(date(2026, 2, 10)),)))
    body = fm.patient_body(pm)
    assert all(e["url"] != fm.TZ_EXT for e in body["extension"])
    _valid("Patient", body)
    withheld = Decision(
        "99454", 0, False, "G14", "G14: not licensed", {"policy": "acme@2026-01-01"}, date(2026, 2, 3)
    )
    charge = fm.charge_item_body(pm, withheld, "k", support=[], performer=None)
    assert charge["status"] == "not-billable" and charge["note"] == [{"text": "G14: G14: not licensed"}]
    assert {"url": "urn:rpmflow:policy-version", "valueString": "acme@2026-01-01"} in charge["extension"]
    _valid("ChargeItem", charge)
    assert fm.provenance_reason()[0]["coding"][0]["code"] == "TREAT"


def test_device_consent_coverage_and_claim_on_plain_data() -> None:
    from triage.billing import fhir_claim as fc

    pm = bill(patient(time_logs=(minutes(date(2026, 2, 10), 45),), communications=(call(date(2026, 2, 10)),)))
    device = fc.device_body("cuff-1", "blood_pressure", "Omron", "BP7000", "SN1", "1.2", True)
    assert device["type"]["text"] == "Blood pressure monitor" and device["serialNumber"] == "SN1"
    _valid("Device", device)
    consent = fc.consent_body(pm, AT, "verbal", "v1", None)
    assert consent["status"] == "active" and consent["provision"]["period"] == {
        "start": "2026-03-08T03:00:30-04:00"
    }
    _valid("Consent", consent)
    _valid("Coverage", fc.coverage_body(pm))
    emitted = [(d, fm._ref("ChargeItem", d.code)) for d in pm.emitted]
    claim = fc.claim_body(
        pm,
        emitted,
        key="1/2026-02",
        period=(date(2026, 2, 1), date(2026, 2, 28)),
        created=date(2026, 3, 2),
        provider=fm._ref("Practitioner", "10"),
        coverage=fm._ref("Coverage", "1/medicare"),
    )
    assert [i["productOrService"]["coding"][0]["code"] for i in claim["item"]] == [d.code for d in pm.emitted]
    assert {"99457", "99458"} <= {i["productOrService"]["coding"][0]["code"] for i in claim["item"]}
    _valid("Claim", claim)
