"""Issue 14: plain mqtt:// only to this machine unless allowed; ingest trusts a given CA file."""

from __future__ import annotations

import pytest

from gateway.runtime.settings import SettingError as GatewaySettingsError
from gateway.settings import Settings as GatewaySettings
from ingest.settings import Settings, SettingsError

DB = {"RPMFLOW_DATABASE_URL": "postgresql://u:p@127.0.0.1:5/db"}


@pytest.mark.parametrize("host", ["broker.example", "10.0.0.7", "[2001:db8::1]"])
def test_plain_mqtt_to_another_host_is_refused_by_ingest_and_gateway(host: str) -> None:
    url = f"mqtt://a:b@{host}:1883"
    with pytest.raises(SettingsError, match="ALLOW_PLAINTEXT_MQTT"):
        Settings.from_env({**DB, "RPMFLOW_MQTT_URL": url})
    with pytest.raises(GatewaySettingsError, match="ALLOW_PLAINTEXT_MQTT"):
        GatewaySettings.from_env({"RPMFLOW_GATEWAY_ID": "gw-1", "RPMFLOW_MQTT_URL": url})


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]", "127.0.0.53"])
def test_plain_mqtt_to_loopback_is_fine(host: str) -> None:
    url = f"mqtt://a:b@{host}:1883"
    assert not Settings.from_env({**DB, "RPMFLOW_MQTT_URL": url}).mqtt.tls
    assert GatewaySettings.from_env({"RPMFLOW_GATEWAY_ID": "gw-1", "RPMFLOW_MQTT_URL": url}).mqtt.port == 1883


def test_the_operator_can_allow_plain_mqtt_on_a_trusted_network_and_tls_is_always_fine() -> None:
    url = "mqtt://a:b@broker.example:1883"
    s = Settings.from_env({**DB, "RPMFLOW_MQTT_URL": url, "RPMFLOW_INGEST_ALLOW_PLAINTEXT_MQTT": "true"})
    assert s.allow_plaintext_mqtt and s.mqtt.host == "broker.example"
    gw = GatewaySettings.from_env({"RPMFLOW_GATEWAY_ID": "gw-1", "RPMFLOW_MQTT_URL": url,
                                   "RPMFLOW_GATEWAY_ALLOW_PLAINTEXT_MQTT": "yes"})
    assert gw.allow_plaintext_mqtt
    tls = Settings.from_env({**DB, "RPMFLOW_MQTT_URL": "mqtts://a:b@broker.example",
                             "RPMFLOW_INGEST_MQTT_CA_FILE": "/etc/rpmflow/ca.pem"})
    assert tls.mqtt.tls and tls.mqtt_ca_file == "/etc/rpmflow/ca.pem"
