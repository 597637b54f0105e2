"""Screenshots of the dashboard for docs/dashboard.md: queue, patient page, review form, billing worklist.

Starts a throwaway PostgreSQL, migrates it, seeds a small clinic through triage's own functions
(people, enrolment, consent, devices, 30 days of varied readings, open flags, logged time, a
reviewed and promoted flag), serves the app with uvicorn and takes full-page PNGs in headless
Chromium at desktop (1440 px) and phone (390 px) width into docs/img/.

    .venv/bin/python bench/screenshots.py [--out docs/img]
"""

from __future__ import annotations

import argparse
import math
import random
import secrets
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pyotp
from playwright.sync_api import Browser, Page, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.dashboard_bench import served
from dashboards.passwords import hash_password
from ingest.migrate import migrate
from simulators.embedded_postgres import EmbeddedPostgres
from triage.clinical import people
from triage.clinical.promotion import promote
from triage.clinical.review import log_time, record_communication, record_review

PASSWORD = "screenshots password 1"
CHROMIUM = "/usr/bin/chromium"
WIDTHS = {"desktop": 1440, "phone": 390}
# (name, systolic base, daily drift, glucose base, days with readings out of 30, open flag)
PEOPLE = (
    ("Ada Stable", 128, 0.0, 118, 30, None),
    ("Ben Rising", 132, 1.2, 150, 28, ("bp_stage2_sustained", "high", 0)),
    ("Cleo Crisis", 150, 0.6, 140, 26, ("bp_crisis", "critical", 0)),
    ("Dev Hypo", 124, 0.0, 88, 24, ("glucose_hypo_l2", "critical", 1)),
    ("Eve Sparse", 138, 0.2, 160, 9, ("adherence_period", "moderate", 0)),
    ("Finn Baseline", 142, 0.1, 130, 20, ("baseline_deviation", "moderate", 0)),
)


def _reading(
    conn: psycopg.Connection[Any], pid: int, device: str, kind: str, at: datetime, values: dict[str, float]
) -> int:
    cols = ", ".join(values)
    marks = ", ".join(["%s"] * len(values))
    row = conn.execute(
        "INSERT INTO readings (message_id, gateway_id, device_id, patient_id, kind, measured_at, received_at,"
        f" raw, {cols}) VALUES (%s, 'gw-demo', %s, %s, %s, %s, %s, '\\x00', {marks}) RETURNING reading_id",
        (secrets.token_hex(16), device, pid, kind, at, at, *values.values()),
    ).fetchone()
    assert row is not None
    return int(row[0])


def _patient(
    conn: psycopg.Connection[Any], users: dict[str, int], i: int, spec: tuple[Any, ...], now: datetime
) -> tuple[int, int | None]:
    name, sbp, drift, glucose, days_with, flag = spec
    rnd = random.Random(i)
    pid = people.create_patient(conn, mrn=f"MRN-{1000 + i}", display_name=name, state="NY")
    start = now - timedelta(days=31)
    people.record_consent(
        conn, pid, consented_at=start, method="verbal", recorded_by=users["admin"], version="v1"
    )
    people.enrol(
        conn,
        pid,
        ordering_user_id=users["clinician"],
        icd10_codes=["I10", "E11.9"],
        start_date=start.date(),
        established_visit_date=date(2025, 6, 1),
        education_documented_on=start.date(),
    )
    bp, glu = f"bp-{i}", f"glu-{i}"
    people.assign_device(conn, bp, pid, at=start, assigned_by="screenshots", kind="blood_pressure")
    people.assign_device(conn, glu, pid, at=start, assigned_by="screenshots", kind="glucose")
    days = sorted(rnd.sample(range(30), days_with))
    last = 0
    for d in days:
        day = now - timedelta(days=30 - d)
        for hour in (7, 19):
            s = (
                sbp
                + drift * d
                + rnd.gauss(0, 6)
                + (40 if flag and flag[0] == "bp_crisis" and d == days[-1] else 0)
            )
            at = day.replace(hour=hour, minute=rnd.randint(0, 50))
            last = _reading(
                conn,
                pid,
                bp,
                "blood_pressure",
                at,
                {
                    "systolic_mmhg": round(s),
                    "diastolic_mmhg": round(s * 0.62 + rnd.gauss(0, 4)),
                    "pulse_bpm": round(70 + rnd.gauss(0, 6)),
                },
            )
        for hour in (8, 13, 20):
            g = glucose + 35 * math.sin(hour / 3) + rnd.gauss(0, 18)
            if flag and flag[0] == "glucose_hypo_l2" and d == days[-1] and hour == 8:
                g = 48
            at = day.replace(hour=hour, minute=rnd.randint(0, 50))
            reading = _reading(conn, pid, glu, "glucose", at, {"glucose_mg_dl": round(max(g, 40))})
            if flag and flag[2] == 1:
                last = reading if g == 48 else last
    if flag is None:
        return pid, None
    row = conn.execute(
        "INSERT INTO flags (patient_id, subject_key, rule_id, episode_key, severity, reason, reading_ids,"
        " last_reading_at, opened_at) VALUES (%s, %s, %s, %s, %s, %s, %s, now() - interval '3 hours',"
        " now() - interval '2 hours') RETURNING flag_id",
        (pid, f"patient:{pid}", flag[0], secrets.token_hex(4), flag[1], f"{flag[0]}: see readings", [last]),
    ).fetchone()
    assert row is not None
    return pid, int(row[0])


