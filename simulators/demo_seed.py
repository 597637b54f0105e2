"""Demo data: staff logins, and one enrolled, consented patient per simulated gateway.

Clinician, billing and admin sign in with a second factor: the demo gives them fixed, published TOTP
secrets (``DEMO_TOTP_SECRETS``, printed in the demo banner); ``--code ROLE`` prints the current code.

Used by ``rpmflow-sim demo`` (as ``python -m simulators.demo_seed``) and the end-to-end test so that
the simulated devices' readings land on identified (pseudonymous) patients that a nurse can
triage and a licensed clinician can review. People, licences, enrolments, consents and device
assignments are created through triage's own functions (``triage.clinical.people``), so the demo
goes through the same validation as the admin pages. Idempotent: running it twice changes nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
import pyotp

from dashboards import care_teams, mfa
from dashboards.passwords import hash_password
from gateway.runtime import settings as rs
from gateway.runtime.fatal import exit_on_fatal
from triage.clinical import assignments, consent_store, device_enrolments, people, people_store
from triage.settings import DatabaseSettings

PROG = "python -m simulators.demo_seed"
DEMO_STATES = ("NY", "NJ", "PA", "MA", "CT")
CLINICIAN_NPI = "1234567893"
DEMO_ICD10 = ("I10", "E11.9")
DEMO_TEAM = "Demo care team"
# Public on purpose (a local demo): the authenticator keys of the demo users who need a second factor.
DEMO_TOTP_SECRETS = {
    "clinician": "RPMFLOWDEMOCLINICIANTOTPSECRET22",
    "billing": "RPMFLOWDEMOBILLINGTOTPSECRET2222",
    "admin": "RPMFLOWDEMOADMINTOTPSECRET222222",
}


def demo_code(role: str) -> str:
    """The current TOTP code of a demo user."""
    return pyotp.TOTP(DEMO_TOTP_SECRETS[role]).now()
DEMO_ZONE = "America/New_York"  # every demo state is on Eastern time
HISTORY_DAYS = 30  # simulators.demo_history backfills this many days: devices are assigned before


@dataclass(frozen=True)
class SeededPatient:
    patient_id: int
    mrn: str
    devices: tuple[str, ...]
    vitals: tuple[str, ...] = ()  # the first patient's scale and oximeter (heart failure / COPD)


# Scales and oximeters: the first gateway's (live), and the history-only heart-failure and COPD
# patients of simulators.demo_history (its ARCHETYPES 11 and 12).
VITALS_BY_PATIENT = {1: ("weight", "spo2"), 11: ("weight",), 12: ("spo2",)}
_PREFIX = {"blood_pressure": "BP", "glucose": "GL", "weight": "WS", "spo2": "OX"}


def device_ids(n: int) -> dict[str, str]:
    """Demo patient ``n``'s devices by kind: a cuff and a meter, and a scale / oximeter for some."""
    kinds = ("blood_pressure", "glucose", *VITALS_BY_PATIENT.get(n, ()))
    return {k: f"SIM-{_PREFIX[k]}-{n:04d}" for k in kinds}


def vitals_devices(n: int) -> tuple[str, ...]:
    """The scale and oximeter of demo gateway ``n`` (only the first gateway has them live)."""
    return (f"SIM-WS-{n:04d}", f"SIM-OX-{n:04d}") if n == 1 else ()


def _user(conn: psycopg.Connection[Any], username: str, role: str, password: str, display: str,
          npi: str | None = None, qhp: bool = False) -> int:
    found = people_store.user_id_of(conn, username)
    if found is None:
        found = people.create_user(conn, username=username, display_name=display, role=role,
                                   password_hash=hash_password(password), npi=npi, is_physician_or_qhp=qhp)
    if role in DEMO_TOTP_SECRETS:
        mfa.enrol_confirmed(conn, found, DEMO_TOTP_SECRETS[role])
    return found


def _licences(conn: psycopg.Connection[Any], clinician: int, today: date) -> None:
    held = consent_store.licence_states(conn, clinician)
    for state in DEMO_STATES:
        if state not in held:
            people.add_licence(conn, clinician, state=state, license_number=f"{state}-MD-{clinician:05d}",
                               valid_from=date(today.year - 1, 1, 1), valid_to=date(today.year + 2, 12, 31))


