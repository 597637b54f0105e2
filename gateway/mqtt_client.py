"""The gateway's paho client, built from its settings: MQTT v5, its own credentials, TLS for
``mqtts://``, a retained last will saying ``online: false``. The service creates it and hands it to
the :class:`~gateway.publisher.Publisher`; there is no module-level client."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gateway import wire
from gateway.runtime.settings import SettingError
from gateway.settings import Settings


def software_version() -> str:
    """The version the status message reports, from whichever distribution installed the gateway:
    ``rpmflow`` (the whole tree) or ``rpmflow-gateway`` (the Pi's wheel, scripts/build_gateway_wheel.sh)."""
    from importlib.metadata import PackageNotFoundError, version

    for distribution in ("rpmflow", "rpmflow-gateway"):
        try:
            return f"rpmflow {version(distribution)}"
        except PackageNotFoundError:
            continue
    return "rpmflow (unpackaged)"  # running from a checkout that was never installed


def make_client(settings: Settings) -> mqtt.Client:
    """The gateway's paho client: MQTT v5, its own credentials, TLS for mqtts://, last will offline."""
    target = settings.mqtt
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"rpmflow-gateway-{settings.gateway_id}",
        protocol=mqtt.MQTTv5,
    )
    if target.username is not None:
        client.username_pw_set(target.username, target.password)
    if target.tls:
        try:
            client.tls_set(
                ca_certs=str(settings.mqtt_ca_file) if settings.mqtt_ca_file else None,
                cert_reqs=ssl.CERT_REQUIRED,
            )
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or str(exc)
            raise SettingError("mqtt_ca_file", f"cannot use CA file {settings.mqtt_ca_file}: {reason}",
                               env="RPMFLOW_GATEWAY_MQTT_CA_FILE") from None
    will = wire.status_message(
        gateway_id=settings.gateway_id, online=False, at=datetime.now(UTC), outbox_depth=0,
        outbox_capacity=settings.outbox_capacity, outbox_full=False, devices={},
        software=software_version(),
    )
    will["awaiting_confirmation"] = 0
    client.will_set(wire.status_topic(settings.gateway_id), wire.encode(will), qos=1, retain=True)
    client.reconnect_delay_set(min_delay=1, max_delay=30)
    client.max_inflight_messages_set(settings.inflight_window)
    client.max_queued_messages_set(0)
    return client
