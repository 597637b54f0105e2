"""The demo seed creates its people through triage's functions and can run twice."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import psycopg
import pytest

from simulators import demo_history, demo_seed
from simulators.demo_seed import DEMO_STATES, DEMO_TOTP_SECRETS, demo_code, seed_demo
from simulators.embedded_postgres import DatabaseUrls

TABLES = ("users", "clinician_licenses", "patients", "enrolments", "consents", "device_assignments",
          "user_mfa", "care_team_members", "care_team_patients")


def _counts(db: psycopg.Connection[Any]) -> dict[str, int]:
    return {t: int(db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in TABLES}  # type: ignore[index]


def test_seed_is_complete_and_idempotent(database_urls: DatabaseUrls, db: psycopg.Connection[Any]) -> None:
    url = database_urls.dashboard  # the demo seeds as the dashboard's role, an admin's grants
    first = seed_demo(url, ["gw-a", "gw-b"], "demo-password", today=date(2026, 11, 23))
    counts = _counts(db)
    again = seed_demo(url, ["gw-a", "gw-b"], "demo-password", today=date(2026, 11, 23))
    assert again == first and _counts(db) == counts
    assert counts == {"users": 4, "clinician_licenses": len(DEMO_STATES), "patients": 2, "enrolments": 2,
                      "consents": 2, "device_assignments": 6, "user_mfa": 3,
                      "care_team_members": 2, "care_team_patients": 2}
    assert [p.devices for p in first] == [("SIM-BP-0001", "SIM-GL-0001"), ("SIM-BP-0002", "SIM-GL-0002")]
    assert [p.vitals for p in first] == [("SIM-WS-0001", "SIM-OX-0001"), ()]  # scale + oximeter on gw 1
    kinds = dict(db.execute("SELECT device_id, kind FROM devices").fetchall())
    assert kinds == {"SIM-BP-0001": "blood_pressure", "SIM-GL-0001": "glucose",
                     "SIM-WS-0001": "weight", "SIM-OX-0001": "spo2",
                     "SIM-BP-0002": "blood_pressure", "SIM-GL-0002": "glucose"}
    mfa = dict(db.execute("SELECT u.username, m.totp_secret FROM user_mfa m JOIN users u USING (user_id)"
                          " WHERE m.confirmed_at IS NOT NULL").fetchall())
    assert mfa == DEMO_TOTP_SECRETS  # clinician, billing and admin: the secrets the banner prints
    assert len(demo_code("admin")) == 6 and demo_code("admin").isdigit()
    icd = db.execute("SELECT DISTINCT order_icd10 FROM enrolments").fetchall()
    assert icd == [(["I10", "E11.9"],)]


@pytest.mark.parametrize(("main", "argv"), [
    (demo_seed.main, ["--password", "demo-password"]),
    (demo_history.main, ["replay"]),
], ids=["demo_seed", "demo_history"])
@pytest.mark.parametrize(("environ", "reason"), [
    ({}, "required: PostgreSQL URL"),
    ({"RPMFLOW_DATABASE_URL": "postgresql://u:hunter2@db:port/x"}, "port"),
], ids=["missing", "malformed"])
def test_database_url_comes_through_the_settings_loader(
    main: Callable[[list[str], dict[str, str]], int], argv: list[str], environ: dict[str, str], reason: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The demo's steps: a missing or malformed URL is the loader's one line and exit 2, as for
    every service."""
    assert main(argv, environ) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "hunter2" not in err[0], err
    module = main.__module__
    prefix = f"python -m {module}: configuration error: RPMFLOW_DATABASE_URL (flag --database-url): "
    assert err[0].startswith(prefix) and reason in err[0], err
