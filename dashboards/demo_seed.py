"""Demo data: staff logins, and one enrolled, consented patient per simulated gateway.

Used by ``rpmflow-sim demo`` (as ``python -m dashboards.demo_seed``) so that the simulated
devices' readings land on identified (pseudonymous) patients that a nurse can triage and a
licensed clinician can review. Idempotent: running it twice changes nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import psycopg

from dashboards.passwords import hash_password

DEMO_STATES = ("NY", "NJ", "PA", "MA", "CT")
CLINICIAN_NPI = "1234567893"


@dataclass(frozen=True)
class SeededPatient:
    patient_id: int
    mrn: str
    devices: tuple[str, ...]


def _user(conn: psycopg.Connection[tuple[object, ...]], username: str, role: str, password: str,
          display: str, npi: str | None = None, qhp: bool = False) -> int:
    row = conn.execute("SELECT user_id FROM users WHERE username = %s", (username,)).fetchone()
    if row:
        return int(str(row[0]))
    row = conn.execute(
        "INSERT INTO users (username, display_name, role, password_hash, npi, is_physician_or_qhp)"
        " VALUES (%s, %s, %s, %s, %s, %s) RETURNING user_id",
        (username, display, role, hash_password(password), npi, qhp),
    ).fetchone()
    assert row is not None
    return int(str(row[0]))


def seed_demo(
    conninfo: str, gateways: list[str], password: str, today: date | None = None
) -> list[SeededPatient]:
    today = today or datetime.now(UTC).date()
    start = today - timedelta(days=20)
    out: list[SeededPatient] = []
    with psycopg.connect(conninfo) as conn, conn.transaction():
        _user(conn, "nurse", "nurse", password, "Nora Nurse, RN")
        clinician = _user(conn, "clinician", "clinician", password, "Dr. Cal Clinician, MD",
                          npi=CLINICIAN_NPI, qhp=True)
        _user(conn, "billing", "billing", password, "Bill Ing")
        admin = _user(conn, "admin", "admin", password, "Ada Admin")
        for state in DEMO_STATES:
            conn.execute(
                "INSERT INTO clinician_licenses (user_id, state, license_number, valid_from, valid_to)"
                " SELECT %s, %s, %s, %s, %s WHERE NOT EXISTS"
                " (SELECT 1 FROM clinician_licenses WHERE user_id = %s AND state = %s)",
                (clinician, state, f"{state}-MD-{clinician:05d}", date(today.year - 1, 1, 1),
                 date(today.year + 2, 12, 31), clinician, state),
            )
        for n, gw in enumerate(gateways, start=1):
            mrn = f"DEMO-{n:04d}"
            state = DEMO_STATES[(n - 1) % len(DEMO_STATES)]
            row = conn.execute("SELECT patient_id FROM patients WHERE mrn = %s", (mrn,)).fetchone()
            if row is None:
                row = conn.execute(
                    "INSERT INTO patients (mrn, display_name, state, timezone, birth_year)"
                    " VALUES (%s, %s, %s, 'America/New_York', %s) RETURNING patient_id",
                    (mrn, f"Patient {mrn}", state, 1950 + n),
                ).fetchone()
                assert row is not None
                pid = int(str(row[0]))
                conn.execute(
                    "INSERT INTO enrolments (patient_id, ordering_user_id, order_icd10, start_date,"
                    " established_visit_date, education_documented_on) VALUES (%s, %s, %s, %s, %s, %s)",
                    (pid, clinician, ["I10", "E11.9"], start, start - timedelta(days=40), start),
                )
                conn.execute(
                    "INSERT INTO consents (patient_id, consented_at, method, recorded_by, version)"
                    " VALUES (%s, %s, 'verbal', %s, 'rpm-consent-v1')",
                    (pid, datetime.combine(start, datetime.min.time(), UTC), admin),
                )
            else:
                pid = int(str(row[0]))
            devices = (f"SIM-BP-{n:04d}", f"SIM-GL-{n:04d}")
            for dev, kind in zip(devices, ("blood_pressure", "glucose"), strict=True):
                conn.execute(
                    "INSERT INTO devices (device_id, kind, manufacturer, model, serial, last_gateway_id)"
                    " VALUES (%s, %s, 'rpmflow-sim', %s, %s, %s) ON CONFLICT (device_id) DO NOTHING",
                    (dev, kind, "SIM-BP1" if kind == "blood_pressure" else "SIM-GL1", dev, gw),
                )
                conn.execute(
                    "INSERT INTO device_assignments (device_id, patient_id, valid_from, assigned_by)"
                    " SELECT %s, %s, %s, 'demo-seed' WHERE NOT EXISTS"
                    " (SELECT 1 FROM device_assignments WHERE device_id = %s AND valid_to IS NULL)",
                    (dev, pid, datetime.combine(start, datetime.min.time(), UTC), dev),
                )
            out.append(SeededPatient(pid, mrn, devices))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m dashboards.demo_seed", description=__doc__)
    p.add_argument("--database-url", default=os.environ.get("RPMFLOW_DATABASE_URL"))
    p.add_argument("--gateway", action="append", default=[], help="simulated gateway id (repeatable)")
    p.add_argument("--password", required=True, help="password for the demo logins")
    args = p.parse_args(argv)
    if not args.database_url:
        print("RPMFLOW_DATABASE_URL (or --database-url) is required", file=sys.stderr)
        return 2
    seeded = seed_demo(args.database_url, args.gateway, args.password)
    print(f"seeded {len(seeded)} demo patients")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
