"""Publisher against a real Mosquitto, outage and recovery: with ``server_acks=False`` rows leave
the outbox only on PUBACK (the end-to-end acknowledgement is covered in test_server_ack.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.outbox import Outbox
from gateway.publisher import Publisher, make_client
from gateway.settings import Settings
from simulators.embedded_mosquitto import EmbeddedMosquitto
from tests.gateway.observer import Observer
from tests.waiting import wait_for


def _settings(broker: EmbeddedMosquitto, gw: str, outbox: Path) -> Settings:
    return Settings(
        gateway_id=gw,
        mqtt_url=broker.url_for(gw),
        outbox_path=outbox,
        outbox_capacity=1000,
        status_interval_s=60,
        inflight_window=20,
        server_acks=False,  # this test is about the broker link: PUBACK is the delivery signal
    )


@pytest.fixture
def observer(private_broker: EmbeddedMosquitto) -> Iterator[Observer]:
    private_broker.add_gateways(["gw-pub"])
    obs = Observer(private_broker, "gw-pub")
    wait_for(obs.subscribed.is_set, 10, "observer subscription")
    yield obs
    obs.close()


def _fill(outbox: Outbox, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        payload = json.dumps({"schema": "rpmflow.reading.v1", "message_id": f"{i:032x}", "raw": f"{i:04x}"})
        outbox.add(f"{i:032x}", "glucose", "DEV", payload)


def test_rows_stay_while_broker_is_down_and_drain_when_back(
    private_broker: EmbeddedMosquitto, observer: Observer, tmp_path: Path
) -> None:
    settings = _settings(private_broker, "gw-pub", tmp_path / "o.sqlite3")
    outbox = Outbox(settings.outbox_path, settings.outbox_capacity, recover=True)
    _fill(outbox, 50)
    publisher = Publisher.from_settings(make_client(settings), settings)
    publisher.start()
    try:
        wait_for(lambda: outbox.depth() == 0, 20, "first 50 rows acknowledged")
        wait_for(lambda: observer.count() == 50, 10, "observer sees 50")
        assert publisher.stats.acked == 50

        private_broker.stop()
        wait_for(lambda: not publisher.connected.is_set(), 20, "publisher notices the outage")
        _fill(outbox, 120, start=50)
        publisher.wake()
        # nothing can be acknowledged: every row is still in the outbox (pending or in flight)
        wait_for(lambda: outbox.counts()["in_flight"] > 0 or publisher.stats.published == 50, 5, "claim")
        assert outbox.depth() == 120

        private_broker.start()
        wait_for(lambda: outbox.depth() == 0, 40, "outbox drained after the broker came back")
        wait_for(lambda: len(observer.by_id) == 170, 20, "observer sees all 170 message ids")
        assert set(observer.by_id) == {f"{i:032x}" for i in range(170)}
    finally:
        publisher.stop()
        outbox.close()
    wait_for(lambda: any(not s["online"] for s in observer.statuses), 10, "offline status on clean stop")