def _patient(conn: psycopg.Connection[Any], n: int, start: date, clinician: int, admin: int) -> int:
    mrn = f"DEMO-{n:04d}"
    found = people_store.patient_id_of_mrn(conn, mrn)
    if found is not None:
        return found
    pid = people.create_patient(conn, mrn=mrn, display_name=f"Patient {mrn}",
                                state=DEMO_STATES[(n - 1) % len(DEMO_STATES)], birth_year=1950 + n,
                                timezone=DEMO_ZONE)
    people.enrol(conn, pid, ordering_user_id=clinician, icd10_codes=DEMO_ICD10, start_date=start,
                 established_visit_date=start - timedelta(days=40), education_documented_on=start)
    people.record_consent(conn, pid, consented_at=datetime.combine(start, datetime.min.time(), UTC),
                          method="verbal", recorded_by=admin, version="rpm-consent-v1")
    return pid


def seed_demo(
    conninfo: str, gateways: list[str], password: str, today: date | None = None, *, patients: int = 0
) -> list[SeededPatient]:
    """Staff logins and ``max(patients, len(gateways))`` patients, monitored since before the history."""
    today = today or datetime.now(UTC).date()
    start = today - timedelta(days=HISTORY_DAYS + 1)
    out: list[SeededPatient] = []
    with psycopg.connect(conninfo) as conn, conn.transaction():
        nurse = _user(conn, "nurse", "nurse", password, "Nora Nurse, RN")
        clinician = _user(conn, "clinician", "clinician", password, "Dr. Cal Clinician, MD",
                          npi=CLINICIAN_NPI, qhp=True)
        _user(conn, "billing", "billing", password, "Bill Ing")
        admin = _user(conn, "admin", "admin", password, "Ada Admin")
        _licences(conn, clinician, today)
        since = datetime.combine(start, datetime.min.time(), UTC)
        for n in range(1, max(patients, len(gateways)) + 1):
            pid = _patient(conn, n, start, clinician, admin)
            owned = device_ids(n)
            # History-only patients (simulators.demo_history) have a home gateway that is not live.
            gateway = gateways[n - 1] if n <= len(gateways) else f"gw-{n:04d}"
            for kind, dev in owned.items():
                # ingest accepts a device's readings only from the gateway it is enrolled on
                if device_enrolments.enrolled_gateway(conn, dev, datetime.now(UTC)) is None:
                    device_enrolments.enrol(conn, device_enrolments.Device(dev, kind, "SIMULATED"), gateway,
                                            at=since, by="demo-seed", reason="demo gateway set-up")
                if not any(valid_to is None for _, _, valid_to in assignments.device_history(conn, dev)):
                    people.assign_device(conn, dev, pid, kind=kind, assigned_by="demo-seed", at=since)
            devices = (owned["blood_pressure"], owned["glucose"])
            vitals = tuple(d for k, d in owned.items() if k in ("weight", "spo2"))
            out.append(SeededPatient(pid, f"DEMO-{n:04d}", devices, vitals))
        _care_team(conn, [nurse, clinician], [p.patient_id for p in out])
    return out


def _care_team(conn: psycopg.Connection[Any], members: list[int], patients: list[int]) -> None:
    """The demo nurse and clinician care for every demo patient (care-team scoping)."""
    team = care_teams.create_team(conn, DEMO_TEAM)
    for user_id in members:
        care_teams.set_member(conn, team, user_id, present=True)
    for patient_id in patients:
        care_teams.set_patient(conn, team, patient_id, present=True)


def main(argv: list[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    return exit_on_fatal(PROG, lambda: _main(argv, os.environ if environ is None else environ))


def _main(argv: list[str] | None, environ: Mapping[str, str]) -> int:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__)
    rs.add_flags(p, DatabaseSettings)
    p.add_argument("--gateway", action="append", default=[], help="simulated gateway id (repeatable)")
    p.add_argument("--password", help="password for the demo logins (required to seed)")
    p.add_argument("--code", choices=sorted(DEMO_TOTP_SECRETS), metavar="ROLE",
                   help="print ROLE's current TOTP code and exit")
    p.add_argument("--patients", type=int, default=0, help="patients in all (at least one per gateway)")
    args = p.parse_args(argv)
    if args.code:
        print(demo_code(args.code))
        return 0
    if not args.password:
        print("--password is required to seed", file=sys.stderr)
        return 2
    settings = rs.load(DatabaseSettings, environ, args)
    seeded = seed_demo(settings.database_url, args.gateway, args.password, patients=args.patients)
    print(f"seeded {len(seeded)} demo patients")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
