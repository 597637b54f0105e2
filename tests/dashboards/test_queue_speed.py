"""The queue at 10,000 open flags (issue 17: p99 under 200 ms): the SQL the page runs can use
migration 0099's indexes, and the row text written once in Python says what the template said.
The latency itself is measured by bench/dashboard_bench.py (docs/dashboard.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row

from dashboards import queries
from dashboards.queue_view import PatientRow, present, reading_text
from tests.dashboards.seed import World, add_flag, add_reading
from triage import lifecycle

Db = psycopg.Connection[tuple[Any, ...]]
NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def _plan(db: Db, sql: str, params: dict[str, Any]) -> str:
    db.execute("SET enable_seqscan = off")  # a test database is tiny: ask whether the index *can* serve
    try:
        return "\n".join(str(r[0]) for r in db.execute("EXPLAIN " + sql, params).fetchall())
    finally:
        db.execute("RESET enable_seqscan")


def test_the_partial_indexes_cover_exactly_the_lifecycle_active_states(db: Db) -> None:
    for name in ("flags_active_rank", "flags_active_severity"):
        row = db.execute("SELECT indexdef FROM pg_indexes WHERE indexname = %s", (name,)).fetchone()
        assert row is not None, name
        predicate = str(row[0]).split(" WHERE ", 1)[1]
        named = {s for s in lifecycle.STATES if f"'{s}'" in predicate}
        assert named == set(lifecycle.ACTIVE_STATES), (name, predicate)


def test_the_active_queue_walks_the_rank_index_and_counts_from_the_severity_index(
    db: Db, world: World
) -> None:
    for severity in ("high", "moderate", "info"):
        add_flag(db, world, severity=severity)
    db.execute("ANALYZE flags")
    params = {"states": list(lifecycle.ACTIVE_STATES), "severity": None, "rule_id": None,
              "assigned_to": None, "limit": 200, "viewer": world.users["nurse"]}
    assert "flags_active_rank" in _plan(db, queries._QUEUE_ACTIVE_SQL, params)
    assert "flags_active_severity" in _plan(db, queries._HEAD_SQL, params)
    assert queries._states_condition(("closed",)) != queries._states_condition(lifecycle.ACTIVE_STATES)


def test_queue_counts_each_severity_and_gives_the_newest_flag_id(db: Db, world: World) -> None:
    def head(viewer: int | None = None) -> tuple[dict[str, int], int]:
        reads = queries.queue_reads(db, viewer=viewer)
        return reads.counts, reads.last_flag_id

    before, _ = head()
    newest = add_flag(db, world, severity="moderate")
    closed = add_flag(db, world, severity="moderate")
    db.execute("UPDATE flags SET state = 'closed' WHERE flag_id = %s", (closed,))
    counts, last = head()
    assert last == closed > newest
    assert counts == {**before, "moderate": before["moderate"] + 1}  # the closed one is not counted
    assert list(counts) == ["critical", "high", "moderate", "info"]
    assert head(world.users["nurse"])[0] == counts  # the world's care team
    assert head(world.users["admin"])[0] == dict.fromkeys(counts, 0)  # in no team


def test_rule_ids_skip_scan_lists_each_rule_once_in_order(db: Db, world: World) -> None:
    for rule in ("weight_gain", "bp_crisis", "weight_gain", "glucose_hypo"):
        add_flag(db, world, rule_id=rule)
    with db.cursor(row_factory=dict_row) as cur:
        expected = [r["rule_id"] for r in cur.execute("SELECT DISTINCT rule_id FROM flags ORDER BY 1")]
    assert queries.rule_ids(db) == expected
    assert {"weight_gain", "bp_crisis", "glucose_hypo"} <= set(expected)


def test_newest_readings_of_the_named_kinds_only(db: Db, world: World) -> None:
    now = datetime.now(UTC)
    add_reading(db, world, now - timedelta(hours=2), systolic=150)
    bp = add_reading(db, world, now - timedelta(hours=1), systolic=131)
    glu = add_reading(db, world, now - timedelta(minutes=30), kind="glucose", glucose=240)
    pid = world.patient_id
    assert {k: r["reading_id"] for k, r in queries.newest_readings(db, [pid])[pid].items()} == {
        "blood_pressure": bp, "glucose": glu}
    only_bp = queries.newest_readings(db, [pid], {pid: {"blood_pressure"}})
    assert {k: r["reading_id"] for k, r in only_bp[pid].items()} == {"blood_pressure": bp}
    assert queries.newest_readings(db, [pid], {pid: set()}) == {}


def _flag(fid: int, state: str, actions: list[str], **reading: Any) -> dict[str, Any]:
    return {"flag_id": fid, "state": state, "severity": "critical", "opened_at": NOW, "actions": actions,
            "reading_id": fid, "reading_at": NOW - timedelta(hours=1), "seconds_since_reading": 3700,
            "assigned_to": None, **reading}


def test_present_writes_what_the_row_macro_wrote() -> None:
    bp = {"kind": "blood_pressure", "systolic_mmhg": 182.0, "diastolic_mmhg": 121.5, "pulse_bpm": 72}
    newer = {"reading_id": 99, "kind": "blood_pressure", "measured_at": NOW - timedelta(minutes=5),
             "systolic_mmhg": 128, "diastolic_mmhg": 80, "pulse_bpm": None}
    row = PatientRow(key="p1", patient_id=1, patient="P1", newest={"blood_pressure": newer},
                     flags=[_flag(1, "open", ["acknowledge", "assign", "review"], **bp),
                            _flag(2, "acknowledged", ["assign"], assigned_to="amy", **bp)])
    present([row], one_click=(("acknowledge", "a"), ("assign", "t")), clinician=False,
            glucose_unit="mg/dL", now=NOW)
    assert row.trigger_text == "182/121.5 mmHg, pulse 72"
    assert (row.newer_text, row.newer_ago) == ("128/80 mmHg", "5 min ago")
    assert (row.waiting, row.who) == ("1 h ago", "amy")
    assert [(f["acts"], f["review"]) for f in row.flags] == [("a t", False), ("t", False)]
    present([row], one_click=(), clinician=True, glucose_unit="mg/dL", now=NOW)
    assert [(f["acts"], f["review"]) for f in row.flags] == [("", True), ("", False)]


def test_reading_text_of_every_kind_and_unit() -> None:
    assert reading_text({"kind": "glucose", "glucose_mg_dl": 54.0}, "mg/dL") == "54 mg/dL"
    assert reading_text({"kind": "glucose", "glucose_mg_dl": 54.0}, "mmol/L") == "3.0 mmol/L"
    assert reading_text({"kind": "weight", "weight_kg": 81.25}, "mg/dL") == "81.2 kg"
    assert reading_text({"kind": "spo2", "spo2_pct": 88, "pulse_bpm": 101}, "mg/dL") == "SpO2 88 %, pulse 101"
    assert reading_text({"kind": None}, "mg/dL") == "–"
    empty = PatientRow(key="s1", patient_id=None, patient="hub", flags=[_flag(3, "open", [], kind=None)])
    present([empty], one_click=(("acknowledge", "a"),), clinician=False, glucose_unit="mg/dL", now=NOW)
    assert (empty.trigger_text, empty.newer_text, empty.who) == ("–", "", "nobody yet")


def test_queue_reads_in_one_round_trip_give_rows_unit_and_rules(db: Db, world: World) -> None:
    second = add_flag(db, world, severity="high", rule_id="glucose_hypo")
    db.execute("UPDATE users SET glucose_unit = 'mmol/L' WHERE user_id = %s", (world.users["nurse"],))
    viewer = world.users["nurse"]
    reads = queries.queue_reads(db, viewer=viewer, unit_of=viewer, rules=True)
    assert [r["flag_id"] for r in reads.rows] == [world.flag_id, second]  # critical, then high
    assert reads.rows[0]["reading_id"] == world.reading_ids[-1] and reads.rows[0]["kind"] == "blood_pressure"
    assert (reads.counts["critical"], reads.counts["high"], reads.last_flag_id) == (1, 1, second)
    assert (reads.glucose_unit, reads.rule_ids) == ("mmol/L", queries.rule_ids(db))
    bare = queries.queue_reads(db, severity="high", viewer=viewer)
    assert [r["flag_id"] for r in bare.rows] == [second]
    assert (bare.glucose_unit, bare.rule_ids) == ("mg/dL", [])  # not asked for
