"""Recording the dated billing facts: orders, counted-elsewhere marks, payers, prior
authorisations, payer profiles, the end of a licence and imported claims. Each call (but the
imported claim: one statement, no audit row) is one transaction with its audit row
(``triage.clinical.audit.record``), validates its input into a typed error, and returns the new
row's id. Locations live in :mod:`triage.clinical.locations`; time logs and communications in
:mod:`triage.clinical.review`. The statements are :mod:`triage.billing.records_store`'s (and the
payer profile's :mod:`triage.billing.billing_store`'s).
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import psycopg

from triage.billing import billing_store, records_store
from triage.billing.policy import MEDICARE_CY2026, InvalidPolicy, Policy
from triage.clinical import audit, icd10, people_store
from triage.errors import TerminalTriageError

PROGRAMS_ELSEWHERE = ("CCM", "PCM", "TCM", "BHI", "EM")
_PAYER = re.compile(r"^[a-z0-9_.-]{1,40}$")


class InvalidBillingFact(TerminalTriageError):
    def __init__(self, field: str, value: object, reason: str) -> None:
        super().__init__(f"{field}={value!r}: {reason}")
        self.field = field
        self.value = value
        self.reason = reason


def _patient(conn: psycopg.Connection[Any], patient_id: int) -> None:
    if not people_store.patient_exists(conn, patient_id):
        raise InvalidBillingFact("patient_id", patient_id, "no such patient")


def _username(conn: psycopg.Connection[Any], user_id: int | None) -> str:
    if user_id is None:
        return "system"
    name = people_store.username_of(conn, user_id)
    if name is None:
        raise InvalidBillingFact("user_id", user_id, "no such user")
    return name


def record_order(
    conn: psycopg.Connection[Any],
    patient_id: int,
    *,
    ordering_user_id: int,
    order_date: date,
    icd10_codes: Sequence[str],
    medical_necessity: str,
    end_date: date | None = None,
    recorded_by: int | None = None,
    source_ip: str | None = None,
) -> int:
    """An RPM order (G3). ICD-10 codes are format-checked; a malformed one refuses the order."""
    try:
        codes = icd10.validate_codes(icd10_codes)
    except icd10.InvalidICD10 as exc:
        raise InvalidBillingFact("icd10_codes", list(icd10_codes), str(exc)) from None
    if not medical_necessity.strip():
        raise InvalidBillingFact("medical_necessity", medical_necessity, "is required")
    if end_date is not None and end_date < order_date:
        raise InvalidBillingFact("end_date", end_date, "is before order_date")
    with conn.transaction():
        _patient(conn, patient_id)
        if people_store.role_of(conn, ordering_user_id) != "clinician":
            raise InvalidBillingFact(
                "ordering_user_id", ordering_user_id, "is not a clinician (physician/NPP)"
            )
        oid = records_store.insert_order(
            conn, patient_id, ordering_user_id, order_date, end_date, codes, medical_necessity, recorded_by
        )
        audit.record(
            conn,
            actor=_username(conn, recorded_by),
            action="patient.order",
            patient_id=patient_id,
            detail={
                "order_id": oid,
                "ordering_user_id": ordering_user_id,
                "order_date": order_date.isoformat(),
                "end_date": None if end_date is None else end_date.isoformat(),
                "icd10_codes": codes,
            },
            source_ip=source_ip,
        )
    return oid


def end_order(
    conn: psycopg.Connection[Any],
    order_id: int,
    *,
    end_date: date,
    recorded_by: int | None = None,
    source_ip: str | None = None,
) -> None:
    with conn.transaction():
        patient_id = records_store.end_order(conn, order_id, end_date)
        if patient_id is None:
            raise InvalidBillingFact("order_id", order_id, "no such order dated on or before end_date")
        audit.record(
            conn,
            actor=_username(conn, recorded_by),
            action="patient.order_end",
            patient_id=patient_id,
            detail={"order_id": order_id, "end_date": end_date.isoformat()},
            source_ip=source_ip,
        )


def mark_counted_elsewhere(
    conn: psycopg.Connection[Any],
    time_log_id: int,
    *,
    program: str,
    marked_by: int,
    source_ip: str | None = None,
) -> None:
    """These minutes were already counted for CCM/PCM/TCM/BHI/E/M (G9): RPM leaves them out."""
    if program not in PROGRAMS_ELSEWHERE:
        raise InvalidBillingFact("program", program, f"must be one of {', '.join(PROGRAMS_ELSEWHERE)}")
    with conn.transaction():
        marked = records_store.mark_counted_elsewhere(conn, time_log_id, program, marked_by)
        if marked is None:
            raise InvalidBillingFact("time_log_id", time_log_id, "no such time log")
        patient_id, minutes = marked
        audit.record(
            conn,
            actor=_username(conn, marked_by),
            action="time_log.counted_elsewhere",
            patient_id=patient_id,
            detail={"time_log_id": time_log_id, "program": program, "minutes": minutes},
            source_ip=source_ip,
        )


def _payer(payer: str) -> str:
    if not _PAYER.match(payer):
        raise InvalidBillingFact("payer", payer, "use 1-40 lower-case letters, digits, '_', '.', '-'")
    return payer


def set_payer(
    conn: psycopg.Connection[Any],
    patient_id: int,
    *,
    payer: str,
    effective_from: date,
    effective_to: date | None = None,
    member_id: str | None = None,
    recorded_by: int | None = None,
    source_ip: str | None = None,
) -> int:
    """The patient's payer from ``effective_from``; an open earlier period is closed the day before."""
    _payer(payer)
    if effective_to is not None and effective_to < effective_from:
        raise InvalidBillingFact("effective_to", effective_to, "is before effective_from")
    with conn.transaction():
        _patient(conn, patient_id)
        pid = records_store.insert_payer(
            conn, patient_id, payer, effective_from, effective_to, member_id, recorded_by
        )
        audit.record(
            conn,
            actor=_username(conn, recorded_by),
            action="patient.payer",
            patient_id=patient_id,
            detail={"payer": payer, "effective_from": effective_from.isoformat(), "patient_payer_id": pid},
            source_ip=source_ip,
        )
    return pid


