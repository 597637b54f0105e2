"""Wait until a freshly started ingest is really subscribed, before any gateway publishes.

A brand-new ingest client id has no persistent session on the broker yet: what a gateway
publishes before the subscription exists is not queued for it. Production avoids this by
keeping ingest's session (fixed client id, session expiry); a demo or a test that starts both
at once must wait. The probe publishes a **non-retained** status message as a gateway (a
retained one would arrive even if published before the subscription) until ingest has written
that gateway's status row.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

from gateway.contract import STATUS_SCHEMA, status_topic
from simulators.server_host import StackError


def _status_payload(gateway_id: str) -> bytes:
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return json.dumps(
        {
            "schema": STATUS_SCHEMA,
            "gateway_id": gateway_id,
            "online": False,
            "at": now,
            "outbox_depth": 0,
            "outbox_capacity": 0,
            "outbox_full": False,
            "devices": {},
            "software": "rpmflow-probe",
        }
    ).encode()


def wait_until_ingest_subscribed(gateway_url: str, database_url: str, timeout: float = 60.0) -> None:
    """Publish probe statuses as the gateway of ``gateway_url`` until ingest stores one."""
    parts = urlsplit(gateway_url)
    gateway_id = unquote(parts.username or "")
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"probe-{gateway_id}", protocol=mqtt.MQTTv5)
    client.username_pw_set(gateway_id, unquote(parts.password or ""))
    client.connect(parts.hostname or "127.0.0.1", parts.port or 1883)
    client.loop_start()
    deadline = time.monotonic() + timeout
    try:
        with psycopg.connect(database_url, autocommit=True) as conn:
            while True:
                row = conn.execute(
                    "SELECT 1 FROM gateway_status WHERE gateway_id = %s", (gateway_id,)
                ).fetchone()
                if row is not None:
                    return
                if time.monotonic() > deadline:
                    raise StackError(f"ingest stored no probe status of {gateway_id} in {timeout:.0f}s")
                info = client.publish(status_topic(gateway_id), _status_payload(gateway_id), qos=1)
                info.wait_for_publish(timeout=5)
                time.sleep(0.2)  # pace the probe; the deadline above bounds the wait
    finally:
        client.disconnect()
        client.loop_stop()
