"""FHIR R4 export of a billing month: one ``collection`` Bundle, lossless and self-contained.

What goes in (DOMAIN E1, H1, H12), per patient-month:

* ``Patient``: the pseudonymous MRN (and the state, which the licensure gate needs); no name.
* ``Observation``: every valid reading in the calendar month (patient's zone) plus the readings
  that evidence a device code or a promoted flag; BP panel 85354-9 (8480-6 / 8462-4, ``mm[Hg]``),
  heart rate 8867-4 (``/min``), glucose 2339-0 (``mg/dL``) and, when the meter sent mmol/L, the
  device's own 15074-8 value it was derived from; body weight 29463-7 (``kg``), SpO2 59408-5 with
  2708-6 (``%``) and the oximeter's pulse as heart rate 8867-4. Times keep the patient's offset and IANA zone;
  zeros stay zeros; a non-finite value becomes ``dataAbsentReason``, never ``NaN``.
* ``Device``, ``Flag`` (promoted), ``Provenance`` (the clinician review, NPI, licence check),
  ``Communication`` (the interactive evidence), ``Consent``, ``Practitioner`` (NPI only).
* ``ChargeItem`` per code considered (``billable`` / ``not-billable`` with the reason), and a
  ``Claim`` (with its ``Coverage``) per patient-month that has billable codes.

The resource bodies are built by the pure :mod:`~triage.billing.fhir_model`,
:mod:`~triage.billing.fhir_clinical` and :mod:`~triage.billing.fhir_claim`; the rows come from
:mod:`~triage.billing.fhir_store`; this module wires the references. Ids are UUIDv5 of (resource
type, database key), so the same month exports to the same ids; every reference is a ``urn:uuid:``
``fullUrl`` inside the bundle.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Any

import psycopg

from triage.billing import fhir_store
from triage.billing.compute import PatientMonth, month_bounds
from triage.billing.fhir_claim import claim_body, consent_body, coverage_body, device_body
from triage.billing.fhir_clinical import communication_body, flag_body, practitioner_body, provenance_body
from triage.billing.fhir_model import (
    CPT,
    DATA_ABSENT,
    ICD10,
    LOINC,
    MRN_SYSTEM,
    NPI,
    POS,
    TZ_EXT,
    UCUM,
    Bundle,
    ReadingRow,
    _ref,
    charge_item_body,
    observation_bodies,
    patient_body,
    resource_uuid,
)
from triage.billing.rules import Decision
from triage.clinical import people_store

__all__ = [
    "CPT", "DATA_ABSENT", "ICD10", "LOINC", "MRN_SYSTEM", "NPI", "POS", "TZ_EXT", "UCUM", "export_fhir",
    "resource_uuid",
]


class _Month:
    """Writes one patient-month into the bundle; each method reads what it needs with one
    :mod:`triage.billing.fhir_store` query."""

    def __init__(self, conn: psycopg.Connection[Any], bundle: Bundle, pm: PatientMonth) -> None:
        self.conn, self.b, self.pm = conn, bundle, pm
        self.patient = _ref("Patient", str(pm.patient_id))
        self.month_start, self.month_end = month_bounds(pm.year, pm.month)
        self.key = f"{pm.patient_id}/{pm.year:04d}-{pm.month:02d}"

    # -- people -----------------------------------------------------------------------------
    def patient_resource(self) -> None:
        self.b.add("Patient", str(self.pm.patient_id), patient_body(self.pm))

    def practitioner(self, user_id: int) -> dict[str, str]:
        if self.b.has("Practitioner", str(user_id)):
            return _ref("Practitioner", str(user_id))
        body = practitioner_body(people_store.practitioner(self.conn, user_id))
        return self.b.add("Practitioner", str(user_id), body)

    # -- readings ---------------------------------------------------------------------------
    def evidence_reading_ids(self) -> list[int]:
        ids: list[int] = []
        for d in self.pm.decisions:
            if d.emitted:
                ids.extend(self._decision_readings(d))
        return ids

    def _decision_readings(self, d: Decision) -> list[int]:
        dates = d.evidence.get("qualifying_dates") or []
        period = d.evidence.get("period")
        out: list[int] = []
        for p in self.pm.device_periods:
            if period is None or period == f"{p.start.isoformat()}..{p.end.isoformat()}":
                for day in dates:
                    out.extend(p.readings_by_date.get(day, []))
        return out

    def observations(self, extra_ids: Iterable[int]) -> None:
        tz = self.pm.timezone
        month = (self.month_start, self.month_end)
        rows = fhir_store.reading_rows(self.conn, self.pm.patient_id, tz, month, extra_ids)
        self.devices(sorted({r[8] for r in rows}))
        for row in rows:
            for key, body in observation_bodies(ReadingRow(*row), self.patient, tz):
                self.b.add("Observation", key, body)

    def devices(self, device_ids: list[str]) -> None:
        rows = fhir_store.device_rows(self.conn, device_ids)
        known = {r[0] for r in rows}
        rows += [(d, None, None, None, None, None, None) for d in device_ids if d not in known]
        for row in rows:
            self.b.add("Device", row[0], device_body(*row))

    # -- flags, reviews, communications -----------------------------------------------------
    def flag_rows(self) -> list[tuple[Any, ...]]:
        """Promoted flags behind the month's minutes/communications or dated within its periods."""
        starts = [p.start for p in self.pm.device_periods] + [self.month_start]
        flag_ids = {int(t["flag_id"]) for t in self.pm.time_logs}
        return fhir_store.promoted_flag_rows(
            self.conn, self.pm.patient_id, flag_ids, self.pm.communication_ids, min(starts), self.month_end
        )

    def flags(self, rows: list[tuple[Any, ...]]) -> list[int]:
        out = []
        for row in rows:
            fid, reading_ids = row[0], row[5]
            readings = [_ref("Observation", str(r)) for r in reading_ids if self.b.has("Observation", str(r))]
            self.b.add("Flag", str(fid), flag_body(row, self.patient, self.pm.timezone, readings))
            out.append(int(fid))
        return out

    def provenances(self, flag_ids: list[int]) -> None:
        for row in fhir_store.review_rows(self.conn, self.pm.state, flag_ids):
            who = self.practitioner(int(row[2]))
            body = provenance_body(row, who, self.pm.state, self.pm.timezone)
            self.b.add("Provenance", f"review/{row[0]}", body)

    def communications(self) -> None:
        for row in fhir_store.communication_rows(self.conn, self.pm.communication_ids):
            cid, uid, fid = row[0], row[4], row[5]
            sender = self.practitioner(int(uid))
            about = _ref("Flag", str(fid)) if fid is not None and self.b.has("Flag", str(fid)) else None
            body = communication_body(row, self.patient, sender, self.pm.timezone, about)
            self.b.add("Communication", str(cid), body)

    def consents(self) -> None:
        rows = fhir_store.consent_rows(self.conn, self.pm.patient_id)
        for cid, at, method, version, revoked in rows:
            self.b.add("Consent", str(cid), consent_body(self.pm, at, method, version, revoked))

    # -- billing ----------------------------------------------------------------------------
    def charge_items(self, flag_ids: list[int]) -> list[tuple[Decision, dict[str, str]]]:
        out: list[tuple[Decision, dict[str, str]]] = []
        seen: dict[str, int] = {}
        performer = None if self.pm.billing_user_id is None else self.practitioner(self.pm.billing_user_id)
        for d in self.pm.decisions:
            scope = f"{d.evidence.get('episode_id', '')}:{d.evidence.get('period', 'month')}"
            key = f"{self.key}/{d.code}/{scope}"
            seen[key] = seen.get(key, 0) + 1
            if seen[key] > 1:
                key = f"{key}/{seen[key]}"
            support: list[dict[str, str]] = []
            if d.emitted:
                support += [
                    _ref("Observation", str(i))
                    for i in self._decision_readings(d)
                    if self.b.has("Observation", str(i))
                ]
                if d.code in ("99470", "99457", "99458", "99091"):
                    support += [_ref("Flag", str(f)) for f in flag_ids]
                    support += [
                        _ref("Communication", str(c))
                        for c in d.evidence.get("communication_ids", [])
                        if self.b.has("Communication", str(c))
                    ]
            charge = charge_item_body(self.pm, d, key, support=support, performer=performer)
            out.append((d, self.b.add("ChargeItem", key, charge)))
        return out

    def claim(self, charges: list[tuple[Decision, dict[str, str]]], created: date) -> None:
        emitted = [(d, ref) for d, ref in charges if d.emitted]
        if not emitted or self.pm.billing_user_id is None:
            return  # nothing to claim; the not-billable ChargeItems carry the reasons
        coverage = self.b.add("Coverage", f"{self.pm.patient_id}/{self.pm.payer}", coverage_body(self.pm))
        body = claim_body(
            self.pm,
            emitted,
            key=self.key,
            period=(self.month_start, self.month_end),
            created=created,
            provider=self.practitioner(self.pm.billing_user_id),
            coverage=coverage,
        )
        self.b.add("Claim", self.key, body)


def export_fhir(
    conn: psycopg.Connection[Any],
    results: Sequence[PatientMonth],
    *,
    generated_at: datetime | None = None,
) -> dict[str, Any]:
    """A FHIR R4 ``collection`` Bundle of the months in ``results`` (see the module docstring).

    ``generated_at`` (default: now) is the Bundle timestamp and the Claims' ``created`` date; with
    it fixed, the same data always exports to the same JSON.
    """
    when = generated_at or datetime.now(UTC)
    b = Bundle()
    for pm in results:
        m = _Month(conn, b, pm)
        m.patient_resource()
        flag_rows = m.flag_rows()
        m.observations([*m.evidence_reading_ids(), *(int(r) for row in flag_rows for r in row[5])])
        flags = m.flags(flag_rows)
        m.provenances(flags)
        m.communications()
        m.consents()
        m.claim(m.charge_items(flags), when.date())
    keys = ",".join(sorted(f"{pm.patient_id}/{pm.year:04d}-{pm.month:02d}" for pm in results))
    return {
        "resourceType": "Bundle",
        "id": resource_uuid("Bundle", keys),
        "type": "collection",
        "timestamp": when.astimezone(UTC).isoformat(),
        "entry": list(b.entries.values()),
    }
