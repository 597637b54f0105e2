"""The outbox state machine: every transition, crash recovery, the bound, rejected rows kept."""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from gateway.errors import OutboxFull
from gateway.outbox import HighWater, Outbox, confirm_delay


def _add(ob: Outbox, n: int, **kw: Any) -> bool:
    return ob.add(f"{n:032x}", "glucose", "DEV-1", f'{{"n": {n}}}', **kw)


def test_pending_in_flight_acked(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite3", 10) as ob:
        assert _add(ob, 1) and _add(ob, 2)
        assert ob.counts() == {"pending": 2, "in_flight": 0, "published": 0, "rejected": 0}
        claimed = ob.claim(1)
        assert [r.message_id for r in claimed] == [f"{1:032x}"] and claimed[0].state == "in_flight"
        assert ob.counts() == {"pending": 1, "in_flight": 1, "published": 0, "rejected": 0}
        assert ob.ack([claimed[0].id]) == 1
        assert ob.counts() == {"pending": 1, "in_flight": 0, "published": 0, "rejected": 0}
        # ack only deletes in-flight rows: a pending row is not "acknowledged" by mistake
        pending = ob.rows("pending")[0]
        assert ob.ack([pending.id]) == 0
        assert ob.depth() == 1


def test_release_and_reject(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite3", 10) as ob:
        _add(ob, 1)
        _add(ob, 2)
        a, b = ob.claim(2)
        ob.release([a.id])
        assert ob.rows("pending")[0].id == a.id
        ob.reject(b.id, "broker refused: payload format invalid")
        rejected = ob.rows("rejected")
        assert [(r.id, r.reason) for r in rejected] == [(b.id, "broker refused: payload format invalid")]
        # rejected rows are kept and never claimed again
        assert [r.id for r in ob.claim(10)] == [a.id]
        assert ob.depth() == 1 and ob.counts()["rejected"] == 1


def test_duplicate_message_id_is_ignored(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite3", 10) as ob:
        assert _add(ob, 7)
        assert not _add(ob, 7)
        assert ob.depth() == 1


def test_restart_moves_in_flight_back_to_pending(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    ob = Outbox(path, 10)
    _add(ob, 1)
    _add(ob, 2)
    ob.claim(2)
    ob.close()  # "crash" before any PUBACK
    with Outbox(path, 10, recover=True) as again:
        assert again.counts() == {"pending": 2, "in_flight": 0, "published": 0, "rejected": 0}


def test_bound_refuses_with_a_log_line_and_high_water_does_not_move(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with Outbox(tmp_path / "o.sqlite3", 2) as ob:
        _add(ob, 1, high_water=("DEV-1", 1))
        _add(ob, 2, high_water=("DEV-1", 2))
        assert ob.full
        with caplog.at_level(logging.ERROR, logger="gateway.outbox"), pytest.raises(OutboxFull):
            _add(ob, 3, high_water=("DEV-1", 3))
        assert "FULL" in caplog.text
        assert ob.high_water("DEV-1") == 2  # the refused record stays on the device
        assert ob.depth() == 2
        # a reading the device already handed over is kept past the bound, never dropped
        assert _add(ob, 4, must_keep=True)
        assert ob.depth() == 3
        # draining clears the flag
        ob.ack([r.id for r in ob.claim(3)])
        assert not ob.full
        assert _add(ob, 5)


def test_rejected_frames_are_kept_with_reason_and_bytes(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite3", 10) as ob:
        ob.add_rejected(
            "DEV-1", "2A35", "too short", "0278005000", "2026-01-01T00:00:00Z", high_water=("DEV-1", 9)
        )
        (row,) = ob.rows("rejected")
        assert row.reason == "too short" and "0278005000" in row.payload and row.message_id is None
        assert ob.high_water("DEV-1") == 9
        assert ob.depth() == 0  # rejected rows do not count toward the bound


def test_device_info_and_clock_offset_survive_restart(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    with Outbox(path, 10) as ob:
        ob.save_device("AA:BB", {"serial": "S1", "clock_offset_s": 12.5})
        ob.set_high_water("S1", 41)
    with Outbox(path, 10) as ob:
        assert ob.load_device("AA:BB") == {"serial": "S1", "clock_offset_s": 12.5}
        assert ob.high_water("S1") == 41 and ob.high_water("nope") is None


def test_mark_keeps_base_time_and_remembered_ids_are_not_queued_twice(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite3", 10) as ob:
        assert _add(ob, 1, high_water=("DEV-1", 65535, "2026-03-01T08:00:00"), remember=True)
        assert ob.mark("DEV-1") == HighWater(65535, "2026-03-01T08:00:00")
        ob.ack([r.id for r in ob.claim(10)])  # the broker has it: the row is gone
        assert ob.was_sent(f"{1:032x}")
        # downloaded again after a reset: not queued again, but the mark still moves
        assert not _add(ob, 1, high_water=("DEV-1", 0, "2026-03-01T09:00:00"), remember=True)
        assert ob.depth() == 0 and ob.mark("DEV-1") == HighWater(0, "2026-03-01T09:00:00")
        assert _add(ob, 1)  # without remember the old behaviour stays (dedupe only while queued)


def test_record_reset_keeps_the_old_mark_and_clears_it(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    with Outbox(path, 10) as ob:
        ob.set_high_water("DEV-1", 500, "2026-03-01T08:00:00")
        reset = ob.record_reset("DEV-1", 3, "meter's newest sequence 3 is behind our mark 500")
        assert (reset.old_seq, reset.old_base, reset.meter_last) == (500, "2026-03-01T08:00:00", 3)
        assert ob.high_water("DEV-1") is None
    with Outbox(path, 10) as ob:
        assert [r.old_seq for r in ob.resets("DEV-1")] == [500] and ob.resets("DEV-2") == []


def test_version_1_file_gains_the_base_time_column(tmp_path: Path) -> None:
    path = tmp_path / "v1.sqlite3"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE high_water (device_id TEXT PRIMARY KEY, last_seq INTEGER NOT NULL,"
               " updated_at TEXT NOT NULL)")
    db.execute("INSERT INTO high_water VALUES ('DEV-1', 41, '2026-01-01')")
    db.commit()
    db.close()
    with Outbox(path, 10) as ob:
        assert ob.mark("DEV-1") == HighWater(41, None)


def _mid(n: int) -> str:
    return f"{n:032x}"


def test_published_waits_for_confirmation_then_is_deleted(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite3", 10, confirm_timeout_s=60) as ob:
        _add(ob, 1)
        _add(ob, 2)
        a, b = ob.claim(2)
        assert ob.published([a.id, b.id]) == 2
        assert ob.counts() == {"pending": 0, "in_flight": 0, "published": 2, "rejected": 0}
        assert ob.depth() == 2 and ob.claim(10) == []  # published rows are not sent again early
        assert ob.ack([a.id]) == 0  # a second PUBACK-style delete does not touch published rows
        assert ob.confirm([_mid(1), _mid(99)]) == 1  # unknown ids are ignored
        assert [r.message_id for r in ob.rows()] == [_mid(2)]


def test_confirmation_deletes_in_any_state_even_before_the_puback(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite3", 10) as ob:
        for n in range(1, 5):
            _add(ob, n)
        in_flight, published = ob.claim(2)
        ob.published([published.id])
        ob.reject(ob.claim(1)[0].id, "broker refused: payload format invalid")
        assert ob.counts() == {"pending": 1, "in_flight": 1, "published": 1, "rejected": 1}
        # the ack overtakes the PUBACK of row 1; rows 2 (published) and 4 (pending) go too
        assert ob.confirm([_mid(1), _mid(2), _mid(3), _mid(4)]) == 3
        assert ob.published([in_flight.id]) == 0  # the late PUBACK finds nothing to move
        assert ob.counts() == {"pending": 0, "in_flight": 0, "published": 0, "rejected": 1}


def test_unconfirmed_rows_go_back_to_pending_with_a_growing_wait(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite3", 10, confirm_timeout_s=60) as ob:
        _add(ob, 1)
        ob.published([r.id for r in ob.claim(1)])
        now = time.time()
        assert ob.expire_published(now + 30) == 0
        assert ob.expire_published(now + 61) == 1
        (again,) = ob.claim(1)
        assert again.attempts == 2
        ob.published([again.id])
        now = time.time()
        assert ob.expire_published(now + 100) == 0  # second attempt waits 120 s
        assert ob.expire_published(now + 121) == 1
        # a deadline far beyond the cap means the wall clock went back: re-send rather than wait
        ob.published([r.id for r in ob.claim(1)])
        assert ob.expire_published(time.time() - 3600) == 1


def test_confirm_delay_doubles_and_is_capped() -> None:
    assert [confirm_delay(60, a) for a in (0, 1, 2, 3, 4, 5, 40)] == [60, 60, 120, 240, 480, 600, 600]
    assert confirm_delay(0.5, 3) == 2.0


def test_restart_keeps_published_and_restarts_its_timer(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    ob = Outbox(path, 10, confirm_timeout_s=60)
    _add(ob, 1)
    _add(ob, 2)
    a, _b = ob.claim(2)
    ob.published([a.id])
    ob.close()  # "crash": row 1 has its PUBACK, row 2 does not
    with Outbox(path, 10, recover=True, confirm_timeout_s=60) as again:
        assert again.counts() == {"pending": 1, "in_flight": 0, "published": 1, "rejected": 0}
        assert again.expire_published(time.time() + 30) == 0
        assert again.expire_published(time.time() + 61) == 1


def test_bound_counts_published_rows(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite3", 2) as ob:
        _add(ob, 1)
        _add(ob, 2)
        ob.published([r.id for r in ob.claim(2)])
        with pytest.raises(OutboxFull):
            _add(ob, 3)
        ob.confirm([_mid(1)])
        assert _add(ob, 3)


def test_version_2_file_gains_the_published_state(tmp_path: Path) -> None:
    path = tmp_path / "v2.sqlite3"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, message_id TEXT UNIQUE,"
               " kind TEXT NOT NULL, device_id TEXT NOT NULL, payload TEXT NOT NULL, state TEXT NOT NULL"
               " CHECK (state IN ('pending', 'in_flight', 'rejected')), reason TEXT,"
               " created_at TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0)")
    db.execute("CREATE INDEX outbox_state_id ON outbox (state, id)")
    db.execute(f"INSERT INTO outbox (message_id, kind, device_id, payload, state, created_at, attempts)"
               f" VALUES ('{_mid(7)}', 'glucose', 'DEV-1', '{{}}', 'in_flight', '2026-01-01', 1)")
    db.commit()
    db.close()
    with Outbox(path, 10, recover=True) as ob:
        (row,) = ob.claim(1)
        assert (row.message_id, row.attempts) == (_mid(7), 2)
        assert ob.published([row.id]) == 1 and ob.counts()["published"] == 1
        assert _add(ob, 8) and ob.rows()[-1].id > row.id
