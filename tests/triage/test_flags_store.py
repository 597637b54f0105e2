"""flags_store against the real database: idempotent upserts, concurrency, events, queue, PPV."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from tests.triage.dbseed import patient, reading
from triage import flags_store
from triage.errors import FlagNotFound, IllegalTransition, MissingPayload, RoleNotAllowed
from triage.flags_store import FlagCandidate

NOW = datetime(2026, 3, 10, 18, 0, tzinfo=UTC)
Conn = psycopg.Connection[Any]


def _cand(
    pid: int,
    ids: tuple[int, ...],
    *,
    rule: str = "glucose_hypo_l1",
    severity: str = "high",
    confirmation: str | None = None,
    dedup: str = "readings",
    episode: str = "",
) -> FlagCandidate:
    evidence: dict[str, Any] = {"items": [{"reading_id": i} for i in ids], "unit": "mg/dL"}
    if confirmation:
        evidence["confirmation"] = confirmation
    return FlagCandidate(
        rule, f"patient:{pid}", pid, severity, f"reason {ids}", episode, ids, NOW, NOW, evidence, dedup
    )


def _seed(db: Conn, n: int = 3) -> tuple[int, list[int]]:
    pid = patient(db, assigned_from=NOW - timedelta(days=30))
    ids = [reading(db, pid, NOW - timedelta(hours=i), glucose=60) for i in range(n)]
    return pid, ids


def _flags(db: Conn) -> list[tuple[Any, ...]]:
    return db.execute("SELECT flag_id, state, reading_ids, severity FROM flags ORDER BY flag_id").fetchall()


def test_new_evidence_attaches_to_the_open_flag(db: Conn) -> None:
    pid, ids = _seed(db)
    first = flags_store.upsert_flags(db, [_cand(pid, (ids[0],))], NOW)
    again = flags_store.upsert_flags(db, [_cand(pid, (ids[0],))], NOW)  # the same evidence: nothing to do
    more = flags_store.upsert_flags(db, [_cand(pid, (ids[1],), severity="critical")], NOW)
    assert len(first) == 1 and again == [] and more == first
    rows = _flags(db)
    assert len(rows) == 1
    assert rows[0][2] == sorted([ids[0], ids[1]]) and rows[0][3] == "critical"
    items = db.execute("SELECT evidence->'items' FROM flags").fetchone()
    assert items is not None and [i["reading_id"] for i in items[0]] == [ids[0], ids[1]]
    events = db.execute("SELECT event FROM flag_events ORDER BY flag_event_id").fetchall()
    assert [e[0] for e in events] == ["opened", "evidence_attached"]


def test_closed_flag_is_not_reopened_by_old_evidence_but_new_evidence_opens_a_new_one(db: Conn) -> None:
    pid, ids = _seed(db)
    (fid,) = flags_store.upsert_flags(db, [_cand(pid, (ids[0],))], NOW)
    flags_store.apply_event(db, fid, "close", "nurse.n", "nurse", disposition="acted")
    assert flags_store.upsert_flags(db, [_cand(pid, (ids[0],))], NOW) == []
    new = flags_store.upsert_flags(db, [_cand(pid, (ids[0], ids[1]))], NOW)
    assert len(new) == 1 and new[0] != fid
    assert [r[1] for r in _flags(db)] == ["closed", "open"]


def test_episode_dedup_does_not_reopen_a_closed_episode(db: Conn) -> None:
    pid, _ = _seed(db, 0)
    c = _cand(
        pid, (), rule="adherence_period", severity="moderate", dedup="episode", episode="period:2026-03-01"
    )
    (fid,) = flags_store.upsert_flags(db, [c], NOW)
    assert flags_store.upsert_flags(db, [c], NOW) == [fid]  # refreshed while open
    flags_store.apply_event(db, fid, "close", "nurse.n", "nurse", disposition="no_action_needed")
    assert flags_store.upsert_flags(db, [c], NOW) == []


def test_concurrent_upserts_make_one_open_flag(database_url: str, db: Conn) -> None:
    pid, ids = _seed(db, 8)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def worker(offset: int) -> None:
        try:
            with psycopg.connect(database_url, autocommit=True) as conn:
                barrier.wait(timeout=10)
                for i in range(offset, len(ids), 2):
                    flags_store.upsert_flags(conn, [_cand(pid, (ids[i],)), _cand(pid, (ids[0],))], NOW)
        except BaseException as exc:  # surfaced by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    rows = _flags(db)
    assert len(rows) == 1 and rows[0][2] == sorted(ids)


def test_apply_event_records_and_refuses(db: Conn) -> None:
    pid, ids = _seed(db)
    (fid,) = flags_store.upsert_flags(db, [_cand(pid, (ids[0],))], NOW)
    assert flags_store.apply_event(db, fid, "acknowledge", "nurse.n", "nurse") == "acknowledged"
    assert (
        flags_store.apply_event(db, fid, "assign", "nurse.n", "nurse", assignee="nurse.m") == "acknowledged"
    )
    assert flags_store.apply_event(db, fid, "log_time", "nurse.m", "nurse", minutes=7) == "acknowledged"
    with pytest.raises(RoleNotAllowed):
        flags_store.apply_event(db, fid, "review", "nurse.m", "nurse")
    with pytest.raises(RoleNotAllowed):
        flags_store.apply_event(db, fid, "promote", "nurse.m", "nurse")
    with pytest.raises(IllegalTransition):
        flags_store.apply_event(db, fid, "promote", "dr.c", "clinician")
    with pytest.raises(MissingPayload):
        flags_store.apply_event(db, fid, "close", "nurse.m", "nurse")
    assert flags_store.apply_event(db, fid, "escalate", "nurse.m", "nurse", note="BP meds?") == "escalated"
    assert flags_store.apply_event(db, fid, "review", "dr.c", "clinician") == "reviewed"
    assert flags_store.apply_event(db, fid, "close", "nurse.m", "nurse", disposition="acted") == "closed"
    with pytest.raises(IllegalTransition):
        flags_store.apply_event(db, fid, "acknowledge", "nurse.m", "nurse")
    with pytest.raises(FlagNotFound):
        flags_store.apply_event(db, fid + 999, "acknowledge", "nurse.m", "nurse")
    flag = db.execute("SELECT state, disposition, assigned_to, closed_at IS NOT NULL FROM flags").fetchone()
    assert flag == ("closed", "acted", "nurse.m", True)
    events = db.execute(
        "SELECT event, from_state, to_state, actor, role, disposition, minutes FROM flag_events"
        " WHERE actor <> 'triage' ORDER BY flag_event_id"
    ).fetchall()
    assert events == [
        ("acknowledge", "open", "acknowledged", "nurse.n", "nurse", None, None),
        ("assign", "acknowledged", "acknowledged", "nurse.n", "nurse", None, None),
        ("log_time", "acknowledged", "acknowledged", "nurse.m", "nurse", None, 7),
        ("escalate", "acknowledged", "escalated", "nurse.m", "nurse", None, None),
        ("review", "escalated", "reviewed", "dr.c", "clinician", None, None),
        ("close", "reviewed", "closed", "nurse.m", "nurse", "acted", None),
    ]


def test_confirmed_crisis_cannot_be_auto_cleared(db: Conn) -> None:
    pid, ids = _seed(db)
    (fid,) = flags_store.upsert_flags(
        db,
        [_cand(pid, (ids[0], ids[1]), rule="bp_crisis", severity="critical", confirmation="confirmed")],
        NOW,
    )
    # A later "cleared" candidate must not downgrade the confirmation either.
    flags_store.upsert_flags(
        db, [_cand(pid, (ids[1], ids[2]), rule="bp_crisis", severity="critical", confirmation="cleared")], NOW
    )
    with pytest.raises(IllegalTransition):
        flags_store.apply_event(db, fid, "auto_clear", "triage", "system")
    row = db.execute("SELECT state, evidence->>'confirmation' FROM flags").fetchone()
    assert row == ("open", "confirmed")


def test_queue_orders_by_severity_then_age(db: Conn) -> None:
    pid, ids = _seed(db)
    flags_store.upsert_flags(db, [_cand(pid, (ids[0],), rule="r_moderate", severity="moderate")], NOW)
    flags_store.upsert_flags(
        db, [_cand(pid, (ids[1],), rule="r_critical", severity="critical")], NOW + timedelta(minutes=1)
    )
    flags_store.upsert_flags(
        db, [_cand(pid, (ids[2],), rule="r_moderate_old", severity="moderate")], NOW - timedelta(days=1)
    )
    q = flags_store.queue(db)
    assert [f["rule_id"] for f in q] == ["r_critical", "r_moderate_old", "r_moderate"]
    assert q[0]["display_name"] == "Test Patient"
    assert [f["rule_id"] for f in flags_store.queue(db, severity="moderate", limit=1)] == ["r_moderate_old"]
    assert flags_store.queue(db, state="closed") == []


def test_rule_quality_ppv_from_dispositions(db: Conn) -> None:
    pid, ids = _seed(db, 4)
    fids = [flags_store.upsert_flags(db, [_cand(pid, (i,))], NOW)[0] for i in ids[:1]]
    flags_store.apply_event(db, fids[0], "close", "n", "nurse", disposition="acted")
    for disp, i in zip(["no_action_needed", "artefact"], ids[1:3], strict=True):
        (fid,) = flags_store.upsert_flags(db, [_cand(pid, (i,))], NOW)
        flags_store.apply_event(db, fid, "close", "n", "nurse", disposition=disp)
    flags_store.upsert_flags(db, [_cand(pid, (ids[3],))], NOW)
    (row,) = flags_store.rule_quality(db)
    assert row["rule_id"] == "glucose_hypo_l1" and row["flags"] == 4 and row["active"] == 1
    assert (row["acted"], row["no_action_needed"], row["artefact"]) == (1, 1, 1)
    assert float(row["ppv"]) == pytest.approx(0.333, abs=1e-3)
