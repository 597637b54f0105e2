"""The gateway's one configuration object, read from ``RPMFLOW_GATEWAY_*`` once at start-up.

``Settings.from_env(environ)`` is the only place environment variables are read; the CLI then
overrides fields with ``dataclasses.replace``. A missing or malformed key fails at start-up with a
:class:`~gateway.errors.SettingsError` naming the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateway import backends, contract
from gateway.errors import SettingsError
from gateway.runtime.urls import parse_mqtt_url, plaintext_problem

PREFIX = "RPMFLOW_GATEWAY_"
GATEWAY_ID_RE = contract.GATEWAY_ID_RE
_BOOLS = {"true": True, "1": True, "yes": True, "on": True, "false": False, "0": False, "no": False,
          "off": False}


@dataclass(frozen=True)
class MqttTarget:
    """A parsed broker URL: ``mqtt://user:pw@host:port`` or ``mqtts://...`` (TLS)."""

    host: str
    port: int
    username: str | None
    password: str | None
    tls: bool

    @classmethod
    def parse(cls, url: str) -> MqttTarget:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts"):
            raise SettingsError("MQTT_URL", f"scheme must be mqtt:// or mqtts://, got {parts.scheme!r}")
        if not parts.hostname:
            raise SettingsError("MQTT_URL", "no host in the broker URL")
        tls = parts.scheme == "mqtts"
        return cls(
            host=parts.hostname,
            port=parts.port or (8883 if tls else 1883),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            tls=tls,
        )


@dataclass(frozen=True)
class Settings:
    """Everything the gateway runtime needs; see docs/gateway.md for the table of variables."""

    gateway_id: str
    mqtt_url: str
    outbox_path: Path = Path("/var/lib/rpmflow-gateway/outbox.sqlite3")
    outbox_capacity: int = 50_000
    devices: tuple[str, ...] = ()  # allow-list of BLE addresses or DIS serial numbers; empty = any
    backend: str = "bleak"  # or a plug-in (gateway/backends.py); "sim" reads RPMFLOW_GATEWAY_SIM_*
    tz: str = "UTC"
    clock_drift_max_s: float = 60.0
    mqtt_ca_file: Path | None = None
    scan_interval_s: float = 10.0
    session_idle_s: float = 5.0
    racp_timeout_s: float = 30.0
    context_timeout_s: float = 2.0
    status_interval_s: float = 30.0
    inflight_window: int = 100
    poll_interval_s: float | None = None  # overrides the quirk poll period (cuffs that never push)
    server_acks: bool = True  # delete a reading on ingest's ack (false: on the broker's PUBACK)
    # Plain mqtt:// sends the gateway's password and readings in clear: only to this machine,
    # unless the operator says the network in between is trusted (docs/security.md).
    allow_plaintext_mqtt: bool = False
    confirm_timeout_s: float = 60.0  # wait for ingest's ack before re-sending (doubles per attempt)
    auth_timeout_s: float = 30.0  # broker refusing our credentials this long: exit 3
    oximetry_window_s: int = 60  # continuous oximetry: one summary reading per window (median, minimum)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        def get(key: str) -> str | None:
            value = environ.get(PREFIX + key)
            return value if value not in (None, "") else None

        def number(key: str, default: float) -> float:
            raw = get(key)
            if raw is None:
                return default
            try:
                return float(raw)
            except ValueError:
                raise SettingsError(PREFIX + key, f"not a number: {raw!r}") from None

        def flag(key: str, default: bool) -> bool:
            raw = get(key)
            if raw is None:
                return default
            value = _BOOLS.get(raw.strip().lower())
            if value is None:
                raise SettingsError(PREFIX + key, f"must be true or false, got {raw!r}")
            return value

        gateway_id = get("ID")
        if gateway_id is None:
            raise SettingsError(PREFIX + "ID", "required (the gateway's MQTT username)")
        mqtt_url = get("MQTT_URL") or environ.get("RPMFLOW_MQTT_URL") or None
        if mqtt_url is None:
            raise SettingsError(PREFIX + "MQTT_URL", "required (or RPMFLOW_MQTT_URL)")
        backend = get("BACKEND") or cls.backend
        ca = get("MQTT_CA_FILE")
        devices = tuple(d.strip() for d in (get("DEVICES") or "").split(",") if d.strip())
        settings = cls(
            gateway_id=gateway_id,
            mqtt_url=mqtt_url,
            outbox_path=Path(get("OUTBOX") or cls.outbox_path),
            outbox_capacity=int(number("OUTBOX_CAPACITY", cls.outbox_capacity)),
            devices=devices,
            backend=backend,
            tz=get("TZ") or cls.tz,
            clock_drift_max_s=number("CLOCK_DRIFT_MAX_S", cls.clock_drift_max_s),
            mqtt_ca_file=Path(ca) if ca else None,
            scan_interval_s=number("SCAN_INTERVAL_S", cls.scan_interval_s),
            session_idle_s=number("SESSION_IDLE_S", cls.session_idle_s),
            racp_timeout_s=number("RACP_TIMEOUT_S", cls.racp_timeout_s),
            context_timeout_s=number("CONTEXT_TIMEOUT_S", cls.context_timeout_s),
            status_interval_s=number("STATUS_INTERVAL_S", cls.status_interval_s),
            inflight_window=int(number("INFLIGHT_WINDOW", cls.inflight_window)),
            poll_interval_s=number("POLL_INTERVAL_S", 0.0) or None,
            server_acks=flag("SERVER_ACKS", cls.server_acks),
            confirm_timeout_s=number("CONFIRM_TIMEOUT_S", cls.confirm_timeout_s),
            auth_timeout_s=number("AUTH_TIMEOUT_S", cls.auth_timeout_s),
            allow_plaintext_mqtt=flag("ALLOW_PLAINTEXT_MQTT", cls.allow_plaintext_mqtt),
            oximetry_window_s=int(number("OXIMETRY_WINDOW_S", cls.oximetry_window_s)),
        )
        settings.validate()
        return settings

    def validate(self) -> None:
        """Fail at start-up, naming the key, rather than deep inside a session."""
        if not GATEWAY_ID_RE.match(self.gateway_id):
            raise SettingsError(PREFIX + "ID",
                                f"must match {contract.GATEWAY_ID_PATTERN}, got {self.gateway_id!r}")
        MqttTarget.parse(self.mqtt_url)
        problem = plaintext_problem(parse_mqtt_url(self.mqtt_url), self.allow_plaintext_mqtt)
        if problem is not None:
            raise SettingsError(PREFIX + "MQTT_URL", f"{problem} ({PREFIX}ALLOW_PLAINTEXT_MQTT=true)")
        if self.outbox_capacity < 1:
            raise SettingsError(PREFIX + "OUTBOX_CAPACITY", "must be at least 1")
        if self.inflight_window < 1:
            raise SettingsError(PREFIX + "INFLIGHT_WINDOW", "must be at least 1")
        if not 1 <= self.oximetry_window_s <= 3600:
            raise SettingsError(PREFIX + "OXIMETRY_WINDOW_S", "must be 1..3600 seconds")
        if not self.confirm_timeout_s > 0:
            raise SettingsError(PREFIX + "CONFIRM_TIMEOUT_S", "must be more than 0 seconds")
        backends.check(self.backend)
        try:
            ZoneInfo(self.tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise SettingsError(PREFIX + "TZ", f"unknown IANA time zone {self.tz!r}") from None

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)

    @property
    def mqtt(self) -> MqttTarget:
        return MqttTarget.parse(self.mqtt_url)
