"""In-order acknowledgement of batches that commit out of order (pure, no I/O).

MQTT requires QoS 1 PUBACKs in receive order. With several workers, batch 7 may commit before
batch 6: its acks must wait until 6 (and everything before it) committed too.
"""

from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")


class AckOrder(Generic[T]):
    """Numbers batches as they are handed out; ``committed(seq)`` returns, in receive order, the
    batches that may now be acknowledged (possibly none, possibly several)."""

    def __init__(self) -> None:
        self._next = 0  # sequence number of the next batch handed out
        self._head = 0  # oldest batch not yet acknowledged
        self._batches: dict[int, T] = {}
        self._committed: set[int] = set()

    def add(self, batch: T) -> int:
        seq = self._next
        self._next += 1
        self._batches[seq] = batch
        return seq

    def committed(self, seq: int) -> list[T]:
        if seq not in self._batches or seq in self._committed:
            return []  # a replay reported twice (worker died after reporting): already counted
        self._committed.add(seq)
        ready: list[T] = []
        while self._head in self._committed:
            self._committed.discard(self._head)
            ready.append(self._batches.pop(self._head))
            self._head += 1
        return ready

    def batch(self, seq: int) -> T:
        return self._batches[seq]

    def __len__(self) -> int:
        """Batches handed out and not yet acknowledged (committed ones waiting included)."""
        return len(self._batches)
