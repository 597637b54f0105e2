"""End-to-end acknowledgements against a real Mosquitto: a reading leaves the outbox only when
"ingest" (played here by an ``rpmflow-ingest`` client, :class:`~tests.gateway.observer.Acker`)
confirms it, so a broker that acknowledged and then lost a message loses nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from gateway.acks import MalformedAck, parse_ack
from gateway.outbox import Outbox
from gateway.publisher import Publisher, make_client
from gateway.settings import Settings
from simulators.embedded_mosquitto import EmbeddedMosquitto
from tests.gateway.observer import Acker, Observer
from tests.waiting import wait_for


def _settings(broker: EmbeddedMosquitto, gw: str, outbox: Path, **kw: Any) -> Settings:
    return Settings(gateway_id=gw, mqtt_url=broker.url_for(gw), outbox_path=outbox, outbox_capacity=1000,
                    status_interval_s=60, inflight_window=20, **kw)


def _mid(n: int) -> str:
    return f"{n:032x}"


def _fill(outbox: Outbox, n: int) -> set[str]:
    for i in range(n):
        payload = json.dumps({"schema": "rpmflow.reading.v1", "message_id": _mid(i), "raw": f"{i:04x}"})
        outbox.add(_mid(i), "glucose", "DEV", payload)
    return {_mid(i) for i in range(n)}


@pytest.fixture
def running() -> Iterator[list[Any]]:
    """Closes whatever the test started (publishers, clients, outboxes), last first."""
    things: list[Any] = []
    yield things
    for thing in reversed(things):
        if isinstance(thing, Publisher):
            thing.stop()
        else:
            thing.close()


def _start(settings: Settings, running: list[Any]) -> tuple[Outbox, Publisher]:
    outbox = Outbox(settings.outbox_path, settings.outbox_capacity, recover=True,
                    confirm_timeout_s=settings.confirm_timeout_s)
    running.append(outbox)
    publisher = Publisher.from_settings(make_client(settings), settings)
    running.append(publisher)
    return outbox, publisher


def test_rows_stay_published_until_ingest_confirms(
    broker: EmbeddedMosquitto, gateway_id: str, tmp_path: Path, running: list[Any]
) -> None:
    acker = Acker(broker, gateway_id, auto=False)
    observer = Observer(broker, gateway_id)
    running += [acker, observer]
    wait_for(lambda: acker.subscribed.is_set() and observer.subscribed.is_set(), 10, "test subscriptions")
    outbox, publisher = _start(_settings(broker, gateway_id, tmp_path / "o.sqlite3"), running)
    ids = _fill(outbox, 5)
    publisher.start()
    wait_for(lambda: acker.ids() == ids and outbox.counts()["published"] == 5, 15, "5 readings PUBACKed")
    assert outbox.depth() == 5 and publisher.stats.confirmed == 0
    publisher.request_status()
    wait_for(lambda: any(s.get("awaiting_confirmation") == 5 and s["outbox_depth"] == 5
                         for s in observer.statuses), 10, "status counts the published rows")

    wait_for(publisher.acks_subscribed.is_set, 10, "gateway subscribed to its acks")
    first = sorted(ids)[:3]
    acker.ack(first)
    wait_for(lambda: outbox.depth() == 2, 10, "3 confirmed rows deleted")
    assert {r.message_id for r in outbox.rows("published")} == ids - set(first)
    # malformed, misaddressed and unknown acks are logged and ignored; the pump keeps going
    acker.send(b"\xff not json")
    acker.send(json.dumps({"schema": "rpmflow.ack.v1", "gateway_id": "someone-else",
                           "message_ids": sorted(ids), "committed_at": "2026-01-01T00:00:00Z"}).encode())
    acker.ack([_mid(999)])
    acker.ack(sorted(ids - set(first)))
    wait_for(lambda: outbox.depth() == 0, 10, "every row confirmed")
    assert publisher.stats.malformed_acks == 2 and publisher.stats.confirmed == 5
    assert publisher.stats.resent == 0 and max(acker.received.values()) == 1


def test_unconfirmed_rows_are_sent_again_after_the_timeout(
    broker: EmbeddedMosquitto, gateway_id: str, tmp_path: Path, running: list[Any]
) -> None:
    acker = Acker(broker, gateway_id, auto=False)
    running.append(acker)
    wait_for(acker.subscribed.is_set, 10, "acker subscription")
    outbox, publisher = _start(_settings(broker, gateway_id, tmp_path / "o.sqlite3", confirm_timeout_s=0.3),
                               running)
    ids = _fill(outbox, 3)
    publisher.start()
    # 0.3 s then 0.6 s: the third delivery of each comes about a second after the first
    wait_for(lambda: acker.ids() == ids and min(acker.received.values()) >= 3, 15, "two re-sends each")
    assert publisher.stats.resent >= 6
    acker.ack(sorted(ids))
    wait_for(lambda: outbox.depth() == 0, 10, "confirmed after the re-sends")


@pytest.mark.slow
def test_broker_that_acked_and_lost_readings_loses_nothing(
    private_broker: EmbeddedMosquitto, tmp_path: Path, running: list[Any]
) -> None:
    """Published while no consumer is subscribed, the broker PUBACKs and drops every reading, as
    after a crash between its PUBACK and its next save. Then the broker is killed (-9) and
    restarted for good measure: the gateway must resubscribe to its acks on reconnect."""
    gw = "gw-lost"
    private_broker.add_gateways([gw])
    outbox, publisher = _start(_settings(private_broker, gw, tmp_path / "o.sqlite3", confirm_timeout_s=0.5),
                               running)
    ids = _fill(outbox, 20)
    publisher.start()
    wait_for(lambda: publisher.stats.acked >= 20, 15, "20 PUBACKs from a broker with no consumer")
    private_broker.kill()
    wait_for(lambda: not publisher.connected.is_set(), 15, "gateway notices the crash")
    private_broker.start()
    acker = Acker(private_broker, gw)  # ingest comes up after the crash
    running.append(acker)
    wait_for(acker.subscribed.is_set, 15, "ingest subscription")
    wait_for(lambda: outbox.depth() == 0, 40, "every reading confirmed after the re-sends")
    assert acker.ids() == ids
    assert publisher.stats.resent >= 20 and publisher.stats.connects >= 2


def test_server_acks_off_deletes_on_puback(
    broker: EmbeddedMosquitto, gateway_id: str, tmp_path: Path, running: list[Any]
) -> None:
    acker = Acker(broker, gateway_id, auto=False)  # receives, never confirms
    running.append(acker)
    wait_for(acker.subscribed.is_set, 10, "acker subscription")
    settings = replace(_settings(broker, gateway_id, tmp_path / "o.sqlite3"), server_acks=False)
    outbox, publisher = _start(settings, running)
    ids = _fill(outbox, 10)
    publisher.start()
    wait_for(lambda: outbox.depth() == 0, 15, "deleted on PUBACK alone")
    wait_for(lambda: acker.ids() == ids, 10, "all 10 delivered")
    assert publisher.stats.acked == 10 and not publisher.acks_subscribed.is_set()


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"[1, 2]",
        b'{"schema": "rpmflow.ack.v2", "gateway_id": "gw", "message_ids": []}',
        b'{"schema": "rpmflow.ack.v1", "gateway_id": "other", "message_ids": []}',
        b'{"schema": "rpmflow.ack.v1", "gateway_id": "gw", "message_ids": "abc"}',
        b'{"schema": "rpmflow.ack.v1", "gateway_id": "gw", "message_ids": ["ABC"]}',
        b'{"schema": "rpmflow.ack.v1", "gateway_id": "gw", "message_ids": [7]}',
        json.dumps({"schema": "rpmflow.ack.v1", "gateway_id": "gw",
                    "message_ids": ["0" * 32] * 1001}).encode(),
    ],
)
def test_malformed_acks_raise_a_typed_error(payload: bytes) -> None:
    with pytest.raises(MalformedAck):
        parse_ack(payload, "gw")


def test_well_formed_ack_parses() -> None:
    payload = json.dumps({"schema": "rpmflow.ack.v1", "gateway_id": "gw", "message_ids": [_mid(1), _mid(2)],
                          "committed_at": "2026-01-01T00:00:00Z"}).encode()
    assert parse_ack(payload, "gw").confirmed == [_mid(1), _mid(2)]


def test_ack_with_rejected_readings_names_them_apart_from_the_stored() -> None:
    payload = json.dumps({"schema": "rpmflow.ack.v1", "gateway_id": "gw", "message_ids": [_mid(1)],
                          "rejected": [{"message_id": _mid(2), "reason": "wrong_gateway"}],
                          "committed_at": "2026-01-01T00:00:00Z"}).encode()
    ack = parse_ack(payload, "gw")
    assert ack.confirmed == [_mid(1)]
    assert ack.rejected == [(_mid(2), "wrong_gateway")]
    assert ack.done == [_mid(1), _mid(2)]


@pytest.mark.parametrize("rejected", [
    "wrong_gateway", [{"message_id": "ABC", "reason": "wrong_gateway"}],
    [{"message_id": "0" * 32, "reason": "Not A Code"}], [["0" * 32, "wrong_gateway"]],
])
def test_malformed_rejected_entries_raise_a_typed_error(rejected: object) -> None:
    payload = json.dumps({"schema": "rpmflow.ack.v1", "gateway_id": "gw", "message_ids": [],
                          "rejected": rejected}).encode()
    with pytest.raises(MalformedAck):
        parse_ack(payload, "gw")
