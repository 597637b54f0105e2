"""Ingest configuration: one frozen object built from ``RPMFLOW_INGEST_*`` (+ shared) variables.

| variable | default | meaning |
|---|---|---|
| ``RPMFLOW_DATABASE_URL`` | required | PostgreSQL URL |
| ``RPMFLOW_INGEST_MQTT_URL`` / ``RPMFLOW_MQTT_URL`` | required | ``mqtt://user:pw@host:port`` |
| ``RPMFLOW_INGEST_CLIENT_ID`` | ``rpmflow-ingest-0`` | fixed MQTT client id (the persistent session) |
| ``RPMFLOW_INGEST_GROUP`` | ``rpmflow-ingest`` | shared-subscription group |
| ``RPMFLOW_INGEST_SHARED`` | false | true: subscribe through ``$share/<group>/`` (several processes) |
| ``RPMFLOW_INGEST_BATCH_SIZE`` | 500 | commit when this many messages are waiting |
| ``RPMFLOW_INGEST_BATCH_MS`` | 200 | or when the oldest has waited this long |
| ``RPMFLOW_INGEST_RECEIVE_MAXIMUM`` | 2000 | MQTT v5 Receive Maximum (un-acked in flight) |
| ``RPMFLOW_INGEST_SESSION_EXPIRY_S`` | 604800 | broker keeps our session (and queue) this long |
| ``RPMFLOW_INGEST_METRICS_PORT`` | 0 | Prometheus port (0 = off) |
| ``RPMFLOW_INGEST_WORKERS`` | 2 | worker processes validating + writing (0 = all in the receiver process) |
| ``RPMFLOW_INGEST_DRAIN_TIMEOUT_S`` | 15 | on SIGTERM, how long to try committing the last batch |
| ``RPMFLOW_INGEST_SEND_ACKS`` | true | publish commit acks to ``rpm/v1/<gw>/acks`` (ingest/acks.py) |
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import unquote, urlsplit

PREFIX = "RPMFLOW_INGEST_"


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class MqttTarget:
    host: str
    port: int
    username: str | None
    password: str | None
    tls: bool


def parse_mqtt_url(url: str) -> MqttTarget:
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts"):
        raise SettingsError(f"MQTT URL must start with mqtt:// or mqtts://, got {parts.scheme!r}")
    if not parts.hostname:
        raise SettingsError("MQTT URL has no host")
    tls = parts.scheme == "mqtts"
    return MqttTarget(
        host=parts.hostname,
        port=parts.port or (8883 if tls else 1883),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        tls=tls,
    )


def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


@dataclass(frozen=True)
class Settings:
    database_url: str
    mqtt_url: str
    client_id: str = "rpmflow-ingest-0"
    group: str = "rpmflow-ingest"
    # Plain subscription by default: Mosquitto 2.0 does not restore shared subscriptions (nor
    # their queued/in-flight messages) across a broker restart; see docs/ingest.md.
    shared: bool = False
    batch_size: int = 500
    batch_ms: int = 200
    receive_maximum: int = 2000
    session_expiry_s: int = 7 * 24 * 3600
    metrics_port: int = 0
    drain_timeout_s: float = 15.0
    # Worker processes behind the one MQTT receiver (ingest/receiver.py); 0 = validate and write
    # on the receiver's own threads (ingest/consumer.py). Default chosen by bench/ingest_bench.py.
    workers: int = 2
    # End-to-end acks to gateways after each commit (ingest/acks.py).
    send_acks: bool = True

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size <= 50_000:
            raise SettingsError(f"{PREFIX}BATCH_SIZE must be 1..50000, got {self.batch_size}")
        if self.batch_ms < 1:
            raise SettingsError(f"{PREFIX}BATCH_MS must be >= 1, got {self.batch_ms}")
        if not 1 <= self.receive_maximum <= 65535:
            raise SettingsError(f"{PREFIX}RECEIVE_MAXIMUM must be 1..65535, got {self.receive_maximum}")
        if self.session_expiry_s < 1:
            raise SettingsError(f"{PREFIX}SESSION_EXPIRY_S must be >= 1 (a persistent session)")
        if not 0 <= self.metrics_port <= 65535:
            raise SettingsError(f"{PREFIX}METRICS_PORT must be 0..65535, got {self.metrics_port}")
        if not 0 <= self.workers <= 32:
            raise SettingsError(f"{PREFIX}WORKERS must be 0..32, got {self.workers}")
        if not self.client_id or "/" in self.client_id:
            raise SettingsError(f"{PREFIX}CLIENT_ID must be a non-empty id without '/'")
        if not self.group or any(c in self.group for c in "/+#"):
            raise SettingsError(f"{PREFIX}GROUP must not be empty or contain / + #")
        parse_mqtt_url(self.mqtt_url)

    @property
    def mqtt(self) -> MqttTarget:
        return parse_mqtt_url(self.mqtt_url)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Read once at the entry point; a missing required variable fails here, by name."""
        database_url = environ.get("RPMFLOW_DATABASE_URL")
        if not database_url:
            raise SettingsError("RPMFLOW_DATABASE_URL is required")
        mqtt_url = environ.get(PREFIX + "MQTT_URL") or environ.get("RPMFLOW_MQTT_URL")
        if not mqtt_url:
            raise SettingsError(f"{PREFIX}MQTT_URL (or RPMFLOW_MQTT_URL) is required")
        kwargs: dict[str, Any] = {}
        for name, conv in (("CLIENT_ID", str), ("GROUP", str), ("SHARED", _bool), ("BATCH_SIZE", int),
                           ("BATCH_MS", int), ("RECEIVE_MAXIMUM", int), ("SESSION_EXPIRY_S", int),
                           ("METRICS_PORT", int), ("DRAIN_TIMEOUT_S", float), ("WORKERS", int),
                           ("SEND_ACKS", _bool)):
            raw = environ.get(PREFIX + name)
            if raw is None or raw == "":
                continue
            try:
                kwargs[name.lower()] = conv(raw)
            except ValueError:
                kind = conv.__name__.strip("_")
                raise SettingsError(f"{PREFIX}{name} must be a {kind}, got {raw!r}") from None
        return cls(database_url=database_url, mqtt_url=mqtt_url, **kwargs)

    def override(self, **changes: Any) -> Settings:
        """CLI flags win over the environment; ``None`` means "flag not given"."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})
