"""The readings table's store, run as the roles that call it: triage (jobs, crisis), the dashboard
(patient page, queue, admin's assignments) and the chaos run's accounting (the superuser)."""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd
import psycopg

from tests.triage import dbseed
from triage import readings_store

Conn = psycopg.Connection[Any]
T0 = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)


def _unassigned(db: Conn, at: datetime) -> int:
    db.execute("INSERT INTO devices (device_id, kind) VALUES ('BP-LOOSE', 'blood_pressure')")
    row = db.execute(
        "INSERT INTO readings (message_id, gateway_id, device_id, patient_id, kind, measured_at, received_at,"
        " systolic_mmhg, diastolic_mmhg, raw) VALUES (%s, 'gw-t', 'BP-LOOSE', NULL, 'blood_pressure', %s, %s,"
        " 120, 80, '\\x00') RETURNING reading_id",
        (secrets.token_hex(16), at, at),
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_triage_questions(db: Conn, as_triage: Conn) -> None:
    pid = dbseed.patient(db, assigned_from=T0 - timedelta(days=30))
    other = dbseed.patient(db, assigned_from=T0 - timedelta(days=30))
    first = dbseed.reading(db, pid, T0 - timedelta(days=3), sbp=185, dbp=100)
    dbseed.reading(db, pid, T0 - timedelta(hours=2), sbp=150, dbp=95, quality="quarantined")
    later = dbseed.reading(db, pid, T0 - timedelta(hours=1), sbp=140, dbp=88)
    dbseed.reading(db, pid, T0 - timedelta(minutes=30), glucose=110)
    dbseed.reading(db, other, T0 - timedelta(days=10), sbp=120, dbp=80)

    assert readings_store.patients_measured_between(as_triage, T0 - timedelta(days=4), T0) == {pid}
    assert readings_store.patients_measured_between(as_triage, T0 - timedelta(days=11), T0) == {pid, other}
    assert readings_store.patients_measured_between(as_triage, T0, T0 + timedelta(days=1)) == set()

    # valid BP only, newest first, strictly after the crisis reading
    assert readings_store.valid_bp_after(as_triage, pid, T0 - timedelta(days=3)) == [
        (T0 - timedelta(hours=1), 140.0, 88.0)
    ]
    assert readings_store.valid_bp_after(as_triage, pid, T0 - timedelta(days=4), limit=1) == [
        (T0 - timedelta(hours=1), 140.0, 88.0)
    ]

    frame = readings_store.readings_for(as_triage, {pid}, T0 - timedelta(days=2))
    assert set(frame["reading_id"]) >= {later} and first not in set(frame["reading_id"])
    starts = readings_store.first_readings(as_triage, [pid, other, other + 1000])
    assert sorted(starts.index) == sorted([pid, other])
    assert pd.Timestamp(starts[pid]) == T0 - timedelta(days=3)
    assert pd.Timestamp(starts[other]) == T0 - timedelta(days=10)

    since = T0 - timedelta(days=1)
    fresh = [readings_store.new_readings(as_triage, since, shard=s, shards=2) for s in (0, 1)]
    assert sum(len(f) for f in fresh) == 5
    assert all(int(p) % 2 == s for s, f in enumerate(fresh) for p in f["patient_id"])


def test_detach_from_patient(db: Conn, as_dashboard: Conn) -> None:
    """Run as the dashboard's role: the admin ends assignments (triage's role may not update readings)."""
    pid = dbseed.patient(db, assigned_from=T0 - timedelta(days=30))
    before = dbseed.reading(db, pid, T0 - timedelta(hours=2), sbp=120, dbp=80)
    at = dbseed.reading(db, pid, T0, sbp=121, dbp=81)
    after = dbseed.reading(db, pid, T0 + timedelta(hours=1), sbp=122, dbp=82)

    assert sorted(readings_store.detach_from_patient(as_dashboard, f"BP-{pid}", pid, T0)) == [at, after]
    held = {int(r[0]) for r in db.execute("SELECT reading_id FROM readings WHERE patient_id = %s", (pid,))}
    assert held == {before}
    assert readings_store.detach_from_patient(as_dashboard, f"BP-{pid}", pid, T0) == []


def test_dashboard_questions(db: Conn, as_dashboard: Conn) -> None:
    pid = dbseed.patient(db, tz="America/New_York", assigned_from=T0 - timedelta(days=30))
    # 01:00 UTC on the 10th is the 9th in New York
    a = dbseed.reading(db, pid, datetime(2026, 3, 10, 1, 0, tzinfo=UTC), sbp=130, dbp=85)
    b = dbseed.reading(db, pid, datetime(2026, 3, 11, 14, 0, tzinfo=UTC), sbp=150, dbp=95)
    bad = dbseed.reading(db, pid, datetime(2026, 3, 12, 14, 0, tzinfo=UTC), sbp=0, dbp=0,
                         quality="quarantined")
    g = dbseed.reading(db, pid, datetime(2026, 3, 12, 15, 0, tzinfo=UTC), glucose=60)
    loose = _unassigned(db, T0)
    since = T0 - timedelta(days=5)

    assert [r["reading_id"] for r in readings_store.by_ids(as_dashboard, [b, a])] == [a, b]
    assert [r["reading_id"] for r in readings_store.of_patient(as_dashboard, pid, since)] == [g, bad, b, a]
    assert [r["reading_id"] for r in readings_store.of_patient(as_dashboard, pid, since, limit=1)] == [g]
    assert readings_store.valid_days(as_dashboard, pid, "America/New_York", since) == [
        date(2026, 3, 9), date(2026, 3, 11), date(2026, 3, 12)
    ]
    assert [r["reading_id"] for r in readings_store.unassigned(as_dashboard)] == [loose]

    newest = readings_store.newest_readings(as_dashboard, [pid])
    assert {k: r["reading_id"] for k, r in newest[pid].items()} == {"blood_pressure": b, "glucose": g}

    stats = readings_store.period_stats(as_dashboard, pid, since, very_low=54, low=70, high=180,
                                        very_high=250)
    assert stats["blood_pressure"]["n"] == 2 and stats["blood_pressure"]["days"] == 2
    assert float(stats["blood_pressure"]["systolic"]) == 140.0
    assert (stats["glucose"]["low"], stats["glucose"]["in_range"]) == (1, 0)


def test_chaos_accounting_questions(db: Conn) -> None:
    pid = dbseed.patient(db, assigned_from=T0 - timedelta(days=30))
    dbseed.reading(db, pid, T0, sbp=120, dbp=80)
    db.execute("INSERT INTO devices (device_id, kind) VALUES ('OX-1', 'spo2')")
    minute = db.execute(
        "INSERT INTO readings (message_id, gateway_id, device_id, patient_id, kind, measured_at, received_at,"
        " spo2_pct, sample_count, raw) VALUES (%s, 'gw-t', 'OX-1', %s, 'spo2', %s, %s, 97, 60, '\\x00')"
        " RETURNING replace(message_id::text, '-', '')",
        (secrets.token_hex(16), pid, T0, T0),
    ).fetchone()
    assert minute is not None

    kinds = readings_store.stored_accounting_kinds(db)
    assert sorted(k for _, k in kinds) == ["blood_pressure", "spo2/minute"]
    assert (minute[0], "spo2/minute") in kinds
    ids = readings_store.stored_message_ids(db)
    assert ids == {m for m, _ in kinds} and all(len(m) == 32 and "-" not in m for m in ids)
