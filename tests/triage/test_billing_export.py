"""The month's FHIR R4 Bundle is complete and structurally valid; the CSV keeps zeros and units.

``bundle_problems`` is a small structural validator written for this export (no FHIR library is
installed): every reference resolves to an entry of an allowed type, required elements are present,
statuses come from the R4 value sets, codes carry the right systems and units, there is no NaN and
no patient name anywhere.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import math
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from tests.triage.rpm_seed import World, add_reading, make_world, new_flag, promoted_flag
from triage.billing import compute, export
from triage.billing.rules import Decision
from triage.clinical import review

UCUM = "http://unitsofmeasure.org"
LOINC = "http://loinc.org"
CPT = "http://www.ama-assn.org/go/cpt"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
NPI = "http://hl7.org/fhir/sid/us-npi"
POS = "https://www.cms.gov/Medicare/Coding/place-of-service-codes/Place_of_Service_Code_Set"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
GENERATED = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)

REQUIRED: dict[str, tuple[str, ...]] = {
    "Patient": ("identifier",),
    "Practitioner": ("identifier",),
    "Device": ("identifier",),
    "Observation": ("status", "code", "subject", "effectiveDateTime", "category", "device"),
    "Flag": ("status", "code", "subject"),
    "Provenance": ("target", "recorded", "agent"),
    "Communication": ("status", "subject", "sent"),
    "Consent": ("status", "scope", "category", "patient", "dateTime"),
    "ChargeItem": ("status", "code", "subject", "quantity", "note"),
    "Claim": (
        "status",
        "type",
        "use",
        "patient",
        "created",
        "provider",
        "priority",
        "insurance",
        "diagnosis",
        "item",
    ),
    "Coverage": ("status", "beneficiary", "payor"),
}
STATUSES: dict[str, set[str]] = {
    "Observation": {
        "registered",
        "preliminary",
        "final",
        "amended",
        "corrected",
        "cancelled",
        "entered-in-error",
        "unknown",
    },
    "Device": {"active", "inactive", "entered-in-error", "unknown"},
    "Flag": {"active", "inactive", "entered-in-error"},
    "Communication": {
        "preparation",
        "in-progress",
        "not-done",
        "on-hold",
        "stopped",
        "completed",
        "entered-in-error",
        "unknown",
    },
    "Consent": {"draft", "proposed", "active", "rejected", "inactive", "entered-in-error"},
    "ChargeItem": {"planned", "billable", "not-billable", "aborted", "billed", "entered-in-error", "unknown"},
    "Claim": {"active", "cancelled", "draft", "entered-in-error"},
    "Coverage": {"active", "cancelled", "draft", "entered-in-error"},
}
# Where a reference may appear (list indices dropped) and what it may point at.
REFERENCES: dict[str, set[str]] = {
    "Observation.subject": {"Patient"},
    "Observation.device": {"Device"},
    "Observation.derivedFrom": {"Observation"},
    "Flag.subject": {"Patient"},
    "Flag.extension.valueReference": {"Observation"},
    "Provenance.target": {"Flag"},
    "Provenance.agent.who": {"Practitioner"},
    "Communication.subject": {"Patient"},
    "Communication.sender": {"Practitioner"},
    "Communication.recipient": {"Patient"},
    "Communication.about": {"Flag"},
    "Consent.patient": {"Patient"},
    "Consent.performer": {"Patient"},
    "ChargeItem.subject": {"Patient"},
    "ChargeItem.performer.actor": {"Practitioner"},
    "ChargeItem.supportingInformation": {"Observation", "Flag", "Communication"},
    "Claim.patient": {"Patient"},
    "Claim.provider": {"Practitioner"},
    "Claim.insurance.coverage": {"Coverage"},
    "Claim.item.extension.valueReference": {"ChargeItem"},
    "Coverage.beneficiary": {"Patient"},
}
LOINC_UNITS = {
    "8480-6": "mm[Hg]",
    "8462-4": "mm[Hg]",
    "8867-4": "/min",
    "2339-0": "mg/dL",
    "15074-8": "mmol/L",
    "29463-7": "kg",
    "2708-6": "%",
    "59408-5": "%",
}
OBS_CODES = {
    "29463-7": "vital-signs",
    "2708-6": "vital-signs",
    "59408-5": "vital-signs",
    "85354-9": "vital-signs",
    "8867-4": "vital-signs",
    "2339-0": "laboratory",
    "15074-8": "laboratory",
}
DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


def _walk(node: Any, path: str) -> Iterator[tuple[str, Any]]:
    yield path, node
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _walk(v, f"{path}.{k}")
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v, path)


def _codings(cc: Any, system: str) -> list[str]:
    return [c["code"] for c in (cc or {}).get("coding", []) if c.get("system") == system]


def _has_npi(practitioner: dict[str, Any]) -> bool:
    return any(
        i.get("system") == NPI and re.fullmatch(r"\d{10}", i.get("value", ""))
        for i in practitioner.get("identifier", [])
    )


def bundle_problems(bundle: dict[str, Any], *, forbidden_text: tuple[str, ...] = ()) -> list[str]:
    """Everything structurally wrong with an export Bundle (empty list: valid)."""
    out: list[str] = []
    if bundle.get("resourceType") != "Bundle" or bundle.get("type") != "collection":
        out.append("not a collection Bundle")
    try:
        text = json.dumps(bundle, allow_nan=False)
    except ValueError as exc:
        out.append(f"not strict JSON: {exc}")
        text = json.dumps(bundle)
    for needle in forbidden_text:
        if needle in text:
            out.append(f"PHI text {needle!r} present")
    by_url: dict[str, dict[str, Any]] = {}
    for e in bundle.get("entry", []):
        r, url = e.get("resource", {}), e.get("fullUrl", "")
        rid = r.get("id", "")
        if url != f"urn:uuid:{rid}" or not FHIR_ID.match(rid):
            out.append(f"fullUrl {url!r} does not match id {rid!r}")
        else:
            uuid.UUID(rid)
        if url in by_url:
            out.append(f"duplicate fullUrl {url}")
        by_url[url] = r
    for r in by_url.values():
        rt = r.get("resourceType", "?")
        where = f"{rt}/{r.get('id')}"
        for key in REQUIRED.get(rt, ("?unknown type",)):
            if r.get(key) in (None, [], {}, ""):
                out.append(f"{where}: missing {key}")
        if rt in STATUSES and r.get("status") not in STATUSES[rt]:
            out.append(f"{where}: status {r.get('status')!r}")
        for path, node in _walk(r, rt):
            if isinstance(node, float) and not math.isfinite(node):
                out.append(f"{where}: non-finite number at {path}")
            if isinstance(node, dict) and "reference" in node:
                target = by_url.get(node["reference"])
                allowed = REFERENCES.get(path)
                if target is None:
                    out.append(f"{where}: {path} -> {node['reference']} does not resolve")
                elif allowed is None or target["resourceType"] not in allowed:
                    out.append(f"{where}: {path} may not point at {target['resourceType']}")
            if isinstance(node, dict) and path.endswith("valueQuantity"):
                if not isinstance(node.get("value"), int | float) or isinstance(node.get("value"), bool):
                    out.append(f"{where}: {path} value {node.get('value')!r} is not a number")
                if node.get("system") != UCUM or node.get("code") != node.get("unit"):
                    out.append(f"{where}: {path} is not a UCUM quantity")
        out.extend(_resource_rules(rt, where, r, by_url))
    return out


def _resource_rules(rt: str, where: str, r: dict[str, Any], by_url: dict[str, dict[str, Any]]) -> list[str]:
    out: list[str] = []
    if rt == "Patient":
        for phi in ("name", "telecom", "birthDate", "photo", "contact"):
            if phi in r:
                out.append(f"{where}: carries {phi}")
        if any(a.get("line") or a.get("city") or a.get("postalCode") for a in r.get("address", [])):
            out.append(f"{where}: address finer than the state")
    elif rt == "Observation":
        [code] = _codings(r["code"], LOINC) or ["?"]
        if code not in OBS_CODES:
            out.append(f"{where}: LOINC {code!r} not exported by rpmflow")
        elif OBS_CODES[code] not in _codings(r["category"][0], OBS_CATEGORY):
            out.append(f"{where}: {code} category should be {OBS_CODES[code]}")
        if not DATETIME.match(r.get("effectiveDateTime", "")):
            out.append(f"{where}: effectiveDateTime {r.get('effectiveDateTime')!r} has no offset")
        parts = r.get("component") or [r]
        comp_codes = [(_codings(c["code"], LOINC) or ["?"])[0] for c in parts]
        if code == "85354-9" and comp_codes != ["8480-6", "8462-4"]:
            out.append(f"{where}: BP panel needs systolic and diastolic components")
        for c in parts:
            ccode = (_codings(c["code"], LOINC) or ["?"])[0]
            if "valueQuantity" in c:
                if c["valueQuantity"]["code"] != LOINC_UNITS.get(ccode):
                    got, want = c["valueQuantity"]["code"], LOINC_UNITS.get(ccode)
                    out.append(f"{where}: {ccode} in {got}, not {want}")
            elif "dataAbsentReason" not in c:
                out.append(f"{where}: {ccode} has neither a value nor a dataAbsentReason")
    elif rt == "ChargeItem":
        cpt = _codings(r["code"], CPT)
        if not cpt or not all(re.fullmatch(r"\d{5}", x) for x in cpt):
            out.append(f"{where}: code is not CPT")
        if not r.get("reason") or any(not _codings(x, ICD10) for x in r["reason"]):
            out.append(f"{where}: reason is not ICD-10-CM")
        if r["status"] == "not-billable" and not r["note"][0].get("text"):
            out.append(f"{where}: withheld without a reason")
        for p in r.get("performer", []):
            if not _has_npi(by_url.get(p["actor"].get("reference", ""), {})):
                out.append(f"{where}: performer without NPI")
    elif rt == "Claim":
        if not _has_npi(by_url.get(r["provider"].get("reference", ""), {})):
            out.append(f"{where}: provider without NPI")
        if any(not _codings(d["diagnosisCodeableConcept"], ICD10) for d in r["diagnosis"]):
            out.append(f"{where}: diagnosis is not ICD-10-CM")
        for it in r["item"]:
            if not _codings(it["productOrService"], CPT):
                out.append(f"{where}: item {it.get('sequence')} productOrService is not CPT")
            pos = _codings(it.get("locationCodeableConcept"), POS)
            if not pos or not re.fullmatch(r"\d{2}", pos[0]):
                out.append(f"{where}: item {it.get('sequence')} has no CMS place of service")
    elif rt == "Provenance":
        if not all(_has_npi(by_url.get(a["who"].get("reference", ""), {})) for a in r["agent"]):
            out.append(f"{where}: agent without NPI")
    elif rt == "Consent" and not (r.get("policy") or r.get("policyRule")):
        out.append(f"{where}: neither policy nor policyRule (ppc-1)")
    return out


# -- seeding ---------------------------------------------------------------------------------------
NY = ZoneInfo("America/New_York")
FIRST = date(2026, 1, 5)


def _local(d: date, hour: int = 9, minute: int = 0, tz: ZoneInfo = NY) -> datetime:
    return datetime(d.year, d.month, d.day, hour, minute, tzinfo=tz)


def _reading(db: psycopg.Connection[Any], w: World, at: datetime, **values: Any) -> int:
    cols = {
        "kind": "blood_pressure",
        "quality": "valid",
        "transmission": "automatic",
        "original": None,
        **values,
    }
    row = db.execute(
        "INSERT INTO readings (message_id, gateway_id, device_id, patient_id, kind, measured_at, received_at,"
        " quality, transmission, systolic_mmhg, diastolic_mmhg, pulse_bpm, glucose_mg_dl, original, raw)"
        " VALUES (md5(random()::text)::uuid, 'gw-1', %(device)s, %(pid)s, %(kind)s, %(at)s, %(at)s,"
        " %(quality)s, %(transmission)s, %(sys)s, %(dia)s, %(pulse)s, %(glu)s, %(original)s, '\\x00')"
        " RETURNING reading_id",
        {
            "device": cols.get("device", "bp-1"),
            "pid": w.patient_id,
            "at": at,
            "sys": cols.get("sys"),
            "dia": cols.get("dia"),
            "pulse": cols.get("pulse"),
            "glu": cols.get("glu"),
            **cols,
        },
    ).fetchone()
    assert row is not None
    return int(row[0])


def _resources(bundle: dict[str, Any], rt: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == rt]


def _reading_id(obs: dict[str, Any]) -> int:
    # the panel carries urn:rpmflow:reading; its heart-rate / meter-unit twins their own systems
    return int(next(i["value"] for i in obs["identifier"] if i["system"].startswith("urn:rpmflow:reading")))


def _by_ref(bundle: dict[str, Any], ref: dict[str, str]) -> dict[str, Any]:
    found: list[dict[str, Any]] = [e["resource"] for e in bundle["entry"] if e["fullUrl"] == ref["reference"]]
    assert len(found) == 1, ref
    return found[0]


def test_month_bundle_is_complete_and_valid(db: psycopg.Connection[Any]) -> None:
    w = make_world(db)
    for i in range(16):  # Jan 5..20: the device period ending Feb 3 reaches 99454
        add_reading(db, w.patient_id, "bp-1", _local(FIRST + timedelta(days=i)))
    db.execute(
        "INSERT INTO devices (device_id, kind, manufacturer, model, serial) VALUES"
        " ('gl-1', 'glucose', 'Acme', 'GM-2', 'SN0042')"
    )
    db.execute(
        "UPDATE devices SET manufacturer = 'Omron', model = 'BP7000', serial = 'SN0001'"
        " WHERE device_id = 'bp-1'"
    )
    feb = [
        add_reading(db, w.patient_id, "bp-1", _local(date(2026, 2, 1))),  # pulse 0.0
        _reading(db, w, _local(date(2026, 2, 2)), kind="glucose", device="gl-1", glu=0.0),
        _reading(
            db,
            w,
            _local(date(2026, 2, 3)),
            kind="glucose",
            device="gl-1",
            glu=99.0858,
            original=json.dumps({"unit": "mmol/L", "concentration": 5.5}),
        ),
        _reading(db, w, _local(date(2026, 2, 4)), sys=0.0, dia=0.0, pulse=0.0, transmission="manual"),
        _reading(db, w, _local(date(2026, 2, 5)), sys=float("nan"), dia=80.0, pulse=61.0),
    ]
    quarantined = _reading(db, w, _local(date(2026, 2, 6)), sys=300.0, dia=40.0, quality="quarantined")
    promoted = promoted_flag(db, w, dos=date(2026, 2, 1), minutes=20, interactive=True)
    unpromoted = new_flag(db, w.patient_id)
    review.log_time(db, unpromoted, w.nurse, minutes=15)
    [pm] = compute.compute_month(db, 2026, 2, patient_id=w.patient_id)

    bundle = export.export_fhir(db, [pm], generated_at=GENERATED)
    assert bundle_problems(bundle, forbidden_text=(f"Patient {w.mrn[4:]}",)) == []
    assert bundle == export.export_fhir(db, [pm], generated_at=GENERATED)  # stable ids, same JSON

    [patient] = _resources(bundle, "Patient")
    assert patient["identifier"] == [{"system": "urn:rpmflow:mrn", "value": w.mrn}] and "name" not in patient
    obs = _resources(bundle, "Observation")
    panels = {_reading_id(o): o for o in obs if o["code"]["coding"][0]["code"] == "85354-9"}
    evidence = {i for p in pm.device_periods for ids in p.readings_by_date.values() for i in ids}
    assert set(panels) == (evidence | {feb[0], feb[3], feb[4]}) - {feb[1], feb[2]}
    assert quarantined not in {_reading_id(o) for o in obs}
    zero = panels[feb[3]]  # a typed-in 0/0 is kept as 0, flagged manual, not dropped
    assert [c["valueQuantity"]["value"] for c in zero["component"]] == [0.0, 0.0]
    assert {"url": "urn:rpmflow:transmission", "valueCode": "manual"} in zero["extension"]
    nan = panels[feb[4]]["component"][0]
    assert "valueQuantity" not in nan and nan["dataAbsentReason"]["coding"][0]["code"] == "error"
    glucose = {_reading_id(o): o for o in obs if o["code"]["coding"][0]["code"] == "2339-0"}
    assert glucose[feb[1]]["valueQuantity"] == {
        "value": 0.0,
        "unit": "mg/dL",
        "system": UCUM,
        "code": "mg/dL",
    }
    assert glucose[feb[1]]["category"][0]["coding"][0]["code"] == "laboratory"
    mmol = _by_ref(bundle, glucose[feb[2]]["derivedFrom"][0])
    assert mmol["code"]["coding"][0]["code"] == "15074-8" and mmol["valueQuantity"]["value"] == 5.5
    assert "derivedFrom" not in glucose[feb[1]]  # stored in mg/dL: no mmol/L twin
    hr = [o for o in obs if o["code"]["coding"][0]["code"] == "8867-4"]
    assert hr and hr[0]["valueQuantity"]["value"] == 0.0 and hr[0]["valueQuantity"]["unit"] == "/min"

    devices = {d["identifier"][0]["value"]: d for d in _resources(bundle, "Device")}
    assert devices["bp-1"]["serialNumber"] == "SN0001" and devices["bp-1"]["manufacturer"] == "Omron"
    assert devices["gl-1"]["deviceName"] == [{"name": "GM-2", "type": "model-name"}]

    [flag] = _resources(bundle, "Flag")
    assert flag["identifier"][0]["value"] == str(promoted)  # the unpromoted flag is not exported
    [prov] = _resources(bundle, "Provenance")
    assert _by_ref(bundle, prov["target"][0]) is flag
    clinician_npi = db.execute("SELECT npi FROM users WHERE user_id = %s", (w.clinician,)).fetchone()
    assert clinician_npi is not None
    agent = _by_ref(bundle, prov["agent"][0]["who"])
    assert {"system": NPI, "value": clinician_npi[0]} in agent["identifier"]
    assert DATETIME.match(prov["recorded"])
    [comm] = _resources(bundle, "Communication")
    assert comm["medium"][0]["coding"][0]["code"] == "PHONE" and _by_ref(bundle, comm["about"][0]) is flag
    [consent] = _resources(bundle, "Consent")
    assert consent["status"] == "active" and consent["dateTime"] == "2025-12-15T05:00:00-05:00"
    assert {"url": "urn:rpmflow:consent-method", "valueCode": "verbal"} in consent["extension"]

    charges = _resources(bundle, "ChargeItem")
    assert len(charges) == len(pm.decisions)
    billable = {c["code"]["coding"][0]["code"]: c for c in charges if c["status"] == "billable"}
    assert set(billable) == {"99453", "99454", "99457"}
    assert billable["99454"]["occurrenceDateTime"] == "2026-02-03"
    assert {_reading_id(_by_ref(bundle, r)) for r in billable["99454"]["supportingInformation"]} == evidence
    supporting = [_by_ref(bundle, r)["resourceType"] for r in billable["99457"]["supportingInformation"]]
    assert sorted(supporting) == ["Communication", "Flag"]
    for c in charges:
        if c["status"] == "not-billable":
            assert c["quantity"] == {"value": 0} and ": " in c["note"][0]["text"]
    [claim] = _resources(bundle, "Claim")
    assert [i["productOrService"]["coding"][0]["code"] for i in claim["item"]] == [d.code for d in pm.emitted]
    assert all(
        i["locationCodeableConcept"]["coding"][0] == {"system": POS, "code": "11"} for i in claim["item"]
    )
    assert claim["diagnosis"][0]["diagnosisCodeableConcept"]["coding"][0] == {"system": ICD10, "code": "I10"}
    assert claim["created"] == "2026-03-02"
    rows = list(csv.DictReader(io.StringIO(export.export_csv([pm]))))
    assert sorted((r["cpt"], int(r["units"])) for r in rows) == sorted(
        (c["code"]["coding"][0]["code"], c["quantity"]["value"]) for c in billable.values()
    )


def test_zeros_and_time_zones_survive(db: psycopg.Connection[Any]) -> None:
    """A half-hour zone across midnight: the local date decides the month and the offset is kept."""
    kolkata = ZoneInfo("Asia/Kolkata")
    w = make_world(db, tz="Asia/Kolkata")
    just_in = _reading(db, w, datetime(2026, 2, 1, 0, 10, tzinfo=kolkata), sys=0.0, dia=0.0, pulse=0.0)
    last = _reading(db, w, datetime(2026, 2, 28, 23, 59, 59, 250000, tzinfo=kolkata), kind="glucose", glu=0.0)
    out = _reading(db, w, datetime(2026, 3, 1, 0, 5, tzinfo=kolkata), sys=120.0, dia=80.0)
    before = _reading(db, w, datetime(2026, 1, 31, 23, 55, tzinfo=kolkata), sys=120.0, dia=80.0)
    [pm] = compute.compute_month(db, 2026, 2, patient_id=w.patient_id)
    bundle = export.export_fhir(db, [pm], generated_at=GENERATED)
    assert bundle_problems(bundle) == []
    obs = {(_reading_id(o), o["code"]["coding"][0]["code"]): o for o in _resources(bundle, "Observation")}
    assert {k[0] for k in obs} == {just_in, last}
    assert out not in {k[0] for k in obs} and before not in {k[0] for k in obs}
    bp = obs[(just_in, "85354-9")]
    assert bp["effectiveDateTime"] == "2026-02-01T00:10:00+05:30"
    assert datetime.fromisoformat(bp["effectiveDateTime"]) == datetime(2026, 1, 31, 18, 40, tzinfo=UTC)
    tz_code = {"url": "http://hl7.org/fhir/StructureDefinition/tz-code", "valueCode": "Asia/Kolkata"}
    assert bp["_effectiveDateTime"]["extension"] == [tz_code]  # on the date element only (R4)
    assert all(e["url"] != tz_code["url"] for e in bp.get("extension", []))
    assert [c["valueQuantity"]["value"] for c in bp["component"]] == [0, 0]
    assert obs[(just_in, "8867-4")]["valueQuantity"]["value"] == 0
    glu = obs[(last, "2339-0")]
    assert glu["effectiveDateTime"] == "2026-02-28T23:59:59.250000+05:30"
    assert glu["valueQuantity"]["value"] == 0 and type(glu["valueQuantity"]["value"]) is float


def test_validator_catches_what_it_claims_to(db: psycopg.Connection[Any]) -> None:
    w = make_world(db)
    for i in range(3):
        add_reading(db, w.patient_id, "bp-1", _local(date(2026, 2, 1) + timedelta(days=i)))
    promoted_flag(db, w, dos=date(2026, 2, 2), minutes=12, interactive=True)
    [pm] = compute.compute_month(db, 2026, 2, patient_id=w.patient_id)
    good = export.export_fhir(db, [pm], generated_at=GENERATED)
    assert bundle_problems(good) == []

    def broken(rt: str, change: Any) -> list[str]:
        b = copy.deepcopy(good)
        change(next(e["resource"] for e in b["entry"] if e["resource"]["resourceType"] == rt))
        return bundle_problems(b, forbidden_text=("Jane Doe",))

    assert any(
        "does not resolve" in p
        for p in broken(
            "Observation", lambda r: r.update(device={"reference": "urn:uuid:" + str(uuid.uuid4())})
        )
    )
    assert any(
        "may not point at" in p
        for p in broken("ChargeItem", lambda r: r.update(subject=r["performer"][0]["actor"]))
    )
    assert any(
        "non-finite" in p
        for p in broken(
            "Observation", lambda r: r["component"][0]["valueQuantity"].update(value=float("nan"))
        )
    )
    assert any(
        "carries name" in p for p in broken("Patient", lambda r: r.update(name=[{"text": "Jane Doe"}]))
    )
    assert any("PHI text" in p for p in broken("Patient", lambda r: r.update(name=[{"text": "Jane Doe"}])))
    assert any(
        "not CPT" in p
        for p in broken(
            "ChargeItem", lambda r: r["code"]["coding"][0].update(system="http://www.cms.gov/hcpcs")
        )
    )
    assert any(
        "place of service" in p
        for p in broken(
            "Claim", lambda r: r["item"][0]["locationCodeableConcept"]["coding"][0].update(system="urn:pos")
        )
    )
    assert any(
        "no offset" in p
        for p in broken("Observation", lambda r: r.update(effectiveDateTime="2026-02-01T09:00:00"))
    )
    assert any(
        "mm[Hg]" in p
        for p in broken(
            "Observation", lambda r: r["component"][0]["valueQuantity"].update(code="mmHg", unit="mmHg")
        )
    )
    assert any("missing status" in p for p in broken("Flag", lambda r: r.pop("status")))
    assert any(
        "agent without NPI" in p
        for p in broken(
            "Practitioner", lambda r: r.update(identifier=[{"system": "urn:rpmflow:username", "value": "x"}])
        )
    )


def test_csv_keeps_zeros_units_and_leading_zeros() -> None:
    """The CSV writer never turns 0 into '' and keeps codes as text (no int coercion of '02')."""
    pm = compute.PatientMonth(
        patient_id=1,
        mrn="000123",
        year=2026,
        month=2,
        timezone="America/New_York",
        state="NY",
        payer="medicare",
        policy_version="medicare@2026-01-01",
        billing_user_id=7,
        billing_npi="0123456789",
        place_of_service="02",
        icd10_codes=("E11.9", "I10"),
        mgmt_minutes=0,
        interactive=False,
        time_logs=(),
        communication_ids=(),
        device_periods=(),
        decisions=(
            Decision("99457", 1, True, "M3", "25 min", {}, date(2026, 2, 27)),
            Decision("99458", 2, True, "M5", "60 min", {}, date(2026, 2, 27)),
            Decision("99091", 0, True, "Q1", "hypothetical zero units", {}, None),
            Decision("99454", 0, False, "D1", "1 day", {}, date(2026, 2, 3)),
        ),
    )
    rows = list(csv.reader(io.StringIO(export.export_csv([pm]))))
    assert rows[0] == list(export.CSV_COLUMNS)
    head = ["000123", "2026-02-27"]
    tail = ["02", "", "E11.9;I10", "0123456789", "medicare@2026-01-01"]
    assert rows[1:] == [
        [*head, "99457", "1", *tail, "M3", "25 min"],
        [*head, "99458", "2", *tail, "M5", "60 min"],
        ["000123", "", "99091", "0", *tail, "Q1", "hypothetical zero units"],
    ]
    decided = list(csv.DictReader(io.StringIO(export.export_decisions_csv([pm]))))
    assert [(r["cpt"], r["emitted"], r["rule"], r["reason"]) for r in decided][-1] == (
        "99454",
        "no",
        "D1",
        "1 day",
    )
    [month] = export.month_report([pm])
    assert month["codes"] == {"99457": 1, "99458": 2, "99091": 0}
    assert month["decisions"][-1]["reason"] == "1 day" and month["payer_profile"] == "medicare@2026-01-01"
