"""Issue 14: ingest reaches a TLS broker through the CA file it is given (RPMFLOW_INGEST_MQTT_CA_FILE)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from simulators.embedded_mosquitto import INGEST_USER, EmbeddedMosquitto
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


@pytest.fixture(scope="module")
def tls_broker() -> Iterator[EmbeddedMosquitto]:
    b = EmbeddedMosquitto.create(tls=True)
    b.start()
    try:
        yield b
    finally:
        b.destroy()


def test_ingest_over_mqtts_with_the_ca_file_stores_readings(
    tls_broker: EmbeddedMosquitto, database_url: str, db: psycopg.Connection[Any]
) -> None:
    gw = "gw-tls-ingest"
    tls_broker.add_gateways([gw])
    settings = make_settings(database_url, tls_broker.tls_url_for(INGEST_USER), workers=0,
                             mqtt_ca_file=str(tls_broker.ca_file))
    enrol(db, EXAMPLE["device"]["id"], gw)
    with running_consumer(settings, forget=False):
        pub = Publisher(tls_broker, gw)  # the gateway on the plain loopback listener
        try:
            pub.publish_all([(f"rpm/v1/{gw}/readings", dumps(unique_reading(gw, 1)))])
        finally:
            pub.close()
        wait_for(lambda: count(db, "SELECT count(*) FROM readings") == 1, 20, "the reading over TLS")

