"""Fleet load generator: many virtual gateways publishing valid readings at a target rate.

Each virtual gateway is its own MQTT v5 client with its own credentials (the broker ACL lets it
write only ``rpm/v1/<id>/readings``). Messages are built in ``fleet_messages.py`` with the wire
contract's constants and message-id recipe (``gateway.contract``, stdlib only; nothing else of the
gateway or ingest), published at QoS 1, and counted as delivered only on
PUBACK. Each gateway keeps at most ``window`` publishes un-acked (paho overwrites/refuses past ~65k
queued; DOMAIN.md I2), so publishing blocks instead of queueing without bound.

Modes: live (readings measured "now"; a device producing faster than one per second walks back in
time so every message id stays unique) and backfill (``--backfill-days``: each device's history over
the last N days, published as fast as the rate allows).

CLI: ``rpmflow-sim fleet`` (``simulators/fleet_cli.py``).
"""

from __future__ import annotations

import logging
import random
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from gateway.contract import (
    KIND_BLOOD_PRESSURE,
    KIND_GLUCOSE,
    KIND_SPO2,
    KIND_WEIGHT,
    acks_topic,
    readings_topic,
)
from simulators.fleet_acks import Confirmations
from simulators.fleet_messages import VirtualDevice, build_reading

log = logging.getLogger(__name__)


# -- configuration and report -------------------------------------------------------------------------


@dataclass(frozen=True)
class FleetConfig:
    gateways: int = 10
    devices_per_gateway: int = 5
    rate: float = 1000.0  # messages/s over the whole fleet; 0 = as fast as possible
    count: int | None = 10_000  # total readings (live mode); None = until duration/stop
    duration_s: float | None = None
    window: int = 500  # un-acked publishes per gateway
    backfill_days: int = 0  # > 0: backfill mode (history of the last N days)
    per_day: int = 2  # backfill: readings per device per day
    glucose_share: float = 0.3
    vitals_share: float = 0.0  # scales and pulse oximeters (weight / spo2 readings)
    seed: int | None = None
    prefix: str = "sim-gw"
    keep_ids: bool = True
    # As a real gateway: keep each reading until ingest's end-to-end ack names it, resend it after
    # confirm_timeout_s (simulators/fleet_acks.py); run_fleet returns once all are confirmed.
    confirm: bool = False
    confirm_timeout_s: float = 10.0

    def gateway_ids(self) -> list[str]:
        return [f"{self.prefix}-{i:04d}" for i in range(self.gateways)]


@dataclass
class FleetReport:
    gateways: int
    target_rate: float
    published: int = 0
    acked: int = 0
    refused: int = 0
    confirmed: int = 0  # confirm mode: readings ingest acknowledged end to end
    resent: int = 0  # confirm mode: re-sends after the confirmation deadline
    elapsed_s: float = 0.0
    message_ids: list[str] = field(default_factory=list)
    late_s: float = 0.0  # pre-built schedule (bench/mqtt_blast.py): latest send's lag behind its stamp

    @property
    def rate(self) -> float:
        return self.acked / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def table(self) -> str:
        target = "max" if self.target_rate <= 0 else f"{self.target_rate:,.0f}"
        rows = [("gateways", f"{self.gateways}"), ("target rate (msg/s)", target),
                ("published", f"{self.published:,}"), ("acked (PUBACK)", f"{self.acked:,}"),
                ("refused by broker", f"{self.refused:,}"), ("confirmed by ingest", f"{self.confirmed:,}"),
                ("re-sent (no confirmation)", f"{self.resent:,}"), ("elapsed (s)", f"{self.elapsed_s:.2f}"),
                ("achieved rate (msg/s)", f"{self.rate:,.0f}")]
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"{k:<{width}}  {v:>12}" for k, v in rows)


# -- one virtual gateway ------------------------------------------------------------------------------


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int

    @classmethod
    def parse(cls, url: str) -> BrokerAddress:
        parts = urlsplit(url)
        if parts.scheme != "mqtt" or not parts.hostname:
            raise ValueError(f"broker URL must be mqtt://host:port, got {url!r}")
        return cls(parts.hostname, parts.port or 1883)


