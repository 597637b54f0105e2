"""The writer's fast path (ingest/direct.py) against a real PostgreSQL: the same verdicts as the
staging path, and a race for a message id falls back to it without a duplicate."""

from __future__ import annotations

import dataclasses
import random
import threading
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from gateway import contract
from ingest import binding, direct
from ingest.pipeline import classify
from ingest.writer import READING_COLUMNS, Accepted, BatchWriter, Item, keys_table, reading_fields
from simulators.fleet import FleetConfig, enrol_devices, make_devices
from simulators.fleet_messages import build_reading
from tests.ingest.helpers import EXAMPLE, GLUCOSE, count, dumps, enrol, unique_reading, with_contract_id
from tests.ingest.test_binding import DEV, NOW, A, B, Conn, item
from tests.ingest.test_binding import writer as writer  # the fixture: DEV enrolled on A
from tests.waiting import wait_for


def accepted(msg: dict[str, Any]) -> Accepted:
    out = item(msg)
    assert isinstance(out, Accepted)
    return out


def test_the_copy_columns_are_the_reading_columns_plus_patient_and_time() -> None:
    assert (*READING_COLUMNS, "patient_id", "ingested_at") == direct.COPY_COLUMNS
    row = reading_fields(accepted(unique_reading(A, 1)))
    assert len(row) == len(READING_COLUMNS)
    assert row[READING_COLUMNS.index("message_id")] == unique_reading(A, 1)["message_id"]


def test_verdicts_in_batch_order() -> None:
    """Unbound first, then new, then a duplicate held by another gateway; a duplicate held by the
    sender (or by a pre-binding key without a gateway) is neither stored nor refused."""
    batch = [accepted(unique_reading(A, n)) for n in range(5)]
    # (ord, enrolled gateway, id found, stored by, patient, clock: on the first reading only)
    rows = [(4, A, True, None, None, None), (0, None, None, None, None, NOW), (1, B, None, None, None, None),
            (2, A, None, None, 42, None), (3, A, True, B, None, None)]
    d = direct.decide(batch, rows)
    assert d.new == [(2, 42)]
    assert d.refused == [(0, "not_enrolled", None), (1, "wrong_gateway", B),
                         (3, "duplicate_of_other_gateway", None)]
    assert d.seen == [2, 4] and d.at == NOW


def test_a_repeat_in_the_batch_is_held_by_the_first_bound_reading_of_its_id() -> None:
    """The first bound reading of an id not stored is new; a later one from the same gateway is a
    duplicate (seen), from another gateway a refusal; an unbound first reading holds nothing."""
    msg = unique_reading(A, 1)
    other = {**msg, "gateway_id": B}
    batch = [accepted(other), accepted(msg), accepted(msg), accepted(other)]
    rows = [(0, A, None, None, None, NOW), (1, A, None, None, 7, NOW), (2, A, None, None, 7, NOW),
            (3, B, None, None, None, NOW)]  # the device moved to B for the last one's measured_at
    d = direct.decide(batch, rows)
    assert d.new == [(1, 7)]
    assert d.refused == [(0, "wrong_gateway", A), (3, "duplicate_of_other_gateway", None)]
    assert d.seen == [1, 2]


def test_a_mixed_batch_gets_the_staging_paths_verdicts(writer: BatchWriter, db: Conn) -> None:
    """New, repeated in the batch, sent again by another gateway in the same batch (the binding
    refuses it first), from a device enrolled elsewhere: stored once, refusals named, devices seen
    recorded. (A duplicate of another gateway's stored reading: tests/ingest/test_binding.py.)"""
    enrol(db, "DEV-ELSEWHERE", B)
    first = unique_reading(A, 1, received_at="2025-11-23T10:00:00Z")
    later = unique_reading(A, 2, received_at="2025-11-23T11:00:00Z")
    elsewhere = unique_reading(A, 3)
    elsewhere["device"] = {**elsewhere["device"], "id": "DEV-ELSEWHERE"}
    elsewhere = with_contract_id(elsewhere)
    result = writer.write([item(first), item(first), item({**first, "gateway_id": B}), item(later),
                           item(elsewhere)])
    assert (result.inserted, result.duplicates) == (2, 1)
    assert sorted((r.message_id, r.code) for r in result.rejected) == sorted(
        [(first["message_id"], "wrong_gateway"), (elsewhere["message_id"], "wrong_gateway")])
    assert count(db, "SELECT count(*) FROM readings") == 2
    seen = db.execute("SELECT first_seen_at, last_seen_at, reported->>'gateway_id' FROM devices"
                      " WHERE device_id = %s", (DEV,)).fetchone()
    assert seen == (datetime(2025, 11, 23, 10, tzinfo=UTC), datetime(2025, 11, 23, 11, tzinfo=UTC), A)
    again = writer.write([item(first), item(later)])
    assert (again.inserted, again.duplicates, again.rejected) == (0, 2, [])


