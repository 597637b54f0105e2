"""Billing and FHIR output of one seeded dataset as sorted JSON, and its sha256 (issue 12).

A refactor of triage/billing/ must not change a single decision or FHIR element. ``seed`` starts a
PostgreSQL cluster of its own, migrates it and writes a handful of patients that touch every fact
family (readings of four kinds, manual and quarantined ones, promoted and unpromoted flags,
minutes, communications, counted-elsewhere marks, payers, prior authorisations, a payer profile,
location moves, claims elsewhere, a device swap, a second enrolment); the cluster keeps running so
the same rows can be read by the code before and after the change. ``dump`` computes January to
March 2026 (and February ``--as-of`` mid-month), the CSV exports, the month report, the loaded facts
and the FHIR bundles, writes them as one sorted JSON document and prints its sha256. ``stop`` ends
the cluster.

    python -m bench.billing_identity seed /tmp/billing-ident
    python -m bench.billing_identity dump /tmp/billing-ident /tmp/billing-before.json
    python -m bench.billing_identity stop /tmp/billing-ident
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import signal
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from ingest.migrate import migrate
from simulators.embedded_postgres import EmbeddedPostgres
from tests.triage.rpm_seed import World, add_reading, make_world, new_flag, promoted_flag, reviewed_flag
from triage.billing import compute, drive, export, records
from triage.billing.load import load_patient_facts
from triage.clinical import locations, people, review

NY = ZoneInfo("America/New_York")
LA = ZoneInfo("America/Los_Angeles")
Conn = psycopg.Connection[Any]


def _at(d: date, hour: int = 9, tz: ZoneInfo = NY) -> datetime:
    return datetime(d.year, d.month, d.day, hour, tzinfo=tz)


def _days(db: Conn, w: World, n: int, start: date, device: str = "bp-1", **kw: Any) -> None:
    for i in range(n):
        add_reading(db, w.patient_id, device, _at(start + timedelta(days=i)), **kw)


def _glucose_original(db: Conn, pid: int, device: str, at: datetime, original: dict[str, Any]) -> None:
    mg = {"mol/L": 18015.6, "mmol/L": 18.0156}[original["unit"]] * original["concentration"]
    db.execute(
        "INSERT INTO devices (device_id, kind) VALUES (%s, 'glucose') ON CONFLICT DO NOTHING", (device,)
    )
    db.execute(
        "INSERT INTO readings (message_id, gateway_id, device_id, patient_id, kind, measured_at, received_at,"
        " glucose_mg_dl, original, meal, raw)"
        " VALUES (md5(%s)::uuid, 'gw-1', %s, %s, 'glucose', %s, %s, %s, %s, 'fasting', '\\x00')",
        (f"{device}{at.isoformat()}", device, pid, at, at, mg, json.dumps(original)),
    )


def _kinds_patient(db: Conn) -> None:
    """Four kinds, SI and mmol/L glucose, a promoted flag with an interactive call."""
    w = make_world(db)
    _days(db, w, 20, date(2026, 1, 5))
    add_reading(db, w.patient_id, "bp-1", _at(date(2026, 2, 2)))
    _glucose_original(
        db, w.patient_id, f"gl-{w.mrn}", _at(date(2026, 2, 3)), {"unit": "mol/L", "concentration": 0.0055}
    )
    _glucose_original(
        db, w.patient_id, f"gl-{w.mrn}", _at(date(2026, 2, 4)), {"unit": "mmol/L", "concentration": 6.1}
    )
    scale, oximeter = f"scale-{w.mrn}", f"ox-{w.mrn}"
    for device, kind in ((scale, "weight"), (oximeter, "spo2")):
        people.assign_device(db, device, w.patient_id, at=_at(date(2026, 1, 1)), assigned_by="n", kind=kind)
    for i in range(18):
        drive.add_reading(
            db, scale, _at(date(2026, 2, 5) + timedelta(days=i), 7), kind="weight", weight_kg=81.6466
        )
    drive.add_reading(db, oximeter, _at(date(2026, 2, 5), 8), kind="spo2", spo2_pct=97.0, pulse=70.0)
    drive.add_reading(db, oximeter, _at(date(2026, 2, 6), 8), kind="spo2", spo2_pct=float("nan"), pulse=0.0)
    promoted_flag(db, w, dos=date(2026, 2, 2), minutes=25, interactive=True)


def _staff_patient(db: Conn) -> None:
    """Two clinicians, communications, counted-elsewhere minutes, a move, a payer change, claims."""
    w = make_world(db)
    _days(db, w, 16, date(2026, 1, 5))
    _days(db, w, 10, date(2026, 2, 4), device="bp-2", systolic=151.0)
    _days(db, w, 3, date(2026, 2, 20), transmission="manual")
    _days(db, w, 2, date(2026, 2, 24), quality="quarantined")
    f1 = promoted_flag(db, w, dos=date(2026, 2, 10), minutes=12, interactive=True)
    promoted_flag(db, w, dos=date(2026, 2, 20), minutes=32, reviewer=w.clinician2)
    review.record_communication(db, f1, w.nurse, at=_at(date(2026, 2, 11), 14), mode="phone")
    review.record_communication(db, f1, w.nurse, at=_at(date(2026, 2, 12), 14), mode="portal_message")
    t = review.log_time(db, f1, w.nurse, 15, logged_at=_at(date(2026, 2, 13), 10))
    review.log_time(db, f1, w.nurse, 22, logged_at=_at(date(2026, 2, 14), 10))
    records.mark_counted_elsewhere(db, t, program="CCM", marked_by=w.clinician)
    reviewed_flag(db, w, dos=date(2026, 2, 15), minutes=9, interactive=True)  # never promoted
    new_flag(db, w.patient_id)
    locations.record_location(
        db, w.patient_id, state="NJ", effective_from=date(2026, 2, 18), today=date(2026, 2, 18)
    )
    records.set_payer(db, w.patient_id, payer="medicare", effective_from=date(2026, 1, 1))
    records.record_claim_history(
        db,
        w.patient_id,
        service_from=date(2026, 3, 2),
        service_to=date(2026, 3, 2),
        program="RTM",
        cpt="98976",
        billing_npi="1999999999",
    )
    records.record_order(
        db,
        w.patient_id,
        ordering_user_id=w.clinician,
        order_date=date(2026, 1, 2),
        icd10_codes=["I10", "E11.9"],
        medical_necessity="uncontrolled hypertension",
    )


def _payer_patient(db: Conn) -> None:
    """A payer profile that needs prior authorisation and caps 99458 at one unit."""
    records.define_payer_profile(
        db,
        "acme.mcd",
        effective_from=date(2025, 7, 1),
        overrides={"MAX_99458_UNITS": 1, "REQUIRES_PRIOR_AUTH": True},
    )
    w = make_world(db, state="MD")
    _days(db, w, 25, date(2026, 1, 10))
    records.set_payer(db, w.patient_id, payer="acme.mcd", effective_from=date(2026, 1, 1), member_id="M-1")
    records.record_prior_auth(
        db,
        w.patient_id,
        payer="acme.mcd",
        valid_from=date(2026, 1, 1),
        valid_to=date(2026, 2, 14),
        reference="PA-77",
    )
    promoted_flag(db, w, dos=date(2026, 2, 3), minutes=65, interactive=True)
    promoted_flag(db, w, dos=date(2026, 1, 20), minutes=40, interactive=True)


def _gated_patients(db: Conn) -> None:
    """A new patient (G1), a patient without consent (G2), one billed elsewhere (G7)."""
    w = make_world(db, established=None)
    _days(db, w, 16, date(2026, 1, 5))
    w2 = make_world(db, consent_at=None)
    _days(db, w2, 17, date(2026, 2, 1))
    w3 = make_world(db)
    _days(db, w3, 16, date(2026, 1, 5))
    records.record_claim_history(
        db,
        w3.patient_id,
        service_from=date(2026, 1, 20),
        service_to=date(2026, 1, 20),
        program="RPM",
        cpt="99454",
        billing_npi="1999999999",
    )


def _west_patient(db: Conn) -> None:
    """Los Angeles zone, glucose meter, a device swap and a second enrolment in the same episode."""
    w = make_world(db, state="CA", tz="America/Los_Angeles")
    for i in range(16):
        add_reading(
            db,
            w.patient_id,
            "gl-w",
            _at(date(2026, 1, 5) + timedelta(days=i), 23, LA),
            kind="glucose",
            glucose=104.0 + i,
        )
    _days(db, w, 16, date(2026, 2, 4), device="bp-w2")
    row = db.execute(
        "SELECT episode_id FROM enrolments WHERE enrolment_id = %s", (w.enrolment_id,)
    ).fetchone()
    assert row is not None
    people.enrol(
        db,
        w.patient_id,
        ordering_user_id=w.clinician,
        icd10_codes=["E11.9"],
        start_date=date(2026, 2, 4),
        established_visit_date=date(2025, 11, 1),
        education_documented_on=date(2026, 2, 4),
        episode_id=row[0],
    )
    flag = drive.open_flag(db, w.patient_id, severity="critical")
    review.log_time(db, flag, w.nurse, 11, logged_at=_at(date(2026, 2, 9), 10, LA))


def seed(state: Path) -> None:
    state.mkdir(parents=True, exist_ok=True)
    pg = EmbeddedPostgres.create(state)
    pg.start()
    (state / "cluster.json").write_text(json.dumps({"url": pg.url, "data_dir": str(pg.data_dir)}))
    migrate(pg.urls().owner)
    with psycopg.connect(pg.url, autocommit=True) as db:
        for step in (_kinds_patient, _staff_patient, _payer_patient, _gated_patients, _west_patient):
            step(db)
    print(f"seeded {pg.url.rsplit('@', 1)[1]}")


def _plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        items = [_plain(v) for v in obj]
        return sorted(items, key=repr) if isinstance(obj, set | frozenset) else items
    return obj


def snapshot(db: Conn) -> dict[str, Any]:
    out: dict[str, Any] = {}
    generated = datetime(2026, 4, 2, 12, tzinfo=UTC)
    for label, (year, month, as_of) in {
        "2026-01": (2026, 1, None),
        "2026-02": (2026, 2, None),
        "2026-03": (2026, 3, None),
        "2026-02-as-of-15": (2026, 2, date(2026, 2, 15)),
    }.items():
        results = compute.compute_month(db, year, month, as_of=as_of)
        out[label] = {
            "months": _plain(results),
            "csv": export.export_csv(results),
            "decisions_csv": export.export_decisions_csv(results),
            "report": _plain(export.month_report(results)),
            "fhir": export.export_fhir(db, results, generated_at=generated),
        }
    ids = [int(r[0]) for r in db.execute("SELECT patient_id FROM patients ORDER BY patient_id")]
    out["facts"] = {str(pid): _plain(load_patient_facts(db, pid, date(2026, 3, 31))) for pid in ids}
    return out


def dump(state: Path, target: Path) -> None:
    url = json.loads((state / "cluster.json").read_text())["url"]
    with psycopg.connect(url, autocommit=True) as db:
        text = json.dumps(snapshot(db), sort_keys=True, default=str, indent=1)
    target.write_text(text)
    print(f"{hashlib.sha256(text.encode()).hexdigest()}  {target} ({len(text)} bytes)")


def stop(state: Path) -> None:
    """Fast shutdown (SIGINT to the postmaster; pg_ctl refuses to run as root)."""
    c = json.loads((state / "cluster.json").read_text())
    pid = int((Path(c["data_dir"]) / "postmaster.pid").read_text().split()[0])
    os.kill(pid, signal.SIGINT)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("command", choices=("seed", "dump", "stop"))
    p.add_argument("state", type=Path)
    p.add_argument("target", type=Path, nargs="?", default=Path("billing-identity.json"))
    a = p.parse_args(argv)
    {"seed": lambda: seed(a.state), "dump": lambda: dump(a.state, a.target), "stop": lambda: stop(a.state)}[
        a.command
    ]()
    return 0


if __name__ == "__main__":
    sys.exit(main())
