"""Seed helpers for the review/promotion/billing tests: a patient, the people around them, flags
and readings, written with the production helpers of triage.clinical.people where one exists."""

from __future__ import annotations

import itertools
import secrets
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import psycopg

from triage.clinical import people, promotion, review

_n = itertools.count(1)
CONSENT_AT = datetime.fromisoformat("2025-12-15T10:00:00+00:00")


@dataclass(frozen=True)
class World:
    patient_id: int
    mrn: str
    state: str
    tz: str
    nurse: int
    clinician: int
    clinician2: int
    out_of_state: int
    expired: int
    billing: int
    admin: int
    enrolment_id: int


def _npi() -> str:
    return f"{1000000000 + next(_n) * 7919 % 8999999999:010d}"


def make_world(
    db: psycopg.Connection[Any],
    *,
    state: str = "NY",
    tz: str = "America/New_York",
    consent_at: datetime | None = CONSENT_AT,
    enrol_start: date = date(2026, 1, 1),
    established: date | None = date(2025, 11, 1),
    education: date | None = date(2026, 1, 1),
    enrol_end: date | None = None,
) -> World:
    tag = secrets.token_hex(3)
    pid = people.create_patient(db, mrn=f"MRN-{tag}", display_name=f"Patient {tag}", state=state, timezone=tz)

    def user(role: str, name: str, npi: bool = False, qhp: bool = False) -> int:
        return people.create_user(
            db,
            username=f"{name}-{tag}",
            display_name=name,
            role=role,
            npi=_npi() if npi else None,
            is_physician_or_qhp=qhp,
        )

    nurse = user("nurse", "nurse")
    clin = user("clinician", "drlee", npi=True, qhp=True)
    clin2 = user("clinician", "drkim", npi=True)
    other = user("clinician", "drnj", npi=True)
    expired = user("clinician", "drold", npi=True)
    billing = user("billing", "biller")
    admin = user("admin", "admin")
    people.add_licence(
        db, clin, state=state, license_number="L1", valid_from=date(2024, 1, 1), valid_to=date(2028, 12, 31)
    )
    people.add_licence(
        db, clin2, state=state, license_number="L2", valid_from=date(2024, 1, 1), valid_to=date(2028, 12, 31)
    )
    people.add_licence(
        db, other, state="NJ", license_number="L3", valid_from=date(2024, 1, 1), valid_to=date(2028, 12, 31)
    )
    people.add_licence(
        db,
        expired,
        state=state,
        license_number="L4",
        valid_from=date(2020, 1, 1),
        valid_to=date(2025, 12, 31),
    )
    if consent_at is not None:
        people.record_consent(
            db, pid, consented_at=consent_at, method="verbal", recorded_by=nurse, version="v1"
        )
    eid = people.enrol(
        db,
        pid,
        ordering_user_id=clin,
        icd10_codes=["I10"],
        start_date=enrol_start,
        end_date=enrol_end,
        established_visit_date=established,
        education_documented_on=education,
    )
    return World(pid, f"MRN-{tag}", state, tz, nurse, clin, clin2, other, expired, billing, admin, eid)


def new_flag(db: psycopg.Connection[Any], patient_id: int) -> int:
    row = db.execute(
        "INSERT INTO flags (patient_id, subject_key, rule_id, episode_key, severity, reason)"
        " VALUES (%s, %s, 'bp_high', %s, 'high', 'test') RETURNING flag_id",
        (patient_id, f"patient:{patient_id}", secrets.token_hex(4)),
    ).fetchone()
    assert row is not None
    return int(row[0])


def add_reading(
    db: psycopg.Connection[Any],
    patient_id: int,
    device_id: str,
    at: datetime,
    *,
    quality: str = "valid",
    transmission: str = "automatic",
    kind: str = "blood_pressure",
    systolic: float = 128.0,
    glucose: float | None = None,
) -> int:
    db.execute(
        "INSERT INTO devices (device_id, kind) VALUES (%s, %s) ON CONFLICT DO NOTHING", (device_id, kind)
    )
    row = db.execute(
        "INSERT INTO readings (message_id, gateway_id, device_id, patient_id, kind, measured_at, received_at,"
        " quality, transmission, systolic_mmhg, diastolic_mmhg, pulse_bpm, glucose_mg_dl, raw)"
        " VALUES (%s, 'gw-1', %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, '\\x00') RETURNING reading_id",
        (
            secrets.token_hex(16),
            device_id,
            patient_id,
            kind,
            at,
            at,
            quality,
            transmission,
            systolic if kind == "blood_pressure" else None,
            82.0 if kind == "blood_pressure" else None,
            0.0 if kind == "blood_pressure" else None,
            glucose,
        ),
    ).fetchone()
    assert row is not None
    return int(row[0])


def reviewed_flag(
    db: psycopg.Connection[Any],
    w: World,
    *,
    dos: date,
    minutes: int = 0,
    interactive: bool = False,
    reviewer: int | None = None,
) -> int:
    flag = new_flag(db, w.patient_id)
    review.record_review(
        db,
        flag,
        reviewer or w.clinician,
        determination="BP above goal",
        icd10_codes=["I10"],
        action="titrate lisinopril",
        minutes=minutes,
        interactive=interactive,
        interactive_mode="phone" if interactive else None,
        place_of_service="11",
        date_of_service=dos,
    )
    return flag


def promoted_flag(
    db: psycopg.Connection[Any],
    w: World,
    *,
    dos: date,
    minutes: int = 0,
    interactive: bool = False,
    reviewer: int | None = None,
) -> int:
    flag = reviewed_flag(db, w, dos=dos, minutes=minutes, interactive=interactive, reviewer=reviewer)
    promotion.promote(db, flag, reviewer or w.clinician)
    return flag
