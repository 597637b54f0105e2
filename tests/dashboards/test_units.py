"""Pure pieces: passwords, settings, charts, adherence, CLI."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
import pytest

from dashboards import cli
from dashboards.adherence import adherence, current_period
from dashboards.charts import Point, Series, Threshold, line_chart, nice_ticks
from dashboards.passwords import hash_password, needs_rehash, scrypt_hash, verify_password
from dashboards.settings import Settings, SettingsError
from simulators.embedded_postgres import DatabaseUrls


def test_password_hash_round_trip_salted_and_parameterised() -> None:
    a, b = scrypt_hash("s3cret-password", n=2**10), scrypt_hash("s3cret-password", n=2**10)
    assert a != b and a.startswith("scrypt$n=1024,r=8,p=1$")
    assert verify_password("s3cret-password", a) and not verify_password("s3cret-passworD", a)
    assert needs_rehash(a) and not needs_rehash(hash_password("x"))
    for broken in ("", "!", "scrypt$n=1$AA$AA", "md5$x$y$z", a.replace("$", "", 1), "$argon2id$v=19$x"):
        assert not verify_password("s3cret-password", broken)
    new = hash_password("s3cret-password")  # argon2id at OWASP's minimum (m=19 MiB, t=2, p=1)
    assert new.startswith("$argon2id$v=19$m=19456,t=2,p=1$") and verify_password("s3cret-password", new)
    assert not needs_rehash(new) and not verify_password("s3cret-passworD", new)


def test_settings_from_env_defaults_and_errors() -> None:
    s = Settings.from_env({"RPMFLOW_DATABASE_URL": "postgresql://h/db"})
    assert (s.host, s.port, s.session_idle_minutes, s.secure_cookies) == ("127.0.0.1", 8000, 15.0, True)
    s = Settings.from_env({"RPMFLOW_DATABASE_URL": "postgresql://h/db", "RPMFLOW_DASHBOARD_PORT": "9000",
                           "RPMFLOW_DASHBOARD_SECURE_COOKIES": "false",
                           "RPMFLOW_DASHBOARD_SESSION_IDLE_MINUTES": "5"})
    assert (s.port, s.secure_cookies, s.session_idle_minutes) == (9000, False, 5.0)
    with pytest.raises(SettingsError, match="RPMFLOW_DATABASE_URL"):
        Settings.from_env({})
    with pytest.raises(SettingsError, match="RPMFLOW_DASHBOARD_SECURE_COOKIES"):
        Settings.from_env({"RPMFLOW_DATABASE_URL": "postgresql://h/db",
                           "RPMFLOW_DASHBOARD_SECURE_COOKIES": "maybe"})


def test_chart_marks_thresholds_flagged_and_quarantined_and_escapes() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    pts = [Point(t0 + timedelta(days=i), 120 + i, flagged=i == 3) for i in range(5)]
    pts.append(Point(t0 + timedelta(days=2), 290, quality="quarantined"))
    svg = str(line_chart(title="BP <b>", unit="mmHg", series=[Series("sys", "#000", pts)],
                         thresholds=[Threshold(180, "crisis")], start=t0, end=t0 + timedelta(days=7)))
    assert svg.startswith("<svg") and svg.count('class="threshold"') == 1
    assert svg.count('class="flagged"') == 1 and svg.count('class="quarantined"') == 1
    assert "BP &lt;b&gt;" in svg and "<b>" not in svg
    empty = str(line_chart(title="G", unit="mg/dL", series=[Series("g", "#000", [])], thresholds=[],
                           start=t0, end=t0 + timedelta(days=7)))
    assert "no readings in this period" in empty
    assert nice_ticks(52, 188) == [50, 100, 150, 200]
    for lo, hi in ((0.3, 0.9), (54, 250), (-3, 7), (100, 100.5)):
        ticks = nice_ticks(lo, hi)
        assert ticks[0] <= lo and ticks[-1] >= hi and len(ticks) <= 8


def test_adherence_periods_and_forecast() -> None:
    first = date(2026, 1, 1)
    assert current_period(first, date(2026, 1, 31)) == (date(2026, 1, 31), date(2026, 3, 1))
    days = [first + timedelta(days=i) for i in range(0, 20, 2)]  # 10 days with data
    a = adherence(first, date(2026, 1, 20), days)
    assert (a.days_with_readings, a.days_left, a.reached, a.reachable) == (10, 10, False, True)
    late = adherence(first, date(2026, 1, 28), days)
    assert (late.days_left, late.reachable) == (2, False)


def test_cli_help_and_create_user(database_urls: DatabaseUrls, db: psycopg.Connection[Any],
                                  capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["--help"], environ={})
    assert exc.value.code == 0
    assert "create-user" in capsys.readouterr().out
    env = {"RPMFLOW_DATABASE_URL": database_urls.dashboard}
    assert cli.main(["create-user", "--username", "rn1", "--role", "nurse", "--password", "long enough pw"],
                    environ=env) == 0
    row = db.execute("SELECT role, password_hash FROM users WHERE username = 'rn1'").fetchone()
    assert row is not None and row[0] == "nurse" and verify_password("long enough pw", row[1])
    assert cli.main(["create-user", "--username", "rn1", "--role", "nurse", "--password", "long enough pw"],
                    environ=env) == 1  # duplicate: refused with a message, no traceback
    assert cli.main(["create-token", "--username", "rn1"], environ=env) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("rpmf_")
    assert cli.main(["run"], environ={}) == 2  # no database URL: a configuration error naming the key
