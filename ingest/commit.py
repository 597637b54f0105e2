"""The one commit path of ingest, shared by the in-process consumer and the worker processes.

raw ``(topic, payload)`` → :func:`items_of` (pure: validation and grading, ``ingest/pipeline.py``)
→ :func:`commit` (the only I/O: one transaction through the writer, retried with full-jitter
back-off while the database is unavailable, bounded for refused credentials) → :func:`outcome`
(pure: what to acknowledge to the gateways and what to count). The caller then acknowledges:
the gateways first (``ingest/acks.py``), then the broker's PUBACKs in receive order.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import NamedTuple

from gateway.runtime.retry import ErrorKind, retry_call
from ingest.acks import (
    AckGroups,
    Rejections,
    ack_groups,
    dead_letter_message_id,
    readings_gateway,
    rejection_groups,
)
from ingest.db import commit_kind, commit_policy
from ingest.items import Accepted, DeadLetter, Item, Rejection
from ingest.metrics import Metrics
from ingest.pipeline import classify
from ingest.writer import BatchResult, BatchWriter

Raw = tuple[str, bytes]
OnRetry = Callable[[BaseException, ErrorKind, float], None]


class Outcome(NamedTuple):
    """A committed batch, as the metrics and the acknowledgements need it (picklable: a worker
    sends it to the receiver)."""

    inserted: int
    duplicates: int
    statuses: int
    dead_letters: dict[str, int]  # by error class, contract and database refusals together
    lags: list[float]  # gateway received_at → commit, per accepted reading (seconds)
    seconds: float  # write + commit of the successful attempt
    retries: int
    acks: AckGroups  # gateway id (from the topic) → message ids stored (or already, from it)
    rejected: Rejections  # gateway id (from the topic) → (message id, reason) dead-lettered


def items_of(raw: Iterable[Raw], now: datetime) -> list[Item]:
    """What to store for each message, in receive order (pure)."""
    return [x for x in (classify(topic, payload, now=now) for topic, payload in raw) if x is not None]


def outcome(items: list[Item], result: BatchResult, *, done: datetime, seconds: float,
            retries: int) -> Outcome:
    """Counts, lags and acknowledgements of a committed batch (pure: ``done`` is passed in)."""
    letters: Counter[str] = Counter()
    lags: list[float] = []
    for item in items:
        if isinstance(item, Accepted):
            lags.append(max((done - item.reading.received_at).total_seconds(), 0.0))
        elif isinstance(item, DeadLetter):
            letters[item.error_class] += 1
    for letter in [*result.refused, *result.unbound]:
        letters[letter.error_class] += 1
    refused = [*result.rejected, *_refused_rows(result)]
    return Outcome(result.inserted, result.duplicates, result.statuses, dict(letters), lags, seconds,
                   retries, ack_groups(items, refused),
                   rejection_groups(items, result.rejected, result.refused))


def _refused_rows(result: BatchResult) -> list[Rejection]:
    """The readings PostgreSQL refused (dead letters of the row-by-row path), to keep out of the
    confirmed ids."""
    out = []
    for letter in result.refused:
        gw, mid = readings_gateway(letter.topic), dead_letter_message_id(letter.payload)
        if gw is not None and mid is not None:
            out.append(Rejection(gw, mid, "row_refused"))
    return out


def commit(writer: BatchWriter, items: list[Item], *, auth_timeout_s: float,
           deadline: Callable[[], float | None] | None = None, on_retry: OnRetry | None = None) -> Outcome:
    """Write ``items`` in one transaction, retrying while the database is unavailable; raises
    :class:`~gateway.runtime.retry.GaveUp` (credentials refused past the bound, a missing
    database, or ``deadline`` passed: the caller acks nothing)."""
    retries = 0

    def attempt() -> tuple[BatchResult, float]:
        started = time.monotonic()
        return writer.write(items), time.monotonic() - started

    def retried(exc: BaseException, kind: ErrorKind, delay: float) -> None:
        nonlocal retries
        retries += 1
        if on_retry is not None:
            on_retry(exc, kind, delay)

    result, seconds = retry_call(attempt, what="cannot commit to the database", classify=commit_kind,
                                 policy=commit_policy(auth_timeout_s), deadline=deadline, on_retry=retried)
    return outcome(items, result, done=datetime.now(UTC), seconds=seconds, retries=retries)


def record(m: Metrics, done: Outcome, *, retries: bool) -> None:
    """Count one committed batch: the consumer's own (its retries were counted as they happened:
    ``retries=False``), or a worker's report to the receiver (``retries=True``)."""
    m.batches.inc()
    m.batch_seconds.observe(done.seconds)
    if retries and done.retries:
        m.retries.inc(done.retries)
    m.messages.labels("inserted").inc(done.inserted)
    m.messages.labels("duplicate").inc(done.duplicates)
    m.messages.labels("status").inc(done.statuses)
    m.messages.labels("dead_letter").inc(sum(done.dead_letters.values()))
    for error_class, n in done.dead_letters.items():
        m.dead_letters.labels(error_class).inc(n)
    observe = m.commit_lag.observe
    for lag in done.lags:
        observe(lag)