def seed(url: str) -> dict[str, Any]:
    """A small clinic; returns the user names and the ids the screenshots open."""
    now = datetime.now(UTC).replace(microsecond=0)
    with psycopg.connect(url, autocommit=True) as conn:
        users = {
            role: people.create_user(
                conn,
                username=role,
                display_name=f"{role.title()} Demo",
                role=role,
                password_hash=hash_password(PASSWORD),
                npi="1234567893" if role == "clinician" else None,
                is_physician_or_qhp=role == "clinician",
            )
            for role in ("nurse", "clinician", "billing", "admin")
        }
        people.add_licence(
            conn,
            users["clinician"],
            state="NY",
            license_number="NY-1",
            valid_from=date(2024, 1, 1),
            valid_to=date(2030, 12, 31),
        )
        made = [_patient(conn, users, i, spec, now) for i, spec in enumerate(PEOPLE)]
        # Care-team scoping (issue 14): the nurse and the clinician work this clinic's patients.
        team = conn.execute(
            "INSERT INTO care_teams (name) VALUES ('Demo clinic') RETURNING team_id"
        ).fetchone()
        assert team is not None
        for role in ("nurse", "clinician"):
            conn.execute(
                "INSERT INTO care_team_members (team_id, user_id) VALUES (%s, %s)", (team[0], users[role])
            )
        for pid, _ in made:
            conn.execute(
                "INSERT INTO care_team_patients (team_id, patient_id) VALUES (%s, %s)", (team[0], pid)
            )
        flags = [f for _, f in made if f is not None]
        # Billing: one flag worked, reviewed and promoted (its minutes count); others with time logged.
        worked = flags[0]
        log_time(conn, worked, users["nurse"], 12, note="called, reviewed log")
        record_communication(conn, worked, users["nurse"], at=now - timedelta(hours=1), mode="phone")
        record_review(
            conn,
            worked,
            users["clinician"],
            determination="sustained stage 2 hypertension",
            icd10_codes=["I10"],
            action="amlodipine increased",
            minutes=4,
            interactive=False,
            interactive_mode=None,
            place_of_service="11",
            date_of_service=now.date(),
        )
        promote(conn, worked, users["clinician"])
        log_time(conn, flags[1], users["nurse"], 6, note="left a message")
        # Clinician and billing sign in with a second factor (issue 14): an enrolled authenticator.
        keys = {role: pyotp.random_base32() for role in ("clinician", "billing", "admin")}
        for role, key in keys.items():
            conn.execute(
                "INSERT INTO user_mfa (user_id, totp_secret, confirmed_at) VALUES (%s, %s, now())",
                (users[role], key),
            )
    return {"patient": made[2][0], "review_flag": flags[1], "queue_flag": flags[1], "secrets": keys}


def _sign_in(page: Page, role: str, secret: str) -> None:
    page.goto("/login")
    page.fill("input[name=username]", role)
    page.fill("input[name=password]", PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_url(lambda u: "/login" not in u or "/login/second-factor" in u)
    if "/login/second-factor" in page.url:  # clinician and billing: the seeded authenticator
        page.fill("input[name=code]", pyotp.TOTP(secret).now())
        page.click("#second-factor-form button[type=submit]")
        page.wait_for_url(lambda u: "/login" not in u)


def shoot(browser: Browser, base: str, out: Path, ids: dict[str, Any]) -> list[Path]:
    """One signed-in context per role (a TOTP code is accepted once), both widths in it."""
    shots = {
        "nurse": (("queue", "/queue"), ("patient", f"/patients/{ids['patient']}?days=30")),
        "clinician": (("review", f"/flags/{ids['review_flag']}/review"),),
        "billing": (("billing-worklist", "/billing/worklist"),),
    }
    saved: list[Path] = []
    for role, pages in shots.items():
        ctx = browser.new_context(base_url=base, viewport={"width": WIDTHS["desktop"], "height": 900})
        page = ctx.new_page()
        _sign_in(page, role, ids["secrets"].get(role, ""))
        for width_name, width in WIDTHS.items():
            for name, path in pages:
                # The patient page's readings table runs for pages: its shot is the top (charts,
                # averages, time in range, adherence); the others are whole pages.
                tall = 1900 if width > 500 else 2800
                page.set_viewport_size({"width": width, "height": tall if name == "patient" else 900})
                page.goto(path)
                target = out / f"{name}-{width_name}.png"
                page.screenshot(path=str(target), full_page=name != "patient")
                saved.append(target)
        ctx.close()
    return saved


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "docs" / "img")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    pg = EmbeddedPostgres.create()
    pg.start()
    try:
        migrate(pg.urls().owner)
        ids = seed(pg.url)
        with served(pg.urls().dashboard) as base, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            try:
                for path in shoot(browser, base, args.out, ids):
                    print(path)
            finally:
                browser.close()
    finally:
        pg.destroy()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
