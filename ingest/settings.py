"""Ingest configuration: one frozen object built from ``RPMFLOW_INGEST_*`` (+ shared) variables.

Declared once with :func:`gateway.runtime.settings.setting`: ``load(Settings, environ, args)``
reads it, ``add_flags`` makes the ``rpmflow-ingest run`` flags from it, and ``rpmflow-ingest run
--help`` shows every variable with its default. The table in docs/ingest.md is checked against
these fields by tests/test_settings_docs.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateway.runtime import settings as rs
from gateway.runtime.settings import SettingError, setting
from gateway.runtime.urls import MqttTarget, plaintext_problem
from gateway.runtime.urls import parse_mqtt_url as _parse_url
from ingest.dberrors import check_url

PREFIX = "RPMFLOW_INGEST_"
SettingsError = SettingError  # the name the ingest code and tests have always used

__all__ = ["PREFIX", "MqttTarget", "Settings", "SettingsError", "parse_mqtt_url"]


def parse_mqtt_url(url: str) -> MqttTarget:
    try:
        return _parse_url(url)
    except ValueError as exc:
        raise SettingError("mqtt_url", f"MQTT URL {exc}", env=PREFIX + "MQTT_URL",
                           flag="--mqtt-url") from None


def _client_id(value: str) -> str | None:
    return None if "/" not in value else "must be an id without '/'"


def _group(value: str) -> str | None:
    return None if value and not any(c in value for c in "/+#") else "must not be empty or contain / + #"


@dataclass(frozen=True)
class Settings:
    database_url: str = rs.database_url_field(check_url)
    mqtt_url: str = rs.mqtt_url_field(PREFIX)
    # The broker binds client ids to usernames (use_username_as_clientid), so the id is the
    # account's name: set it only to state it, a different one would name a session we do not own.
    client_id: str = setting("", env=PREFIX + "CLIENT_ID", check=_client_id,
                             help="MQTT client id of the persistent session; empty: the MQTT username (the "
                                  "broker binds ids to usernames, so only that value is accepted)")
    group: str = setting("rpmflow-ingest", env=PREFIX + "GROUP", check=_group,
                         help="shared-subscription group")
    # Shared by default, so a second process (its own client id, same group) splits the stream.
    # A broker that forgets $share subscriptions on restart (Mosquitto 2.0) gets them again at
    # the reconnect (subscribed on every connect); what it dropped meanwhile, the gateways re-send
    # for want of an end-to-end ack (docs/ingest.md).
    shared: bool = setting(True, env=PREFIX + "SHARED",
                           help="subscribe through $share/<group>/ so several processes split the stream "
                                "(docs/ingest.md)")
    batch_size: int = setting(500, env=PREFIX + "BATCH_SIZE", check=rs.between(1, 50_000),
                              help="commit when this many messages are waiting")
    batch_ms: int = setting(200, env=PREFIX + "BATCH_MS", check=rs.at_least(1),
                            help="or when the oldest has waited this many milliseconds")
    receive_maximum: int = setting(2000, env=PREFIX + "RECEIVE_MAXIMUM", check=rs.between(1, 65535),
                                   help="MQTT v5 Receive Maximum (un-acked messages in flight)")
    session_expiry_s: int = setting(7 * 24 * 3600, env=PREFIX + "SESSION_EXPIRY_S", check=rs.at_least(1),
                                    help="seconds the broker keeps our session and its queue")
    metrics_port: int = setting(0, env=PREFIX + "METRICS_PORT", check=rs.between(0, 65535),
                                help="Prometheus port (0 = off)")
    drain_timeout_s: float = setting(15.0, env=PREFIX + "DRAIN_TIMEOUT_S", check=rs.at_least(0),
                                     help="on SIGTERM, seconds to try committing what was received")
    # Worker processes behind the one MQTT receiver (ingest/receiver.py); 0 = validate and write
    # on the receiver's own threads (ingest/consumer.py). Default chosen by bench/ingest_bench.py.
    workers: int = setting(2, env=PREFIX + "WORKERS", check=rs.between(0, 32),
                           help="worker processes validating and writing (0 = in the receiver process)")
    # End-to-end acks to gateways after each commit (ingest/acks.py).
    send_acks: bool = setting(True, env=PREFIX + "SEND_ACKS",
                              help="publish commit acks to rpm/v1/<gw>/acks (ingest/acks.py)")
    mqtt_ca_file: str = setting("", env=PREFIX + "MQTT_CA_FILE",
                                help="CA bundle that signs the broker's certificate for mqtts:// (empty: the "
                                     "system's CAs)")
    allow_plaintext_mqtt: bool = setting(False, env=PREFIX + "ALLOW_PLAINTEXT_MQTT",
                                         help="allow plain mqtt:// to a host other than this machine (a "
                                              "trusted network only; docs/security.md)")
    auth_timeout_s: float = rs.auth_timeout_field(PREFIX)
    startup_timeout_s: float = rs.startup_timeout_field(PREFIX)
    log_level: str = rs.log_level_field(PREFIX)

    def validate(self) -> None:
        """Cross-field rules: plain MQTT only to loopback unless the operator allows it; the client
        id is the account's own (the broker binds ids to usernames, docs/operations.md §3)."""
        problem = plaintext_problem(self.mqtt, self.allow_plaintext_mqtt)
        if problem is not None:
            raise SettingError("mqtt_url", f"{problem} ({PREFIX}ALLOW_PLAINTEXT_MQTT=true)",
                               env=PREFIX + "MQTT_URL", flag="--mqtt-url")
        user = self.mqtt.username or ""
        if not user:
            raise SettingError("mqtt_url", "needs a username: each ingest process connects as its own "
                               "MQTT account, whose name is its client id", env=PREFIX + "MQTT_URL",
                               flag="--mqtt-url")
        if self.client_id and self.client_id != user:
            raise SettingError("client_id", f"{self.client_id!r} is not the MQTT username {user!r}: the "
                               "broker binds each client id to its username, so this process can only own "
                               f"the session {user!r}; leave it empty, or give this process its own account")

    @property
    def session_id(self) -> str:
        """The MQTT client id, hence the persistent session, this process owns: its username."""
        return self.client_id or self.mqtt.username or ""

    @property
    def mqtt(self) -> MqttTarget:
        return parse_mqtt_url(self.mqtt_url)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Read once at the entry point; a missing required variable fails here, by name."""
        return rs.load(cls, environ)

    def override(self, **changes: Any) -> Settings:
        """Flags win over the environment; ``None`` means "flag not given"."""
        return rs.replace(self, **changes)