def record_prior_auth(
    conn: psycopg.Connection[Any],
    patient_id: int,
    *,
    payer: str,
    valid_from: date,
    valid_to: date,
    reference: str,
    recorded_by: int | None = None,
    source_ip: str | None = None,
) -> int:
    _payer(payer)
    if valid_to < valid_from:
        raise InvalidBillingFact("valid_to", valid_to, "is before valid_from")
    if not reference.strip():
        raise InvalidBillingFact("reference", reference, "is required")
    with conn.transaction():
        _patient(conn, patient_id)
        aid = records_store.insert_prior_auth(
            conn, patient_id, payer, valid_from, valid_to, reference, recorded_by
        )
        audit.record(
            conn,
            actor=_username(conn, recorded_by),
            action="patient.prior_auth",
            patient_id=patient_id,
            detail={
                "prior_auth_id": aid,
                "payer": payer,
                "from": valid_from.isoformat(),
                "to": valid_to.isoformat(),
            },
            source_ip=source_ip,
        )
    return aid


_PROFILE_KEYS = {
    "SETUP_MIN_DAYS": "setup_min_days",
    "MAX_99458_UNITS": "max_99458_units",
    "DEVICE_PERIOD_DAYS": "device_period_days",
    "DEVICE_LOW_MIN_DAYS": "device_low_min_days",
    "DEVICE_HIGH_MIN_DAYS": "device_high_min_days",
    "MIN_99470": "min_99470",
    "MIN_99457": "min_99457",
    "STEP_99458": "step_99458",
    "MIN_99091": "min_99091",
    "DEFAULT_POS": "default_pos",
    "HAS_99445": "has_99445",
    "HAS_99470": "has_99470",
    "REQUIRES_PRIOR_AUTH": "requires_prior_auth",
    "WAIVED_GATES": "waived_gates",
    "LABEL": "label",
}


def _as_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, frozenset | set | tuple | list):
        return ",".join(sorted(str(v) for v in value))
    return str(value)


def define_payer_profile(
    conn: psycopg.Connection[Any],
    payer: str,
    *,
    effective_from: date,
    overrides: Mapping[str, object],
    effective_to: date | None = None,
    base: Policy = MEDICARE_CY2026,
) -> Policy:
    """A payer profile from ``effective_from``: ``base`` (Medicare FFS CY2026) with ``overrides``
    (keys as in ``billing_policy``, e.g. ``{"MAX_99458_UNITS": 1, "REQUIRES_PRIOR_AUTH": True}``)."""
    _payer(payer)
    unknown = sorted(set(overrides) - set(_PROFILE_KEYS))
    if unknown:
        raise InvalidPolicy(payer, f"unknown keys {', '.join(unknown)}")
    values = {k: _as_text(getattr(base, attr)) for k, attr in _PROFILE_KEYS.items()}
    values["LABEL"] = payer
    values.update({k: _as_text(v) for k, v in overrides.items()})
    policy = Policy.from_values(payer, effective_from, effective_to, values)
    with conn.transaction():
        billing_store.replace_policy(conn, payer, effective_from, effective_to, values)
    return policy


def end_licence(
    conn: psycopg.Connection[Any],
    license_id: int,
    *,
    valid_to: date,
    reason: str,
    recorded_by: int | None = None,
    source_ip: str | None = None,
) -> None:
    """End a licence early (lapsed, revoked, surrendered): the row stays, history is kept."""
    if not reason.strip():
        raise InvalidBillingFact("reason", reason, "is required")
    with conn.transaction():
        ended = records_store.end_licence(conn, license_id, valid_to, reason)
        if ended is None:
            raise InvalidBillingFact("license_id", license_id, "no such licence in force on that date")
        user_id, state = ended
        audit.record(
            conn,
            actor=_username(conn, recorded_by),
            action="user.licence_end",
            patient_id=None,
            detail={
                "license_id": license_id,
                "user_id": user_id,
                "state": state,
                "valid_to": valid_to.isoformat(),
                "reason": reason,
            },
            source_ip=source_ip,
        )


def record_claim_history(
    conn: psycopg.Connection[Any],
    patient_id: int,
    *,
    service_from: date,
    service_to: date,
    program: str,
    cpt: str,
    billing_npi: str,
    source: str = "external",
) -> int:
    """A claim billed by anyone (imported): feeds gates G7/G8 and 99453-once-per-episode."""
    return records_store.insert_claim_history(
        conn, patient_id, service_from, service_to, program, cpt, billing_npi, source)
