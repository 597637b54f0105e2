"""The flags family's page reads (flag_views_store) and the clinical workflows' flag rows (flag_rows),
run as the dashboard role that calls them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from tests.triage.rpm_seed import make_world, new_flag
from triage import flag_views_store, flags_store
from triage.clinical import flag_rows
from triage.errors import FlagNotFound

Conn = psycopg.Connection[Any]


def _missing(db: Conn) -> int:
    row = db.execute("SELECT coalesce(max(flag_id), 0) + 1000 FROM flags").fetchone()
    assert row is not None
    return int(row[0])


def test_a_flag_and_its_patient(db: Conn, as_dashboard: Conn) -> None:
    w = make_world(db, tz="America/Chicago")
    fid = new_flag(db, w.patient_id)
    db.execute("UPDATE flags SET reading_ids = '{7,9}' WHERE flag_id = %s", (fid,))
    missing = _missing(db)

    row = flag_views_store.flag(as_dashboard, fid)
    assert row is not None and row["patient_id"] == w.patient_id and row["patient_tz"] == "America/Chicago"
    assert flag_views_store.flag(as_dashboard, missing) is None
    assert flag_views_store.patient_of(as_dashboard, fid) == w.patient_id
    assert flag_views_store.patient_of(as_dashboard, missing) is None
    assert flag_views_store.flagged_reading_ids(as_dashboard, w.patient_id) == {7, 9}
    assert [f["flag_id"] for f in flag_views_store.patient_flags(as_dashboard, w.patient_id)] == [fid]
    assert flag_views_store.max_flag_id(as_dashboard) >= fid
    assert flag_views_store.flag_count(as_dashboard) >= 1


def test_new_flags_events_rules_and_older_active(db: Conn, as_dashboard: Conn) -> None:
    w = make_world(db)
    before = flag_views_store.max_flag_id(as_dashboard)
    first, second = new_flag(db, w.patient_id), new_flag(db, w.patient_id)
    flags_store.apply_event(db, first, "acknowledge", "nurse", "nurse", note="called")

    assert [f["flag_id"] for f in flag_views_store.new_flags(as_dashboard, before)] == [first, second]
    assert [f["flag_id"] for f in flag_views_store.new_flags(as_dashboard, first)] == [second]
    events = flag_views_store.flag_events(as_dashboard, [first, second])
    assert [(e["flag_id"], e["event"], e["to_state"]) for e in events] == [
        (first, "acknowledge", "acknowledged")]
    assert "bp_high" in flag_views_store.rule_ids(as_dashboard)
    now = datetime.now(UTC)
    def older(than: datetime) -> set[int]:
        return {f["flag_id"] for f in flag_views_store.older_active(as_dashboard, than)}

    assert {first, second} <= older(now + timedelta(days=1))
    assert not {first, second} & older(now - timedelta(days=1))


def test_head_counts_active_flags_and_takes_the_newest_id() -> None:
    rows: list[dict[str, Any]] = [{"severity": "high", "n": 3}, {"severity": None, "n": 41},
                                  {"severity": "info", "n": 1}]
    assert flag_views_store.head(rows) == ({"critical": 0, "high": 3, "moderate": 0, "info": 1}, 41)
    sql, params = flag_views_store.queue_read(("closed",), None, None, None, 5, None)
    assert "f.state = ANY(%(states)s)" in sql and params["states"] == ["closed"]


def test_flag_rows_lock_read_and_note(db: Conn, as_dashboard: Conn) -> None:
    w = make_world(db, tz="America/Denver")
    fid = new_flag(db, w.patient_id)
    missing = _missing(db)

    assert flag_rows.patient_and_timezone(as_dashboard, fid) == (w.patient_id, "America/Denver")
    with pytest.raises(FlagNotFound):
        flag_rows.patient_and_timezone(as_dashboard, missing)
    with as_dashboard.transaction():
        assert flag_rows.lock_for_promotion(as_dashboard, fid) == ("open", w.patient_id, w.mrn, w.state,
                                                                    "America/Denver")
        assert flag_rows.lock_for_promotion(as_dashboard, missing) is None
        rule, pid, opened, now = flag_rows.lock_for_symptom_check(as_dashboard, fid)
        assert (rule, pid) == ("bp_high", w.patient_id) and opened <= now
        whole = flag_rows.lock_whole(as_dashboard, fid)
        assert whole["flag_id"] == fid and whole["db_now"] == now  # one transaction, one now()
        flag_rows.append_crisis_outcome(as_dashboard, fid, {"outcome": "a"})
        flag_rows.append_crisis_outcome(as_dashboard, fid, {"outcome": "b"})
        flag_rows.set_symptom_check(as_dashboard, fid, {"outcome": "x"})
        flag_rows.set_symptom_check(as_dashboard, fid, {"outcome": "y"})
    for lock in (flag_rows.lock_for_symptom_check, flag_rows.lock_whole):
        with pytest.raises(FlagNotFound), as_dashboard.transaction():
            lock(as_dashboard, missing)
    row = db.execute("SELECT evidence FROM flags WHERE flag_id = %s", (fid,)).fetchone()
    assert row is not None
    assert row[0]["crisis_outcomes"] == [{"outcome": "a"}, {"outcome": "b"}]
    assert row[0]["symptom_check"] == {"outcome": "y"}
