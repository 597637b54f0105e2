"""Settings come from a mapping (never the process environment) and fail naming the variable."""

from __future__ import annotations

import pytest

from ingest.settings import Settings, SettingsError, parse_mqtt_url

BASE = {"RPMFLOW_DATABASE_URL": "postgresql://u:p@127.0.0.1:5/db", "RPMFLOW_MQTT_URL": "mqtt://a:b@localhost:1883"}


def test_defaults_and_shared_mqtt_url() -> None:
    s = Settings.from_env(BASE)
    assert (s.batch_size, s.batch_ms, s.receive_maximum, s.metrics_port) == (500, 200, 2000, 0)
    assert s.client_id == "" and s.session_id == "a"  # the client id is the MQTT username
    assert s.group == "rpmflow-ingest" and s.shared is True
    assert Settings.from_env({**BASE, "RPMFLOW_INGEST_SHARED": "false"}).shared is False
    assert s.workers == 2  # two worker processes behind the receiver (bench/ingest_bench.py)
    assert Settings.from_env({**BASE, "RPMFLOW_INGEST_WORKERS": "0"}).workers == 0  # in-process path
    assert s.mqtt.host == "localhost" and s.mqtt.username == "a" and s.mqtt.password == "b"
    assert s.send_acks is True  # end-to-end acks to gateways (ingest/acks.py)
    assert Settings.from_env({**BASE, "RPMFLOW_INGEST_SEND_ACKS": "false"}).send_acks is False


def test_prefixed_values_and_ingest_mqtt_url_win() -> None:
    s = Settings.from_env(
        {
            **BASE,
            "RPMFLOW_INGEST_MQTT_URL": "mqtts://x%40y:p%2Fw@broker",
            "RPMFLOW_INGEST_BATCH_SIZE": "100",
            "RPMFLOW_INGEST_CLIENT_ID": "x@y",
            "RPMFLOW_INGEST_METRICS_PORT": "9108",
        }
    )
    assert s.batch_size == 100 and s.session_id == "x@y" and s.metrics_port == 9108
    assert s.mqtt.tls and s.mqtt.port == 8883 and s.mqtt.username == "x@y" and s.mqtt.password == "p/w"
    assert s.override(batch_size=None, batch_ms=10).batch_ms == 10


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"RPMFLOW_MQTT_URL": "mqtt://h"}, "RPMFLOW_DATABASE_URL"),
        ({"RPMFLOW_DATABASE_URL": "postgresql://x"}, "RPMFLOW_INGEST_MQTT_URL"),
        ({**BASE, "RPMFLOW_INGEST_BATCH_SIZE": "lots"}, "RPMFLOW_INGEST_BATCH_SIZE"),
        ({**BASE, "RPMFLOW_INGEST_BATCH_SIZE": "0"}, "RPMFLOW_INGEST_BATCH_SIZE"),
        ({**BASE, "RPMFLOW_INGEST_RECEIVE_MAXIMUM": "70000"}, "RPMFLOW_INGEST_RECEIVE_MAXIMUM"),
        ({**BASE, "RPMFLOW_INGEST_GROUP": "a/b"}, "RPMFLOW_INGEST_GROUP"),
        ({**BASE, "RPMFLOW_INGEST_WORKERS": "-1"}, "RPMFLOW_INGEST_WORKERS"),
        ({**BASE, "RPMFLOW_INGEST_WORKERS": "two"}, "RPMFLOW_INGEST_WORKERS"),
        ({**BASE, "RPMFLOW_INGEST_SEND_ACKS": "maybe"}, "RPMFLOW_INGEST_SEND_ACKS"),
        # The broker binds client ids to usernames: another id names a session this process does
        # not own, and an account-less URL has no session at all.
        ({**BASE, "RPMFLOW_INGEST_CLIENT_ID": "rpmflow-ingest-0"}, "RPMFLOW_INGEST_CLIENT_ID.*username 'a'"),
        ({**BASE, "RPMFLOW_MQTT_URL": "mqtt://localhost:1883"}, "RPMFLOW_INGEST_MQTT_URL.*needs a username"),
    ],
)
def test_bad_or_missing_settings_name_the_variable(env: dict[str, str], names: str) -> None:
    with pytest.raises(SettingsError, match=names):
        Settings.from_env(env)


def test_mqtt_url_scheme() -> None:
    with pytest.raises(SettingsError, match="mqtt://"):
        parse_mqtt_url("http://h")
