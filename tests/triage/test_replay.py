"""As-of and replay triage on the real database: history judged as it happened (issue 16)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from tests.triage.dbseed import patient, reading
from triage import cli, flags_store
from triage.replay import replay, steps
from triage.settings import Settings

Conn = psycopg.Connection[Any]
DAY = timedelta(days=1)


def _env(url: str) -> dict[str, str]:
    return {"RPMFLOW_DATABASE_URL": url}


def test_once_as_of_flags_a_late_upload_when_it_happened(
    db: Conn, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    pid = patient(db, assigned_from=now - timedelta(days=40))
    at = now - 7 * DAY
    low = reading(db, pid, at, glucose=45)  # measured a week ago, uploaded now
    reading(db, pid, now - 2 * DAY, glucose=44)  # after the as-of instant: not yet known then
    as_of = (at + timedelta(minutes=5)).isoformat().replace("+00:00", "Z")
    assert cli.main(["once", "--as-of", as_of], environ=_env(database_url)) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["opened"] == 1
    rows = db.execute(
        "SELECT rule_id, reading_ids, opened_at FROM flags WHERE patient_id = %s", (pid,)
    ).fetchall()
    assert rows == [("glucose_hypo_l2", [low], at + timedelta(minutes=5))]
    assert db.execute("SELECT count(*) FROM job_watermarks").fetchone() == (0,)
    # Again: nothing new.
    assert cli.main(["once", "--as-of", as_of], environ=_env(database_url)) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["opened"] == 0


def test_operator_mistakes_in_times_are_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    env = {"RPMFLOW_DATABASE_URL": "postgresql://u:p@127.0.0.1:1/db"}
    future = (datetime.now(UTC) + DAY).isoformat()
    cases = [
        ["once", "--as-of", "yesterday"],
        ["once", "--as-of", "2026-03-04T08:00"],
        ["once", "--as-of", future],
        ["replay", "--from", "2026-03-04T08:00Z", "--to", "2026-03-01T08:00Z"],
        ["replay", "--from", "2026-03-01T08:00Z", "--to", "2026-03-04T08:00Z", "--step", "0h"],
    ]
    for argv in cases:
        try:
            code = cli.main(argv, environ=env)
        except SystemExit as exc:  # argparse's own usage error
            code = int(str(exc.code))
        assert code == 2, argv
        err = capsys.readouterr().err
        assert "Traceback" not in err and err.strip(), argv


def test_steps_cover_the_range_once() -> None:
    a = datetime(2026, 3, 1, tzinfo=UTC)
    assert list(steps(a, a + timedelta(hours=5), timedelta(hours=2))) == [
        a + timedelta(hours=2),
        a + timedelta(hours=4),
        a + timedelta(hours=5),
    ]


def test_stable_high_patient_closed_daily_is_not_reflagged_daily(db: Conn, database_url: str) -> None:
    """A steady 145/92 under treatment, the nurse closing every flag: at most one flag per review."""
    settings = Settings.from_env(_env(database_url))
    now = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0)
    start = now - 60 * DAY
    pid = patient(db, assigned_from=start - DAY)
    for d in range(60):
        reading(db, pid, start + d * DAY + timedelta(hours=1), sbp=145, dbp=92)
    opened = 0
    for d in range(20, 60):  # the first 20 days are the treated baseline already on record
        t0 = start + d * DAY
        replay(db, settings, t0, t0 + DAY, DAY)
        for (fid,) in db.execute(
            "SELECT flag_id FROM flags WHERE patient_id = %s AND rule_id = 'bp_stage2_sustained'"
            " AND state = 'open'",
            (pid,),
        ).fetchall():
            flags_store.apply_event(db, fid, "close", "nurse1", "nurse", disposition="no_action_needed")
            opened += 1
    # 40 days closed daily: one flag per 30-day review interval (two when the range straddles one).
    assert 1 <= opened <= 2, opened
    keys = db.execute(
        "SELECT DISTINCT episode_key FROM flags WHERE patient_id = %s AND rule_id = 'bp_stage2_sustained'",
        (pid,),
    ).fetchall()
    assert all(str(k[0]).startswith("review:") for k in keys)
