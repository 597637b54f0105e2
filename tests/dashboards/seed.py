"""A small, realistic world for the dashboard tests, written through triage.clinical.people where it can be.

One user per role (same known password; clinician, billing and admin with a seeded TOTP factor), a
licensed clinician with an NPI, a consented, enrolled patient with a BP cuff and a glucose meter on a
gateway, readings of every quality, and flags. Every world's nurse, clinician and patient are in one
shared care team, so worlds made in one database see each other's patients as before scoping.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg

from dashboards.passwords import hash_password
from triage.clinical import device_enrolments, people

PASSWORD = "correct horse battery staple"
_HASH = hash_password(PASSWORD)
ROLES = ("nurse", "clinician", "billing", "admin")
MFA_ROLES = ("clinician", "billing", "admin")  # seeded with a confirmed second factor


def totp_secret(username: str) -> str:
    """The seeded TOTP secret of a test user: derived from the name, so helpers can compute codes."""
    return base64.b32encode(hashlib.sha256(username.encode()).digest()[:20]).decode("ascii")


def enrol_totp(db: psycopg.Connection[Any], user_id: int, username: str) -> None:
    db.execute("INSERT INTO user_mfa (user_id, totp_secret, confirmed_at) VALUES (%s, %s, now())",
               (user_id, totp_secret(username)))


@dataclass
class World:
    users: dict[str, int] = field(default_factory=dict)  # role -> user_id
    usernames: dict[str, str] = field(default_factory=dict)  # role -> username
    patient_id: int = 0
    patient_name: str = ""
    bp_device: str = ""
    gateway_id: str = ""
    flag_id: int = 0
    reading_ids: list[int] = field(default_factory=list)


def add_reading(
    db: psycopg.Connection[Any], w: World, at: datetime, *, kind: str = "blood_pressure",
    systolic: float | None = 128.0, diastolic: float | None = 82.0, glucose: float | None = None,
    quality: str = "valid", quality_reason: str | None = None, measurement: str = "ok",
    patient: bool = True,
) -> int:
    device = w.bp_device if kind == "blood_pressure" else w.bp_device.replace("bp", "glu")
    row = db.execute(
        "INSERT INTO readings (message_id, gateway_id, device_id, patient_id, kind, measured_at, received_at,"
        " quality, quality_reason, measurement, systolic_mmhg, diastolic_mmhg, pulse_bpm, glucose_mg_dl,"
        " raw) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, '\\x00')"
        " RETURNING reading_id",
        (secrets.token_hex(16), w.gateway_id, device, w.patient_id if patient else None, kind, at, at,
         quality, quality_reason, measurement, systolic if kind == "blood_pressure" else None,
         diastolic if kind == "blood_pressure" else None, 70.0 if kind == "blood_pressure" else None,
         glucose if kind == "glucose" else None),
    ).fetchone()
    assert row is not None
    return int(row[0])


def add_flag(
    db: psycopg.Connection[Any], w: World, *, severity: str = "critical", rule_id: str = "bp_crisis",
    reading_ids: list[int] | None = None, opened_at: datetime | None = None, patient_id: int | None = None,
) -> int:
    ids = reading_ids if reading_ids is not None else w.reading_ids[-1:]
    row = db.execute(
        "INSERT INTO flags (patient_id, subject_key, rule_id, episode_key, severity, reason, reading_ids,"
        " last_reading_at, opened_at) VALUES (%s, %s, %s, %s, %s, %s, %s,"
        " (SELECT max(measured_at) FROM readings WHERE reading_id = ANY(%s)), %s) RETURNING flag_id",
        (patient_id or w.patient_id, f"patient:{patient_id or w.patient_id}", rule_id, secrets.token_hex(4),
         severity, f"{rule_id}: reading above threshold", ids, ids, opened_at or datetime.now(UTC)),
    ).fetchone()
    assert row is not None
    return int(row[0])


SEED_TEAM = "Seed care team"  # every world's nurse, clinician and patient: they all see each other


def join_team(db: psycopg.Connection[Any], *, users: list[int], patients: list[int],
              team: str = SEED_TEAM) -> int:
    """Put users and patients in a care team (made when missing); returns its id."""
    row = db.execute("INSERT INTO care_teams (name) VALUES (%s)"
                     " ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING team_id",
                     (team,)).fetchone()
    assert row is not None
    for u in users:
        db.execute("INSERT INTO care_team_members (team_id, user_id) VALUES (%s, %s)"
                   " ON CONFLICT DO NOTHING", (row[0], u))
    for p in patients:
        db.execute("INSERT INTO care_team_patients (team_id, patient_id) VALUES (%s, %s)"
                   " ON CONFLICT DO NOTHING", (row[0], p))
    return int(row[0])


def make_world(db: psycopg.Connection[Any], *, state: str = "NY") -> World:
    tag = secrets.token_hex(3)
    w = World()
    for role in ROLES:
        name = f"{role}-{tag}"
        w.usernames[role] = name
        w.users[role] = people.create_user(
            db, username=name, display_name=f"{role.title()} {tag}", role=role, password_hash=_HASH,
            npi="1234567893" if role == "clinician" else None, is_physician_or_qhp=role == "clinician",
        )
        if role in MFA_ROLES:
            enrol_totp(db, w.users[role], name)
    today = datetime.now(UTC).date()
    people.add_licence(db, w.users["clinician"], state=state, license_number="LIC-1",
                       valid_from=today - timedelta(days=400), valid_to=today + timedelta(days=400))
    w.patient_name = f"Patient {tag}"
    w.patient_id = people.create_patient(db, mrn=f"MRN-{tag}", display_name=w.patient_name, state=state,
                                         timezone="America/New_York")
    join_team(db, users=[w.users["nurse"], w.users["clinician"]], patients=[w.patient_id])
    start = datetime.now(UTC) - timedelta(days=20)
    people.record_consent(db, w.patient_id, consented_at=start - timedelta(days=1), method="written",
                          recorded_by=w.users["admin"], version="v1")
    people.enrol(db, w.patient_id, ordering_user_id=w.users["clinician"], icd10_codes=["I10"],
                 start_date=(start - timedelta(days=1)).date(), established_visit_date=date(2024, 6, 1),
                 education_documented_on=start.date())
    w.gateway_id = f"gw-{tag}"
    w.bp_device = f"bp-{tag}"
    people.assign_device(db, w.bp_device, w.patient_id, at=start, assigned_by="seed", kind="blood_pressure")
    people.assign_device(db, w.bp_device.replace("bp", "glu"), w.patient_id, at=start, assigned_by="seed",
                         kind="glucose")
    for dev, kind in ((w.bp_device, "blood_pressure"), (w.bp_device.replace("bp", "glu"), "glucose")):
        device_enrolments.enrol(db, device_enrolments.Device(dev, kind), w.gateway_id, at=start, by="seed",
                                reason="test world")
    db.execute("UPDATE devices SET last_seen_at = now() WHERE device_id LIKE %s", (f"%-{tag}",))
    db.execute(
        "INSERT INTO gateway_status (gateway_id, online, status) VALUES (%s, true, %s)",
        (w.gateway_id, json.dumps({"outbox_depth": 3, "outbox_full": False,
                                   "devices": {w.bp_device: {"last_contact": start.isoformat(),
                                                             "last_error": None}}})),
    )
    for d in range(18, 0, -1):
        at = datetime.now(UTC) - timedelta(days=d, hours=2)
        w.reading_ids.append(add_reading(db, w, at, systolic=125.0 + d, diastolic=80.0))
        if d % 3 == 0:
            add_reading(db, w, at + timedelta(minutes=5), kind="glucose", glucose=110.0 + d)
    add_reading(db, w, datetime.now(UTC) - timedelta(days=2), systolic=300.0, diastolic=40.0,
                quality="quarantined", quality_reason="pulse pressure > 120")
    add_reading(db, w, datetime.now(UTC) - timedelta(days=1), systolic=None, diastolic=None,
                quality="failed", measurement="failed")
    w.reading_ids.append(add_reading(db, w, datetime.now(UTC) - timedelta(hours=3), systolic=186.0,
                                     diastolic=124.0))
    w.flag_id = add_flag(db, w, severity="critical", rule_id="bp_crisis")
    return w
