"""A broker ACL that does not let ingest write ``rpm/v1/+/acks``: the refusal (MQTT v5 PUBACK
0x87) is logged with the topic and counted ``refused``, never ``delivered``; the readings are
still stored (the gateway keeps re-sending them until an ack gets through)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from simulators.embedded_mosquitto import EmbeddedMosquitto
from tests.ingest.helpers import (
    EXAMPLE,
    Publisher,
    count,
    dumps,
    enrol,
    make_settings,
    running_consumer,
    unique_reading,
)
from tests.waiting import wait_for


class NoAcksBroker(EmbeddedMosquitto):
    """The project's broker, its ACL missing the ingest account's ``topic write rpm/v1/+/acks``."""

    def _acl_text(self) -> str:
        return super()._acl_text().replace("topic write rpm/v1/+/acks\n", "")


@pytest.fixture
def no_acks_broker() -> Iterator[EmbeddedMosquitto]:
    b = NoAcksBroker.create()
    b.start()
    try:
        yield b
    finally:
        b.destroy()


def _sample(consumer: Any, result: str) -> float:
    value = consumer.metrics.registry.get_sample_value("rpmflow_ingest_acks_total", {"result": result})
    return float(value or 0.0)


def test_refused_acks_are_logged_and_not_counted_delivered(
        no_acks_broker: EmbeddedMosquitto, database_url: str, db: psycopg.Connection[Any],
        caplog: pytest.LogCaptureFixture) -> None:
    gw = "gw-noacks"
    no_acks_broker.add_gateways([gw])
    caplog.set_level(logging.ERROR, logger="ingest.acks")
    settings = make_settings(database_url, no_acks_broker.add_ingest(), workers=0)
    enrol(db, EXAMPLE["device"]["id"], gw)
    with running_consumer(settings) as consumer:
        pub = Publisher(no_acks_broker, gw)
        try:
            pub.publish_all([(f"rpm/v1/{gw}/readings", dumps(unique_reading(gw, n))) for n in range(3)])
        finally:
            pub.close()
        wait_for(lambda: _sample(consumer, "refused") >= 1, 20, "the broker's refusal of the ack")
        assert _sample(consumer, "delivered") == 0
    assert count(db, "SELECT count(*) FROM readings") == 3
    refusals = [r.getMessage() for r in caplog.records if "refused the ack" in r.getMessage()]
    assert len(refusals) == 1, refusals  # said once for the gateway, not per ack
    assert f"rpm/v1/{gw}/acks: not authorized (0x87)" in refusals[0]
