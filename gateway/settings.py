"""The gateway's one configuration object, read from ``RPMFLOW_GATEWAY_*`` once at start-up.

Declared with :func:`gateway.runtime.settings.setting`: ``load(Settings, environ, args)`` (or
``Settings.from_env``) is the only place environment variables are read; ``rpmflow-gateway run``
flags are generated from the same fields. A missing or malformed value fails at start-up with one
line naming the variable and the flag (exit 2). The table in docs/gateway.md is generated from
these fields (``python -m tests.settings_tables``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from gateway import backends
from gateway.contract import GATEWAY_ID_RE
from gateway.runtime import settings as rs
from gateway.runtime.settings import SettingError, setting
from gateway.runtime.urls import MqttTarget, parse_mqtt_url, plaintext_problem

PREFIX = "RPMFLOW_GATEWAY_"

__all__ = ["PREFIX", "MqttTarget", "Settings"]


def _gateway_id(value: str) -> str | None:
    return None if GATEWAY_ID_RE.match(value) else f"must match {GATEWAY_ID_RE.pattern}"


def _backend(value: str) -> str | None:
    installed = backends.available()
    return None if value in installed else (f"no BLE backend {value!r} is installed (installed: "
                                            f"{', '.join(installed)})")


_zone = rs.iana_zone


def _poll_interval(raw: str) -> float | None:
    value = float(raw)  # ValueError: the loader names the variable
    return value or None  # 0 = the quirk's own period


@dataclass(frozen=True)
class Settings:
    """Everything the gateway runtime needs."""

    gateway_id: str = setting(env=PREFIX + "ID", check=_gateway_id,
                              help="the gateway's id, also its MQTT user name")
    mqtt_url: str = rs.mqtt_url_field(PREFIX)
    outbox_path: Path = setting(Path("/var/lib/rpmflow-gateway/outbox.sqlite3"), env=PREFIX + "OUTBOX",
                                flag="--outbox", help="SQLite outbox file")
    outbox_capacity: int = setting(50_000, env=PREFIX + "OUTBOX_CAPACITY", check=rs.at_least(1),
                                   help="readings the outbox holds before it refuses new ones")
    # allow-list of BLE addresses or DIS serial numbers; empty = any
    devices: tuple[str, ...] = setting((), env=PREFIX + "DEVICES",
                                       help="allow-list of BLE addresses or serial numbers, comma-separated "
                                            "(empty: any)")
    backend: str = setting(backends.BUILT_IN, env=PREFIX + "BACKEND", check=_backend,
                           help="BLE backend: bleak (the radio) or an installed plug-in such as sim (the "
                                "simulators, configured by RPMFLOW_GATEWAY_SIM_*)")
    tz: str = setting("UTC", env=PREFIX + "TZ", check=_zone, help="IANA zone of the devices' local clocks")
    clock_drift_max_s: float = setting(60.0, env=PREFIX + "CLOCK_DRIFT_MAX_S", check=rs.at_least(0),
                                       help="set a device's clock when it is off by more seconds than this")
    mqtt_ca_file: Path | None = setting(None, env=PREFIX + "MQTT_CA_FILE",
                                        help="CA certificate file for mqtts:// (default: the system's)")
    scan_interval_s: float = setting(10.0, env=PREFIX + "SCAN_INTERVAL_S", check=rs.positive,
                                     help="seconds between scans")
    session_idle_s: float = setting(5.0, env=PREFIX + "SESSION_IDLE_S", flag=False, check=rs.positive,
                                    help="seconds without data that end a device session")
    racp_timeout_s: float = setting(30.0, env=PREFIX + "RACP_TIMEOUT_S", flag=False, check=rs.positive,
                                    help="seconds a glucose meter may take to answer a RACP request")
    context_timeout_s: float = setting(2.0, env=PREFIX + "CONTEXT_TIMEOUT_S", flag=False, check=rs.positive,
                                       help="seconds to wait for a glucose context after its measurement")
    status_interval_s: float = setting(30.0, env=PREFIX + "STATUS_INTERVAL_S", flag=False,
                                       check=rs.positive, help="seconds between retained status messages")
    inflight_window: int = setting(100, env=PREFIX + "INFLIGHT_WINDOW", flag=False, check=rs.at_least(1),
                                   help="QoS 1 messages in flight at most")
    # overrides the quirk poll period (cuffs that never push)
    poll_interval_s: float | None = setting(None, env=PREFIX + "POLL_INTERVAL_S", flag=False,
                                            parse=_poll_interval,
                                            help="poll devices that never push every this many seconds "
                                                 "(0 or unset: the model's own period)")
    server_acks: bool = setting(True, env=PREFIX + "SERVER_ACKS",
                                help="delete a reading on ingest's ack (false: on the broker's PUBACK)")
    # Plain mqtt:// sends the gateway's password and readings in clear: only to this machine,
    # unless the operator says the network in between is trusted (docs/security.md).
    allow_plaintext_mqtt: bool = setting(False, env=PREFIX + "ALLOW_PLAINTEXT_MQTT", flag=False,
                                         help="allow plain mqtt:// to a host other than this machine (a "
                                              "trusted network only; otherwise the gateway refuses to start)")
    confirm_timeout_s: float = setting(60.0, env=PREFIX + "CONFIRM_TIMEOUT_S", check=rs.positive,
                                       help="seconds to wait for ingest's ack before re-sending (doubles "
                                            "per attempt)")
    # continuous oximetry: one summary reading per window (median, minimum)
    oximetry_window_s: int = setting(60, env=PREFIX + "OXIMETRY_WINDOW_S", flag=False,
                                     check=rs.between(1, 3600),
                                     help="continuous oximetry: one reading (median and minimum SpO2, "
                                          "median pulse, sample count) per window of this many seconds")
    auth_timeout_s: float = rs.auth_timeout_field(PREFIX)
    log_level: str = rs.log_level_field(PREFIX)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        return rs.load(cls, environ)

    def validate(self) -> None:
        """Cross-field and programmatic checks (tests build Settings directly)."""
        for name, check in (("gateway_id", _gateway_id), ("tz", _zone)):
            reason = check(getattr(self, name))
            if reason is not None:
                raise SettingError(name, f"{reason}, got {getattr(self, name)!r}")
        problem = plaintext_problem(self.mqtt, self.allow_plaintext_mqtt)
        if problem is not None:
            raise SettingError("mqtt_url", f"{problem} ({PREFIX}ALLOW_PLAINTEXT_MQTT=true)")

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)

    @property
    def mqtt(self) -> MqttTarget:
        return parse_mqtt_url(self.mqtt_url)