class VirtualGateway:
    """One MQTT client; ``publish`` blocks while ``window`` publishes wait for their PUBACK."""

    def __init__(self, gateway_id: str, password: str, broker: BrokerAddress, window: int,
                 confirmations: Confirmations | None = None) -> None:
        self.gateway_id = gateway_id
        self.topic = readings_topic(gateway_id)
        self.confirmations = confirmations
        self._window = window
        self._cond = threading.Condition()
        self._outstanding = 0
        self.acked = 0
        self.refused = 0
        self.connected = threading.Event()
        self._broker = broker
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{gateway_id}-fleet-{secrets.token_hex(3)}",
                        protocol=mqtt.MQTTv5)
        c.username_pw_set(gateway_id, password)
        c.max_inflight_messages_set(window)
        c.reconnect_delay_set(1, 5)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_publish = self._on_publish
        if confirmations is not None:
            c.on_message = lambda client, userdata, msg: confirmations.on_ack(bytes(msg.payload))
        self._client = c

    def start(self) -> None:
        self._client.connect_async(self._broker.host, self._broker.port, keepalive=30)
        self._client.loop_start()

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: mqtt.ConnectFlags,
                    reason_code: ReasonCode, properties: Properties | None) -> None:
        if reason_code.is_failure:
            log.error("gateway %s refused by the broker: %s", self.gateway_id, reason_code)
        else:
            if self.confirmations is not None:  # every connect: the session may be new
                client.subscribe(acks_topic(self.gateway_id), qos=1)
            self.connected.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: mqtt.DisconnectFlags,
                       reason_code: ReasonCode, properties: Properties | None) -> None:
        self.connected.clear()

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason_code: ReasonCode,
                    properties: Properties | None) -> None:
        with self._cond:
            self._outstanding -= 1
            if reason_code.is_failure:
                self.refused += 1
            else:
                self.acked += 1
            self._cond.notify_all()

    def publish(self, payload: bytes, message_id: str | None = None) -> None:
        if self.confirmations is not None and message_id is not None:
            self.confirmations.sent(message_id, payload)
        with self._cond:
            while self._outstanding >= self._window:
                self._cond.wait(1.0)
            self._outstanding += 1  # before publish(): on_publish may fire before it returns
        self._client.publish(self.topic, payload, qos=1)

    def wait_acked(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._outstanding > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 1.0))
        return True

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


# -- the fleet ----------------------------------------------------------------------------------------


def _device_kind(rng: random.Random, config: FleetConfig) -> tuple[str, str]:
    """A device's (kind, model): ``vitals_share`` of devices are scales or oximeters (half each),
    then ``glucose_share`` of the rest are glucose meters. With ``vitals_share`` 0 the draw is the
    one older runs made, so their seeds reproduce the same fleet."""
    if config.vitals_share > 0 and rng.random() < config.vitals_share:
        return (KIND_WEIGHT, "SIM-WS") if rng.random() < 0.5 else (KIND_SPO2, "SIM-OX")
    glucose = rng.random() < config.glucose_share
    return (KIND_GLUCOSE, "SIM-GLU") if glucose else (KIND_BLOOD_PRESSURE, "SIM-BP")


def make_devices(config: FleetConfig, gateway_ids: Sequence[str]) -> list[tuple[str, VirtualDevice]]:
    rng = random.Random(config.seed)
    tag = f"{rng.getrandbits(24):06x}" if config.seed is not None else secrets.token_hex(3)
    out = []
    for g, gw in enumerate(gateway_ids):
        for d in range(config.devices_per_gateway):
            kind, model = _device_kind(rng, config)
            dev_id = f"SIM-{tag}-{g:04d}-{d:03d}"
            out.append((gw, VirtualDevice(dev_id, kind, model, random.Random(rng.getrandbits(32)))))
    return out


Build = Callable[[], tuple[str, bytes]]  # → (message_id, payload), stamped when called


def _stamped_now(gw: str, dev: VirtualDevice, measured_at: datetime | None) -> tuple[str, bytes]:
    """One reading whose ``received_at`` (the gateway's stamp, where publish → commit starts) is
    now: built when it is published, not when it was scheduled (``measured_at`` None: live)."""
    now = datetime.now(UTC)
    return build_reading(gw, dev, measured_at or dev.next_time(now), now)


def _schedule(config: FleetConfig, devices: list[tuple[str, VirtualDevice]],
              stop: threading.Event) -> Iterator[tuple[str, Build]]:
    """(gateway_id, build) in publish order; ``build()`` stamps and builds the message, so the
    publisher calls it once the pacing has let the message go (a stamp taken before the pacing
    sleep counted that sleep as publish → commit latency)."""
    if config.backfill_days > 0:
        now = datetime.now(UTC).replace(microsecond=0)
        start = now - timedelta(days=config.backfill_days)
        slots = config.backfill_days * config.per_day
        step = timedelta(days=config.backfill_days) / slots
        for k in range(slots):
            for i, (gw, dev) in enumerate(devices):
                if stop.is_set():
                    return
                t = (start + step * k + timedelta(seconds=(i * 7919 + k * 31) % 3600)).replace(microsecond=0)
                yield gw, partial(_stamped_now, gw, dev, t)
        return
    n = 0
    while not stop.is_set() and (config.count is None or n < config.count):
        gw, dev = devices[n % len(devices)]
        yield gw, partial(_stamped_now, gw, dev, None)
        n += 1


