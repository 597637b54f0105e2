"""The pure halves of the one commit path (ingest/commit.py), on plain data: no database, no broker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ingest.commit import items_of, outcome
from ingest.items import Accepted, DeadLetter
from ingest.writer import BatchResult
from tests.ingest.helpers import dumps, unique_reading


def test_items_keep_receive_order_and_skip_a_cleared_status() -> None:
    good = unique_reading("gw-1", 1)
    raw = [("rpm/v1/gw-1/readings", dumps(good)), ("rpm/v1/gw-1/status", b""),
           ("rpm/v1/gw-1/readings", b"not json")]
    items = items_of(raw, datetime.now(UTC))
    assert [type(x) for x in items] == [Accepted, DeadLetter]
    assert isinstance(items[0], Accepted) and items[0].reading.message_id == good["message_id"]


def test_outcome_counts_lags_and_acks_what_was_committed() -> None:
    raw = [("rpm/v1/gw-1/readings", dumps(unique_reading("gw-1", n))) for n in range(3)]
    raw.append(("rpm/v1/gw-2/readings", b"{}"))
    items = items_of(raw, datetime.now(UTC))
    accepted = [x for x in items if isinstance(x, Accepted)]
    refused = DeadLetter("rpm/v1/gw-1/readings", "gw-1", "RowRefused", "NUL byte", b"{}")
    done = max(x.reading.received_at for x in accepted) + timedelta(seconds=2)
    out = outcome(items, BatchResult(inserted=2, duplicates=1, refused=[refused]), done=done,
                  seconds=0.25, retries=1)
    assert (out.inserted, out.duplicates, out.seconds, out.retries) == (2, 1, 0.25, 1)
    assert out.dead_letters == {"ContractViolation": 1, "RowRefused": 1}
    assert len(out.lags) == 3 and min(out.lags) >= 2.0
    assert out.acks == {"gw-1": [x.reading.message_id for x in accepted]}  # the bad one has no id
