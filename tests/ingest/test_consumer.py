"""The consumer end to end (real Mosquitto, real PostgreSQL, consumer on a thread of the test)."""

from __future__ import annotations

import hashlib
from typing import Any

import psycopg
import pytest

from simulators.embedded_mosquitto import EmbeddedMosquitto
from simulators.embedded_postgres import DatabaseUrls
from tests.ingest.corpus import corpus
from tests.ingest.helpers import (
    EXAMPLE,
    HEX_ID,
    Publisher,
    count,
    dumps,
    enrol,
    forget_session,
    make_settings,
    reading,
    running_consumer,
    status,
    unique_reading,
)
from tests.waiting import wait_for

Conn = psycopg.Connection[tuple[Any, ...]]


@pytest.fixture(autouse=True)
def _enrolled(db: Conn, gateway_id: str) -> None:
    """The cuff of the test's gateway is enrolled on it (ingest refuses it from anywhere else)."""
    enrol(db, EXAMPLE["device"]["id"], gateway_id)


@pytest.mark.parametrize("workers", [0, 2], ids=["in-process", "2-workers"])
def test_malformed_messages_end_in_dead_letters_and_valid_ones_once(
    database_urls: DatabaseUrls,
    broker: EmbeddedMosquitto, gateway_id: str, database_url: str, db: Conn, workers: int
) -> None:
    odd_gateway = "gw!odd"  # the broker allows it, the contract's gateway id pattern does not
    broker.add_gateways([odd_gateway])
    cases = corpus(gateway_id)
    valid = reading(gateway_id=gateway_id)
    topic = f"rpm/v1/{gateway_id}/readings"
    with running_consumer(make_settings(database_urls.ingest, broker.add_ingest(), workers=workers)):
        pub, odd = Publisher(broker, gateway_id), Publisher(broker, odd_gateway)
        try:
            pub.publish_all([(topic, payload) for _, payload, _ in cases] + [(topic, dumps(valid))] * 3)
            pub.publish_all(
                [(f"rpm/v1/{gateway_id}/status", dumps(status(gateway_id, "2025-11-23T12:00:00Z")))],
                retain=True,
            )
            odd.publish_all([("rpm/v1/gw!odd/readings", dumps(reading(gateway_id=odd_gateway)))])
            wait_for(
                lambda: count(db, "SELECT count(*) FROM dead_letters") == len(cases) + 1,
                20,
                "every malformed message dead-lettered",
            )
            # Other tests' gateways leave retained statuses on the shared broker: count only ours.
            own_status = "SELECT count(*) FROM gateway_status WHERE gateway_id = %s"
            wait_for(lambda: count(db, own_status, gateway_id) == 1, 10, "gateway status")
            # Clearing the retained status (empty payload) is an MQTT operation, not a bad message.
            pub.publish_all([(f"rpm/v1/{gateway_id}/status", b"")], retain=True)
            marker = unique_reading(gateway_id, 99)  # published after the clear, so handled after it
            pub.publish_all([(topic, dumps(marker))])
            wait_for(lambda: count(db, "SELECT count(*) FROM readings") == 2, 10, "the marker reading")
        finally:
            pub.close()
            odd.close()
    letters = db.execute(
        "SELECT topic, gateway_id, error_class, reason, payload_whole_sha256 FROM dead_letters"
    ).fetchall()
    by_payload = {h: (t, g, c, r) for t, g, c, r, h in letters}  # oversized payloads are kept capped
    for case, payload, reason in cases:
        t, g, c, r = by_payload[hashlib.sha256(payload).hexdigest()]
        assert (t, g, c) == (topic, gateway_id, "ContractViolation"), case
        assert reason in r, (case, r)
    odd_letter = [r for t, _, _, r, _ in letters if t == "rpm/v1/gw!odd/readings"]
    assert len(odd_letter) == 1 and "is not rpm/v1/<gateway_id>" in odd_letter[0]
    assert count(db, "SELECT count(*) FROM readings WHERE message_id = %s", valid["message_id"]) == 1
    assert count(db, "SELECT count(*) FROM readings") == 2
    assert count(db, "SELECT count(*) FROM dead_letters") == len(cases) + 1
    assert db.execute(
        "SELECT online FROM gateway_status WHERE gateway_id = %s", (gateway_id,)
    ).fetchone() == (True,)


@pytest.mark.parametrize("shared", [False, True], ids=["plain", "shared"])
def test_messages_published_while_ingest_is_away_all_arrive(
    database_urls: DatabaseUrls,
    broker: EmbeddedMosquitto, gateway_id: str, database_url: str, db: Conn, shared: bool
) -> None:
    """The queue-cap trap: Mosquitto's default keeps 1000 messages for an offline session.

    Our broker config raises it and the consumer's session persists (fixed client id,
    clean_start=False, session expiry), so 1500 readings published while it is down all arrive.
    """
    settings = make_settings(database_urls.ingest, broker.add_ingest(), shared=shared)
    with running_consumer(settings, forget=False):
        pass  # creates the persistent session and its subscriptions, then goes away
    messages = [unique_reading(gateway_id, n) for n in range(1500)]
    pub = Publisher(broker, gateway_id)
    try:
        pub.publish_all([(f"rpm/v1/{gateway_id}/readings", dumps(m)) for m in messages])
    finally:
        pub.close()
    assert count(db, "SELECT count(*) FROM readings") == 0
    try:
        with running_consumer(settings, forget=False):
            wait_for(
                lambda: count(db, "SELECT count(*) FROM readings") == 1500, 30, "1500 queued readings stored"
            )
    finally:
        forget_session(settings.mqtt_url, settings.session_id)
    stored = {r[0] for r in db.execute(f"SELECT {HEX_ID} FROM readings")}
    assert stored == {m["message_id"] for m in messages}
    assert count(db, "SELECT count(*) FROM dead_letters") == 0


@pytest.mark.parametrize("workers", [0, 1], ids=["in-process", "1-worker"])
def test_example_is_stored_with_provenance(
    database_urls: DatabaseUrls,
    broker: EmbeddedMosquitto, gateway_id: str, database_url: str, db: Conn, workers: int
) -> None:
    msg = reading(gateway_id=gateway_id)
    with running_consumer(make_settings(database_urls.ingest, broker.add_ingest(), workers=workers)):
        pub = Publisher(broker, gateway_id)
        try:
            pub.publish_all([(f"rpm/v1/{gateway_id}/readings", dumps(msg))])
        finally:
            pub.close()
        wait_for(lambda: count(db, "SELECT count(*) FROM readings") == 1, 30, "the reading")
    row = db.execute(
        "SELECT encode(raw, 'hex'), replace(message_id::text, '-', ''), device_id, gateway_id, kind,"
        " systolic_mmhg FROM readings"
    ).fetchone()
    assert row is not None
    assert row == (msg["raw"], msg["message_id"], EXAMPLE["device"]["id"], gateway_id, "blood_pressure",
                   msg["values"]["systolic_mmhg"])