def enrol_devices(conninfo: str, devices: Sequence[tuple[str, VirtualDevice]]) -> None:
    """Enrol each simulated device on its gateway, as an admin would: ingest refuses the readings
    of a device enrolled on another gateway or on none (ingest/binding.py)."""
    import psycopg

    from triage.clinical.devices_store import SimulatedDevice, provision_simulated

    since = datetime(2015, 1, 1, tzinfo=UTC)
    with psycopg.connect(conninfo) as conn, conn.transaction():
        provision_simulated(conn, [SimulatedDevice(d.device_id, d.kind, gw, "SIMULATED", d.model)
                                   for gw, d in devices],
                            since=since, by="rpmflow-sim fleet", reason="simulated fleet")


def provision(broker: Any, config: FleetConfig) -> dict[str, str]:
    """Create the fleet's accounts on an ``embedded_mosquitto.EmbeddedMosquitto``; returns credentials."""
    creds: dict[str, str] = broker.add_gateways(config.gateway_ids())
    return creds


def run_fleet(broker_url: str, credentials: Mapping[str, str], config: FleetConfig, *,
              stop: threading.Event | None = None, connect_timeout: float = 30.0,
              ack_timeout: float = 120.0,
              on_published: Callable[[str], None] | None = None,
              devices: list[tuple[str, VirtualDevice]] | None = None) -> FleetReport:
    """Publish per ``config``; returns when every publish is acked (or ``ack_timeout`` passes).
    ``devices``: the ones :func:`make_devices` made (and :func:`enrol_devices` enrolled) before."""
    stop = stop or threading.Event()
    address = BrokerAddress.parse(broker_url)
    gateway_ids = config.gateway_ids()
    missing = [g for g in gateway_ids if g not in credentials]
    if missing:
        raise ValueError(f"no credentials for {len(missing)} gateway(s), e.g. {missing[0]}")
    gateways = {g: VirtualGateway(g, credentials[g], address, config.window,
                                  Confirmations(g, config.confirm_timeout_s) if config.confirm else None)
                for g in gateway_ids}
    report = FleetReport(gateways=len(gateways), target_rate=config.rate)
    for gw in gateways.values():
        gw.start()
    try:
        deadline = time.monotonic() + connect_timeout
        for gw in gateways.values():
            if not gw.connected.wait(max(deadline - time.monotonic(), 0.0)):
                raise TimeoutError(f"gateway {gw.gateway_id} did not connect within {connect_timeout}s")
        devices = devices or make_devices(config, gateway_ids)
        t0 = time.monotonic()
        end = t0 + config.duration_s if config.duration_s else None
        next_resend = t0 + 0.5
        for gw_id, build in _schedule(config, devices, stop):
            if end is not None and time.monotonic() >= end:
                break
            _pace(t0 + report.published / config.rate if config.rate > 0 else 0.0)
            mid, payload = build()  # stamped now: the pacing sleep is not publish latency
            gateways[gw_id].publish(payload, mid)
            report.published += 1
            if config.confirm and time.monotonic() >= next_resend:
                _resend_expired(gateways.values())
                next_resend = time.monotonic() + 0.5
            if config.keep_ids:
                report.message_ids.append(mid)
            if on_published is not None:
                on_published(mid)
        wait_until = time.monotonic() + ack_timeout
        for gw in gateways.values():
            gw.wait_acked(max(wait_until - time.monotonic(), 0.0))
        if config.confirm:
            _wait_confirmed(gateways.values(), wait_until)
        report.elapsed_s = time.monotonic() - t0
    finally:
        for gw in gateways.values():
            gw.stop()
    report.acked = sum(g.acked for g in gateways.values())
    report.refused = sum(g.refused for g in gateways.values())
    confirmations = [g.confirmations for g in gateways.values() if g.confirmations is not None]
    report.confirmed = sum(c.confirmed for c in confirmations)
    report.resent = sum(c.resent for c in confirmations)
    return report


def _pace(due: float) -> None:
    """Sleep until ``due`` (monotonic), unless it is less than 2 ms away."""
    delay = due - time.monotonic()
    if delay > 0.002:
        time.sleep(delay)


def _resend_expired(gateways: Iterable[VirtualGateway]) -> None:
    for gw in gateways:
        if gw.confirmations is not None:
            for mid, payload in gw.confirmations.expired():
                gw.publish(payload, mid)


def _wait_confirmed(gateways: Iterable[VirtualGateway], until: float) -> None:
    """Confirm mode: resend what ingest has not confirmed in time until all is confirmed (or ``until``)."""
    pending = [g for g in gateways if g.confirmations is not None]
    while pending and time.monotonic() < until:
        _resend_expired(pending)
        pending = [g for g in pending if g.confirmations is not None and g.confirmations.open]
        if pending and pending[0].confirmations is not None:
            pending[0].confirmations.wait_empty(0.2)