def test_the_optimistic_verdicts_are_those_of_decide_over_the_same_intervals() -> None:
    """decide_bound (the optimistic path, one query for the batch's devices) gives decide's
    verdicts for the probe rows the same intervals make, over random batches: devices enrolled on
    one gateway, on two in turn, on one for a while, or nowhere; assignments that change; ids
    repeated within the batch, from the same gateway or another; times on the boundaries."""
    rng = random.Random(18)
    base = accepted(unique_reading(A, 1))
    t = [datetime(2025, 11, d, tzinfo=UTC) for d in range(1, 9)]
    shapes: list[list[binding.Interval[str]]] = [
        [(None, None, A)], [(t[0], t[3], A), (t[3], None, B)], [(t[2], t[5], B)], [(t[1], None, A)]]
    for _ in range(400):
        enrolled = {d: rng.choice(shapes) for d in ("d1", "d2", "d3") if rng.random() < 0.9}  # d4: nowhere
        assigned: dict[str, list[binding.Interval[int]]] = {
            "d1": [(t[0], None, 1)], "d2": [(None, t[4], 2), (t[4], None, 3)]}
        batch = [Accepted(dataclasses.replace(
            base.reading, gateway_id=rng.choice([A, B]), measured_at=rng.choice(t),
            message_id=f"{rng.randint(0, 5):032x}",
            device=dataclasses.replace(base.reading.device, device_id=rng.choice(["d1", "d2", "d3", "d4"]))),
            base.grade) for _ in range(rng.randint(1, 12))]
        rows: list[direct.Checked] = [
            (i, binding.covering(enrolled.get(a.reading.device.device_id), a.reading.measured_at), None, None,
             binding.covering(assigned.get(a.reading.device.device_id), a.reading.measured_at), NOW)
            for i, a in enumerate(batch)]
        bound = direct.decide_bound([a.reading for a in batch], enrolled, assigned, NOW)
        assert bound == direct.decide(batch, rows)


