"""The latency poller's bookkeeping (bench/ingest_mqtt.py ``NewIds``): every committed reading is
counted once, also when a lower id commits after a higher one (two workers), in plain values."""

from __future__ import annotations

from bench.ingest_mqtt import NewIds


def test_ids_in_order_are_taken_once() -> None:
    ids = NewIds()
    assert ids.take([1, 2, 3]) == [1, 2, 3]
    assert ids.take([3, 4]) == [4]
    assert ids.last == 4 and ids.missing == set()


def test_a_lower_id_committed_later_is_still_counted_once() -> None:
    ids = NewIds()
    assert ids.take([5, 1, 6]) == [1, 5, 6]  # rows come in any order
    assert ids.missing == {2, 3, 4}  # another worker's batch, not committed yet
    assert ids.take([3, 7]) == [3, 7]
    assert ids.take([3, 2, 4]) == [2, 4]
    assert ids.missing == set()


def test_gaps_are_asked_for_only_within_the_lookback() -> None:
    ids = NewIds(lookback=10)
    assert ids.take([100]) == [100]
    assert ids.missing == set(range(91, 100))  # ids above last - lookback
    assert ids.take([115]) == [115]
    assert ids.missing == set(range(106, 115))  # 91..105 fell out of the lookback
    assert ids.take([95]) == []  # too old: given up, as the lookback says
