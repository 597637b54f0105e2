"""In-order acknowledgement when batches commit out of order (pure: no broker, no database)."""

from __future__ import annotations

from ingest.ackorder import AckOrder


def test_a_later_batch_committing_first_waits_for_the_earlier_ones() -> None:
    order: AckOrder[str] = AckOrder()
    seqs = [order.add(name) for name in ("b0", "b1", "b2", "b3")]
    assert seqs == [0, 1, 2, 3]
    assert order.committed(1) == []  # worker 2 finished first: b1 must not be acked before b0
    assert order.committed(3) == []
    assert len(order) == 4
    assert order.committed(0) == ["b0", "b1"]  # b0 releases b1, not b3 (b2 still open)
    assert len(order) == 2
    assert order.committed(2) == ["b2", "b3"]
    assert len(order) == 0


def test_a_replayed_batch_reported_twice_is_acked_once() -> None:
    order: AckOrder[str] = AckOrder()
    order.add("b0")
    order.add("b1")
    assert order.committed(1) == []
    assert order.committed(1) == []  # the dead worker reported it and its replacement did again
    assert order.committed(0) == ["b0", "b1"]
    assert order.committed(0) == [] and order.committed(1) == []
    assert order.add("b2") == 2 and order.committed(2) == ["b2"]


def test_in_order_commits_are_acked_at_once() -> None:
    order: AckOrder[int] = AckOrder()
    for n in range(5):
        seq = order.add(n)
        assert order.committed(seq) == [n]
    assert len(order) == 0
