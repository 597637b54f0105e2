"""ingest/seen.py: a device is left out of the devices update only when the update could not
change its row, as far as the writer knows the row from its own commits (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from ingest.binding import LAST_SEEN_GRAIN
from ingest.seen import SeenMemo

T0 = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)
NOW = T0 + timedelta(hours=1)
SAID = {"model": "M1", "gateway_id": "gw-1", "kind": "blood_pressure"}


def device(first: datetime, last: datetime, reported: dict[str, Any] | None = None,
           name: str = "d1") -> dict[str, Any]:
    return {"device_id": name, "first_seen": first, "last_seen": last, "reported": reported or SAID}


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def memo_after_update(clock: Clock) -> SeenMemo:
    """d1's row updated to first = last = T0 with this writer's description."""
    memo = SeenMemo(LAST_SEEN_GRAIN, window_s=30, clock=clock)
    sent = memo.due([device(T0, T0)], NOW)
    assert [d["device_id"] for d in sent] == ["d1"]  # never seen: sent
    memo.recorded(sent, {"d1": (T0, T0)}, NOW)
    return memo


def test_a_sighting_within_the_grain_is_left_out_and_one_past_it_is_sent() -> None:
    memo = memo_after_update(Clock())
    assert memo.due([device(T0 + timedelta(seconds=5), T0 + timedelta(seconds=59))], NOW) == []
    later = device(T0 + timedelta(seconds=5), T0 + LAST_SEEN_GRAIN + timedelta(seconds=1))
    assert memo.due([later], NOW) == [later]


def test_an_earlier_first_sighting_or_another_description_is_sent() -> None:
    memo = memo_after_update(Clock())
    earlier = device(T0 - timedelta(hours=3), T0)
    changed = device(T0, T0, {**SAID, "model": "M2"}, name="d1")
    assert memo.due([earlier], NOW) == [earlier]
    assert memo.due([changed], NOW) == [changed]


def test_an_entry_lasts_its_window_then_the_database_decides_again() -> None:
    clock = Clock()
    memo = memo_after_update(clock)
    same = device(T0, T0 + timedelta(seconds=10))
    clock.t += 29.9
    assert memo.due([same], NOW) == []
    clock.t += 0.2
    assert memo.due([same], NOW) == [same]


def test_a_row_not_updated_holds_at_least_last_minus_the_grain() -> None:
    """Not returned by the update: the row's last_seen_at may be as old as last - grain, so any
    later sighting may move it; an older one cannot."""
    memo = SeenMemo(LAST_SEEN_GRAIN, clock=Clock())
    sent = [device(T0, T0 + timedelta(minutes=10))]
    memo.recorded(sent, {}, NOW)
    assert memo.due([device(T0, T0 + timedelta(minutes=9))], NOW) == []
    later = device(T0, T0 + timedelta(minutes=10, seconds=1))
    assert memo.due([later], NOW) == [later]


def test_an_update_that_did_not_make_this_sighting_the_latest_leaves_the_description_unknown() -> None:
    """Updated for an earlier first sighting while the row held a later last_seen_at: the stored
    description is not this writer's, so the next sighting is sent whatever it says."""
    memo = SeenMemo(LAST_SEEN_GRAIN, clock=Clock())
    sent = [device(T0 - timedelta(days=1), T0)]
    memo.recorded(sent, {"d1": (T0 - timedelta(days=1), T0 + timedelta(minutes=5))}, NOW)
    again = device(T0, T0 + timedelta(minutes=5))
    assert memo.due([again], NOW) == [again]


def test_future_times_count_as_now_as_the_update_clamps_them() -> None:
    memo = SeenMemo(LAST_SEEN_GRAIN, clock=Clock())
    future = device(NOW + timedelta(days=1), NOW + timedelta(days=1))
    memo.recorded([future], {"d1": (NOW, NOW)}, NOW)
    assert memo.due([device(NOW + timedelta(days=2), NOW + timedelta(days=2))], NOW) == []
    assert memo.due([device(NOW, NOW + timedelta(days=2))], NOW + timedelta(minutes=2)) != []


def test_the_memo_stays_bounded() -> None:
    clock = Clock()
    memo = SeenMemo(LAST_SEEN_GRAIN, window_s=30, clock=clock, limit=10)
    memo.recorded([device(T0, T0, name=f"d{i}") for i in range(10)], {}, NOW)
    clock.t += 31  # all expired: dropped when more come
    memo.recorded([device(T0, T0, name="new")], {}, NOW)
    assert len(memo) == 1
