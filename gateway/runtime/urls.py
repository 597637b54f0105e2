"""Broker URLs, parsed once for the gateway, ingest and the simulators (``mqtt://`` or ``mqtts://``)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit


@dataclass(frozen=True)
class MqttTarget:
    """A parsed broker URL: ``mqtt://user:pw@host:port`` or ``mqtts://...`` (TLS)."""

    host: str
    port: int
    username: str | None
    password: str | None
    tls: bool

    def __str__(self) -> str:  # never the password
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


def parse_mqtt_url(url: str) -> MqttTarget:
    """Raises ``ValueError`` with the reason (never echoing the password)."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("mqtt", "mqtts"):
        got = f"{parts.scheme}://" if parts.scheme else "no scheme"
        raise ValueError(f"must start with mqtt:// or mqtts://, got {got}")
    if not parts.hostname:
        raise ValueError("no host in the broker URL (mqtt://user:password@host:port)")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("the port in the broker URL is not a number 0..65535") from None
    tls = parts.scheme == "mqtts"
    return MqttTarget(
        host=parts.hostname,
        port=port or (8883 if tls else 1883),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        tls=tls,
    )


def is_loopback(host: str) -> bool:
    """True for this machine (localhost, 127.0.0.0/8, ::1): the only place plain MQTT may go."""
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def plaintext_problem(target: MqttTarget, allowed: bool) -> str | None:
    """Why plain ``mqtt://`` to ``target`` is refused (credentials and readings in clear), or None."""
    if target.tls or allowed or is_loopback(target.host):
        return None
    return (f"plain mqtt:// to {target.host} sends credentials and readings in clear: use mqtts://"
            " (or allow plain MQTT on a trusted network, docs/security.md)")


def mqtt_url_problem(url: str) -> str | None:
    """A settings ``check``: why a broker URL is unusable, or ``None``."""
    try:
        parse_mqtt_url(url)
    except ValueError as exc:
        return str(exc)
    return None
