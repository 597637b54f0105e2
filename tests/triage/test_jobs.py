"""The triage passes end to end on the real database: readings in → flags out."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from simulators.embedded_postgres import DatabaseUrls
from tests.triage.dbseed import patient, reading
from tests.waiting import wait_for
from triage import cli, overrides
from triage.errors import InvalidSetting, UnsafeOverride
from triage.jobs import IncrementalJob, daily_pass, silence_pass
from triage.service import TriageService
from triage.settings import Settings

Conn = psycopg.Connection[Any]


def _settings(url: str, **kw: Any) -> Settings:
    return Settings.from_env({"RPMFLOW_DATABASE_URL": url, "RPMFLOW_TRIAGE_SHARDS": "2", **kw})


def _flags(db: Conn) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT rule_id, severity, state, evidence->>'confirmation', disposition, reading_ids FROM flags"
        " ORDER BY flag_id"
    ).fetchall()


def test_crisis_flag_then_auto_clear_by_remeasure(db: Conn, database_url: str) -> None:
    now = datetime.now(UTC)
    pid = patient(db, assigned_from=now - timedelta(days=40))
    first = reading(db, pid, now - timedelta(minutes=4), sbp=186, dbp=100)
    job = IncrementalJob(_settings(database_url))
    rep = job.run(db)
    assert rep.opened == 1
    assert _flags(db) == [("bp_crisis", "critical", "open", "pending", None, [first])]
    second = reading(db, pid, now - timedelta(minutes=1), sbp=150, dbp=90)
    rep = job.run(db)
    assert rep.auto_cleared == 1
    assert _flags(db) == [("bp_crisis", "critical", "closed", "cleared", "auto_cleared", [first, second])]
    assert job.run(db).opened == 0  # nothing new


def test_confirmed_crisis_stays_open_and_reruns_change_nothing(db: Conn, database_url: str) -> None:
    now = datetime.now(UTC)
    pid = patient(db, assigned_from=now - timedelta(days=40))
    a = reading(db, pid, now - timedelta(minutes=4), sbp=186, dbp=100)
    b = reading(db, pid, now - timedelta(minutes=1), sbp=188, dbp=101)
    IncrementalJob(_settings(database_url)).run(db)
    # A second process with no memory re-reads the overlap: idempotent.
    rep = IncrementalJob(_settings(database_url)).run(db)
    assert rep.opened == 0 and rep.attached == 0
    assert _flags(db) == [("bp_crisis", "critical", "open", "confirmed", None, [a, b])]
    marks = db.execute("SELECT job, watermark FROM job_watermarks ORDER BY job").fetchall()
    assert [m[0] for m in marks] == [f"triage.incremental:{pid % 2}/2"]


def test_late_commit_inside_the_overlap_is_seen(db: Conn, database_url: str) -> None:
    now = datetime.now(UTC)
    pid = patient(db, assigned_from=now - timedelta(days=40))
    reading(db, pid, now - timedelta(minutes=30), glucose=120)
    job = IncrementalJob(_settings(database_url))
    job.run(db)
    late = reading(db, pid, now - timedelta(minutes=2), glucose=45, ingested_at=now - timedelta(seconds=20))
    job.run(db)
    flags = _flags(db)
    assert [(f[0], f[1], f[5]) for f in flags] == [("glucose_hypo_l2", "critical", [late])]


def test_quarantined_and_unassigned_readings_do_not_flag(db: Conn, database_url: str) -> None:
    now = datetime.now(UTC)
    pid = patient(db, assigned_from=now - timedelta(days=40))
    reading(db, pid, now - timedelta(minutes=2), glucose=30, quality="quarantined")
    db.execute(
        "INSERT INTO readings (message_id, gateway_id, device_id, patient_id, kind, measured_at, received_at,"
        " glucose_mg_dl, raw)"
        " VALUES (md5('x')::uuid, 'gw', 'GL-x', NULL, 'glucose', now(), now(), 30, '')",
    )
    rep = IncrementalJob(_settings(database_url)).run(db)
    assert rep.candidates == 0 and _flags(db) == []


def test_two_processes_split_shards_and_never_double_flag(db: Conn, database_url: str) -> None:
    now = datetime.now(UTC)
    pids = [patient(db, assigned_from=now - timedelta(days=40)) for _ in range(6)]
    for p in pids:
        reading(db, p, now - timedelta(minutes=1), glucose=50)
    errors: list[BaseException] = []
    barrier = threading.Barrier(3)

    def worker() -> None:
        try:
            with psycopg.connect(database_url, autocommit=True) as conn:
                barrier.wait(timeout=10)
                IncrementalJob(_settings(database_url, RPMFLOW_TRIAGE_SHARDS="4")).run(conn)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    IncrementalJob(_settings(database_url, RPMFLOW_TRIAGE_SHARDS="4")).run(
        db
    )  # whatever a busy shard skipped
    rows = db.execute("SELECT patient_id, count(*) FROM flags GROUP BY patient_id ORDER BY 1").fetchall()
    assert rows == [(p, 1) for p in sorted(pids)]


def test_override_is_applied_and_suppression_logged(db: Conn, database_url: str) -> None:
    now = datetime.now(UTC)
    pid = patient(db, assigned_from=now - timedelta(days=40))
    overrides.set_override(
        db,
        patient_id=pid,
        key="glucose_hypo_l1",
        value=3.6,
        unit="mmol/L",
        set_by="dr.a",
        role="clinician",
        reason="tight control not wanted: elderly",
    )  # 64.9 mg/dL
    reading(db, pid, now - timedelta(minutes=1), glucose=67)
    IncrementalJob(_settings(database_url)).run(db)
    assert _flags(db) == []
    sup = db.execute("SELECT rule_id, source, reason FROM triage_suppressions").fetchall()
    assert len(sup) == 1 and sup[0][:2] == ("glucose_hypo_l1", "override") and "dr.a" in sup[0][2]
    IncrementalJob(_settings(database_url)).run(db)
    assert db.execute("SELECT count(*) FROM triage_suppressions").fetchone() == (1,)


@pytest.mark.parametrize(
    ("key", "value", "unit", "role"),
    [
        ("glucose_hypo_l2", 50, "mg/dL", "clinician"),  # below the floor
        ("bp_crisis_systolic", 190, "mm[Hg]", "clinician"),  # above the floor
        ("glucose_hypo_l1", 80, "mmHg", "clinician"),  # wrong unit
        ("glucose_hypo_l1", 80, "mg/dL", "nurse"),  # not a clinician
        ("no_such_threshold", 1, "mg/dL", "clinician"),
    ],
)
def test_unsafe_overrides_are_refused(db: Conn, key: str, value: float, unit: str, role: str) -> None:
    pid = patient(db, assigned_from=datetime.now(UTC))
    with pytest.raises(UnsafeOverride):
        overrides.set_override(
            db, patient_id=pid, key=key, value=value, unit=unit, set_by="x", role=role, reason="test"
        )
    with pytest.raises(UnsafeOverride):
        overrides.snooze(
            db,
            patient_id=pid,
            rule_id="glucose_hypo_l2",
            until=datetime.now(UTC),
            reason="r",
            set_by="x",
            role="clinician",
        )


def test_silence_pass_keeps_the_three_silences_apart(db: Conn) -> None:
    now = datetime.now(UTC)
    quiet = patient(db, assigned_from=now - timedelta(days=10), gateway_id="gw-up")
    behind = patient(db, assigned_from=now - timedelta(days=10), gateway_id="gw-down")
    db.execute(
        "INSERT INTO gateway_status (gateway_id, online, status, updated_at) VALUES"
        " ('gw-up', true, %s, now()), ('gw-down', false, '{}', now() - interval '1 hour')",
        (Jsonb({"devices": {f"BP-{quiet}": {"last_contact": now.isoformat()}}}),),
    )
    rep = silence_pass(db, now)
    rows = db.execute("SELECT rule_id, subject_key FROM flags ORDER BY rule_id, subject_key").fetchall()
    assert rows == [  # the quiet patient's unseen meter is part of its silence: one outreach flag
        ("gateway_offline", "gateway:gw-down"),
        ("patient_not_measuring", f"patient:{quiet}"),
    ]
    assert rep.suppressed == 2  # both of the patient behind the offline gateway: IT's silence
    assert silence_pass(db, now).opened == 0
    sup = db.execute("SELECT DISTINCT patient_id, source FROM triage_suppressions").fetchall()
    assert sup == [(behind, "silence_owner")]


def test_daily_pass_adherence(db: Conn, database_url: str) -> None:
    now = datetime.now(UTC)
    pid = patient(db, assigned_from=now - timedelta(days=22))
    for d in (21, 19, 17, 15, 13):
        reading(db, pid, now - timedelta(days=d), sbp=120, dbp=80)
    rep = daily_pass(db, _settings(database_url), now)
    assert rep.opened == 1
    row = db.execute("SELECT rule_id, severity, episode_key FROM flags").fetchone()
    assert row is not None and row[0] == "adherence_period" and row[2].startswith("period:")


def test_service_flags_within_ten_seconds(db: Conn, database_url: str) -> None:
    service = TriageService(_settings(database_url, RPMFLOW_TRIAGE_INTERVAL_S="0.5"))
    service.start()
    try:
        now = datetime.now(UTC)
        pid = patient(db, assigned_from=now - timedelta(days=40))
        reading(db, pid, now, glucose=48)

        def flagged() -> bool:
            row = db.execute("SELECT count(*) FROM flags WHERE rule_id = 'glucose_hypo_l2'").fetchone()
            return bool(row and row[0] == 1)

        wait_for(flagged, 10, "a level-2 hypo flag from the running service")
    finally:
        service.stop()


def test_settings_from_env() -> None:
    s = Settings.from_env(
        {
            "RPMFLOW_DATABASE_URL": "postgresql://x",
            "RPMFLOW_TRIAGE_INTERVAL_S": "1.5",
            "RPMFLOW_TRIAGE_SHARDS": "8",
        }
    )
    assert (s.interval_s, s.shards, s.overlap_s) == (1.5, 8, 30.0)
    assert s.with_overrides(shards=2, interval_s=None).shards == 2
    with pytest.raises(InvalidSetting) as exc:
        Settings.from_env({})
    assert exc.value.env == "RPMFLOW_DATABASE_URL"
    with pytest.raises(InvalidSetting, match="RPMFLOW_TRIAGE_SHARDS"):
        Settings.from_env({"RPMFLOW_DATABASE_URL": "postgresql://x", "RPMFLOW_TRIAGE_SHARDS": "many"})


def test_cli_help_and_once(db: Conn, database_urls: DatabaseUrls, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["--help"], environ={})
    assert exc.value.code == 0
    assert "once" in capsys.readouterr().out
    now = datetime.now(UTC)
    pid = patient(db, assigned_from=now - timedelta(days=40))
    reading(db, pid, now, glucose=45)
    assert cli.main(["once", "--all"], environ={"RPMFLOW_DATABASE_URL": database_urls.triage}) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["opened"] >= 1 and report["flag_ids"]
    assert cli.main(["once"], environ={}) == 2
