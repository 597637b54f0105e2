"""Issue 14, small items on the ingest side: capped dead letters, statuses from the future."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from ingest.pipeline import classify
from ingest.writer import DEAD_LETTER_KEEP, BatchWriter, DeadLetter, Item
from tests.ingest.helpers import dumps, status

GW = "gw-0001"
Conn = psycopg.Connection[tuple[Any, ...]]


@pytest.fixture
def writer(database_url: str) -> Any:
    w = BatchWriter(database_url)
    yield w
    w.close()


def _item(topic: str, payload: bytes) -> Item:
    out = classify(topic, payload, now=datetime.now(UTC))
    assert out is not None
    return out


def test_an_oversized_dead_letter_keeps_64_kib_plus_size_and_hash_of_the_whole(
    writer: BatchWriter, db: Conn
) -> None:
    payload = b"{" + b"x" * (1024 * 1024 - 2) + b"}"  # 1 MiB of malformed JSON, what the broker allows
    letter = _item(f"rpm/v1/{GW}/readings", payload)
    assert isinstance(letter, DeadLetter)
    writer.write([letter])
    row = db.execute(
        "SELECT octet_length(payload), payload_size, payload_whole_sha256, substring(payload from 1 for 8)"
        " FROM dead_letters"
    ).fetchone()
    assert row is not None
    assert row[0] == DEAD_LETTER_KEEP == 65536
    assert row[1] == len(payload)
    assert row[2] == hashlib.sha256(payload).hexdigest()
    assert bytes(row[3]) == payload[:8]


def test_a_small_dead_letter_is_kept_whole(writer: BatchWriter, db: Conn) -> None:
    payload = b"not json"
    writer.write([_item(f"rpm/v1/{GW}/readings", payload)])
    row = db.execute("SELECT payload, payload_size, payload_whole_sha256 FROM dead_letters").fetchone()
    assert row is not None
    assert (bytes(row[0]), row[1], row[2]) == (payload, 8, hashlib.sha256(payload).hexdigest())


def test_a_status_from_the_future_is_stored_but_does_not_freeze_last_seen(
    writer: BatchWriter, db: Conn
) -> None:
    topic = f"rpm/v1/{GW}/status"
    future = (datetime.now(UTC) + timedelta(days=365)).strftime("%Y-%m-%dT%H:%M:%SZ")
    writer.write([_item(topic, dumps(status(GW, future, online=False)))])
    row = db.execute("SELECT online, updated_at <= now(), status->>'at' FROM gateway_status").fetchone()
    assert row == (False, True, future)  # stored as received, last seen not in the future
    real = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    writer.write([_item(topic, dumps(status(GW, real, online=True)))])
    again = db.execute("SELECT online, status->>'at' FROM gateway_status").fetchone()
    assert again == (True, real)  # the gateway's next honest status is not shadowed