def test_a_race_lost_after_the_copy_is_rolled_back_and_written_through_staging(
    writer: BatchWriter, db: Conn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever the fast path did before :class:`direct.Contended` is rolled back; the staging
    path then stores each reading once and counts it once."""
    real = direct.write
    calls: list[int] = []

    def contended(*args: Any, **kwargs: Any) -> Any:
        calls.append(real(*args, **kwargs)[0])  # really stage and COPY, then lose the race
        raise direct.Contended("another writer took an id")

    monkeypatch.setattr(direct, "write", contended)
    result = writer.write([item(unique_reading(A, n)) for n in range(3)])
    assert calls == [3] and (result.inserted, result.duplicates, result.rejected) == (3, 0, [])
    assert count(db, "SELECT count(*) FROM readings") == 3


def test_a_copy_refused_by_the_dedupe_index_is_contended(database_url: str, db: Conn) -> None:
    """Another transaction commits one of the ids between the check and the COPY (plain PostgreSQL:
    the unique index refuses it); on TimescaleDB the key is claimed before the COPY, and a
    concurrent claim waits for this transaction instead, so the COPY has nothing to lose."""
    enrol(db, DEV, A)
    msg = unique_reading(A, 1)
    layout_keys = keys_table(db)

    def fields_of(a: Accepted, *tail: Any) -> tuple[Any, ...]:
        if not layout_keys:  # commits the same id while this COPY is open
            db.execute("INSERT INTO readings (message_id, gateway_id, device_id, kind, measured_at,"
                       " received_at, raw) VALUES (%s, %s, %s, 'blood_pressure', now(), now(), '')",
                       (msg["message_id"], A, DEV))
        return reading_fields(a, *tail)

    with psycopg.connect(database_url) as conn, conn.cursor() as cur:
        if layout_keys:
            fast = direct.layout(conn, keys_table=True)
            assert direct.write(cur, [accepted(msg)], fields_of, layout=fast)[0] == 1
        else:
            with pytest.raises(direct.Contended):
                direct.write(cur, [accepted(msg)], fields_of, layout=direct.layout(conn, keys_table=False))
    assert count(db, "SELECT count(*) FROM readings") == 1


def test_two_writers_racing_for_the_same_ids_store_each_once(writer: BatchWriter, database_url: str,
                                                             db: Conn) -> None:
    """A redelivered batch handed to two workers at once: every reading stored once, and the two
    results together count each reading as inserted exactly once."""
    other = BatchWriter(database_url)
    inserted = [0, 0]
    for rnd in range(5):
        batch = [item(unique_reading(A, rnd * 100 + n)) for n in range(50)]

        def run(i: int, w: BatchWriter, batch: list[Item] = batch) -> None:
            inserted[i] += w.write(batch).inserted

        threads = [threading.Thread(target=run, args=(i, w)) for i, w in enumerate((writer, other))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    other.close()
    assert sum(inserted) == 250
    assert count(db, "SELECT count(*) FROM readings") == 250


@pytest.mark.parametrize("fast", [True, False], ids=["direct", "staging"])
def test_last_seen_is_kept_to_the_minute_first_seen_and_reports_exactly(
    writer: BatchWriter, db: Conn, monkeypatch: pytest.MonkeyPatch, fast: bool
) -> None:
    """A device seen again within 60 s of its stored last_seen_at keeps its row; a minute later,
    an earlier first sighting, or a new report is written (both paths)."""
    if not fast:
        def contended(*args: Any, **kwargs: Any) -> Any:
            raise direct.Contended("forced onto the staging path")

        monkeypatch.setattr(direct, "write", contended)

    def seen() -> tuple[Any, ...] | None:
        return db.execute("SELECT first_seen_at, last_seen_at, reported->>'firmware' FROM devices"
                          " WHERE device_id = %s", (DEV,)).fetchone()

    def at(n: int, received: str, **device: str) -> Item:
        msg = unique_reading(A, n, received_at=f"2025-11-23T{received}Z")
        if device:
            msg["device"] = {**msg["device"], **device}
            msg = with_contract_id(msg)
        return item(msg)

    writer.write([at(1, "10:00:00")])
    writer.write([at(2, "10:00:59")])
    assert seen() == (datetime(2025, 11, 23, 10, tzinfo=UTC), datetime(2025, 11, 23, 10, tzinfo=UTC), "1.2")
    writer.write([at(3, "10:01:01")])
    assert seen() == (datetime(2025, 11, 23, 10, tzinfo=UTC), datetime(2025, 11, 23, 10, 1, 1, tzinfo=UTC),
                      "1.2")
    writer.write([at(4, "09:00:00")])
    assert seen() == (datetime(2025, 11, 23, 9, tzinfo=UTC), datetime(2025, 11, 23, 10, 1, 1, tzinfo=UTC),
                      "1.2")
    writer.write([at(5, "10:01:30", firmware="9.9")])
    assert seen() == (datetime(2025, 11, 23, 9, tzinfo=UTC), datetime(2025, 11, 23, 10, 1, 30, tzinfo=UTC),
                      "9.9")
    assert count(db, "SELECT count(*) FROM readings") == 5


def test_covering_picks_the_latest_row_covering_the_instant() -> None:
    """valid_from <= at < valid_to, the latest valid_from winning (ORDER BY valid_from DESC LIMIT
    1); an open end covers everything after; nothing covering: None."""
    t = [datetime(2025, 11, d, tzinfo=UTC) for d in range(1, 6)]
    rows = [(t[0], t[2], "old"), (t[2], None, "new"), (t[1], t[3], "overlap")]
    assert [binding.covering(rows, at) for at in t] == ["old", "overlap", "new", "new", "new"]
    assert binding.covering([(t[1], t[2], 7)], t[0]) is None
    assert binding.covering([(t[1], t[2], 7)], t[2]) is None and binding.covering(None, t[0]) is None
    assert binding.covering([(None, t[1], "ever"), (t[0], None, "later")], t[0]) == "later"  # -infinity: None


def paths(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Records, per call of direct.write, whether it was the optimistic path."""
    real, seen = direct.write, []

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(bool(kwargs.get("optimistic")))
        return real(*args, **kwargs)

    monkeypatch.setattr(direct, "write", spy)
    return seen


def test_a_redelivery_in_an_optimistic_batch_is_redone_checked(
    writer: BatchWriter, db: Conn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stored id rolls the optimistic attempt back (nothing of it stays) and the batch is
    redone checked; the next batch is checked too (a backlog of redeliveries), and the one after a
    batch that found no stored id is optimistic again."""
    seen = paths(monkeypatch)
    msgs = [unique_reading(A, n) for n in range(5)]
    outs = [writer.write([item(m) for m in batch])
            for batch in ([msgs[0], msgs[1]], [msgs[2], msgs[0]], [msgs[3]], [msgs[4]])]
    assert seen == [True, True, False, False, True]
    assert [(o.inserted, o.duplicates, o.rejected) for o in outs] == [(2, 0, []), (1, 1, []), (1, 0, []),
                                                                      (1, 0, [])]
    assert count(db, "SELECT count(*) FROM readings") == 5
    assert count(db, "SELECT count(DISTINCT message_id) FROM readings") == 5


def test_an_id_held_by_another_gateway_in_an_optimistic_batch_is_refused(
    writer: BatchWriter, db: Conn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A mixed batch (a new reading, a re-send of another gateway's stored reading): the new one is
    stored once, the other refused as duplicate_of_other_gateway, its stored row untouched."""
    real = unique_reading(A, 1)
    writer.write([item(real)])
    db.execute("UPDATE device_enrolments SET gateway_id = %s", (B,))  # back-dated move to B
    seen = paths(monkeypatch)
    fresh = unique_reading(B, 2)
    out = writer.write([item({**real, "gateway_id": B}), item(fresh)])
    assert seen == [True, False]
    assert (out.inserted, out.duplicates) == (1, 0)
    refused = [(r.message_id, r.code) for r in out.rejected]
    assert refused == [(real["message_id"], "duplicate_of_other_gateway")]
    assert db.execute("SELECT gateway_id, count(*) FROM readings GROUP BY 1 ORDER BY 1").fetchall() == [
        (A, 1), (B, 1)]
    if keys_table(db):
        assert count(db, "SELECT count(*) FROM reading_keys") == 2


def test_an_id_claimed_by_a_concurrent_writer_waits_for_it_then_is_a_duplicate(
    writer: BatchWriter, database_url: str, db: Conn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another transaction holds an uncommitted claim of one of the batch's ids: the optimistic
    write waits for it at the unique index (or the key's), and once it commits the batch is redone
    checked: that reading is a duplicate (same gateway), the other stored, nothing twice."""
    msg, other = unique_reading(A, 1), unique_reading(A, 2)
    layout_keys = keys_table(db)
    seen = paths(monkeypatch)
    outs: list[Any] = []
    with psycopg.connect(database_url) as rival:
        if layout_keys:
            rival.execute("INSERT INTO reading_keys (message_id, gateway_id) VALUES (%s, %s)",
                          (msg["message_id"], A))
        else:
            rival.execute("INSERT INTO readings (message_id, gateway_id, device_id, kind, measured_at,"
                          " received_at, raw) VALUES (%s, %s, %s, 'blood_pressure', now(), now(), '')",
                          (msg["message_id"], A, DEV))
        t = threading.Thread(target=lambda: outs.append(writer.write([item(msg), item(other)])))
        t.start()
        wait_for(lambda: count(db, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                                   " AND application_name = 'rpmflow-ingest'"
                                   " AND datname = current_database()") == 1,
                 30, "the writer waiting for the rival's claim")
        rival.commit()
        t.join(30)
    assert seen == [True, False]
    assert [(o.inserted, o.duplicates, o.rejected) for o in outs] == [(1, 1, [])]
    assert count(db, "SELECT count(*) FROM readings WHERE message_id = %s", msg["message_id"]) == (
        0 if layout_keys else 1)
    assert count(db, "SELECT count(*) FROM readings WHERE message_id = %s", other["message_id"]) == 1


def test_infinite_enrolment_and_assignment_bounds_are_open_ends(database_url: str, db: Conn) -> None:
    """psycopg loads no infinite timestamp: INTERVALS returns such a bound as NULL (open), so a
    reading under an enrolment from -infinity and an assignment to infinity is bound and attached
    on the optimistic path itself (not after a refused batch's row-by-row replay)."""
    enrol(db, DEV, A)
    db.execute("UPDATE device_enrolments SET valid_from = '-infinity'")
    pid = db.execute("INSERT INTO patients (mrn, display_name, state) VALUES ('M', 'P', 'NY')"
                     " RETURNING patient_id").fetchone()
    assert pid is not None
    db.execute("INSERT INTO device_assignments (device_id, patient_id, valid_from, valid_to)"
               " VALUES (%s, %s, '2015-01-01', 'infinity')", (DEV, pid[0]))
    with psycopg.connect(database_url) as conn, conn.cursor() as cur:
        done = direct.write(cur, [accepted(unique_reading(A, 1))], reading_fields,
                            layout=direct.layout(conn, keys_table=keys_table(db)), optimistic=True)
    assert (done.inserted, done.refused, done.stored) == (1, [], 0)
    assert db.execute("SELECT patient_id FROM readings").fetchall() == [(pid[0],)]


def test_the_binary_copy_stores_what_the_staging_path_stores(
    database_url: str, db: Conn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every column of every kind (reals, uuids, enums, text[], jsonb, bytea, timestamps) comes
    out of the fast path's binary COPY as the staging path's text COPY and INSERT store it."""
    config = FleetConfig(gateways=2, devices_per_gateway=8, glucose_share=0.3, vitals_share=0.4, seed=7)
    devices = make_devices(config, config.gateway_ids())
    enrol_devices(database_url, devices)
    enrol(db, DEV, "gw-0001", since=datetime(2010, 1, 1, tzinfo=UTC))
    enrol(db, GLUCOSE["device"]["id"], "gw-0001", kind="glucose")
    pid = db.execute("INSERT INTO patients (mrn, display_name, state) VALUES ('M', 'P', 'NY')"
                     " RETURNING patient_id").fetchone()
    assert pid is not None
    db.execute("INSERT INTO device_assignments (device_id, patient_id, valid_from)"
               " VALUES (%s, %s, '2010-01-01')", (DEV, pid[0]))
    now = datetime.now(UTC)
    msgs = [build_reading(gw, dev, dev.next_time(now), now) for _ in range(6) for gw, dev in devices]
    items = [classify(contract.readings_topic(gw), payload, now=now)
             for gw, (_, payload) in zip([gw for _ in range(6) for gw, _ in devices], msgs, strict=True)]
    items += [classify("rpm/v1/gw-0001/readings", dumps(m), now=now) for m in (
        EXAMPLE, GLUCOSE, unique_reading("gw-0001", 1, measured_at="2014-06-01T08:00:00Z"))]  # quarantined
    readings = [i for i in items if isinstance(i, Accepted)]
    assert len(readings) == len(items)
    kinds = {i.reading.kind for i in readings}
    assert kinds == {"blood_pressure", "glucose", "weight", "spo2"}
    stored = "SELECT to_jsonb(r) - 'reading_id' - 'ingested_at' FROM readings r ORDER BY message_id"
    both = []
    for staged in (False, True):
        if staged:
            def contended(*args: Any, **kwargs: Any) -> Any:
                raise direct.Contended("forced onto the staging path")

            monkeypatch.setattr(direct, "write", contended)
            db.execute("DELETE FROM readings")
            if keys_table(db):
                db.execute("DELETE FROM reading_keys")
        w = BatchWriter(database_url)
        assert w.write(readings).inserted == len(items)
        w.close()
        both.append(db.execute(stored).fetchall())
    assert both[0] == both[1] and len(both[0]) == len(items)
    for column in ("original", "device_status", "patient_id", "quality_reason", "sample_type"):
        assert any(row[column] is not None for (row,) in both[0]), f"no {column} compared"
