"""The BLE seam still matches the installed bleak, and the simulators still match the seam."""

from __future__ import annotations

import inspect

import bleak
import bleak.exc

from gateway.ble_link import BleakLink, BleakRadio, BleLink, BleRadio
from simulators.devices import SimulatedRadio, build_radio


def _params(func: object) -> list[str]:
    return list(inspect.signature(func).parameters)  # type: ignore[arg-type]


def test_bleak_client_methods_the_shell_uses() -> None:
    client = bleak.BleakClient
    for name in ("connect", "disconnect", "pair", "read_gatt_char", "write_gatt_char", "start_notify"):
        assert inspect.iscoroutinefunction(getattr(client, name)), name
    assert _params(client.write_gatt_char)[:4] == ["self", "char_specifier", "data", "response"]
    assert _params(client.read_gatt_char)[:2] == ["self", "char_specifier"]
    assert _params(client.start_notify)[:3] == ["self", "char_specifier", "callback"]
    init = inspect.signature(client.__init__).parameters
    assert {"address_or_ble_device", "disconnected_callback", "timeout", "bluez"} <= set(init)
    assert isinstance(inspect.getattr_static(client, "is_connected"), property)
    assert isinstance(inspect.getattr_static(client, "services"), property)


def test_bleak_scanner_and_errors_the_shell_uses() -> None:
    discover = inspect.signature(bleak.BleakScanner.discover).parameters
    assert {"timeout", "return_adv"} <= set(discover)
    scanner_init = inspect.signature(bleak.BleakScanner.__init__).parameters
    assert {"service_uuids", "bluez"} <= set(scanner_init)
    for name in (
        "BleakError",
        "BleakCharacteristicNotFoundError",
        "BleakDeviceNotFoundError",
        "BleakGATTProtocolError",
    ):
        assert issubclass(getattr(bleak.exc, name), Exception), name
    assert "get_characteristic" in dir(bleak.backends.service.BleakGATTServiceCollection)


def test_implementations_satisfy_the_seam() -> None:
    radio = build_radio("bp:C-1", "normal")
    assert isinstance(radio, BleRadio) and isinstance(radio, SimulatedRadio)
    assert issubclass(BleakRadio, BleRadio)
    for name in ("read", "write", "start_notify", "pair", "disconnect", "has_characteristic", "can_write"):
        assert hasattr(BleakLink, name) and hasattr(BleLink, name), name
        assert _params(getattr(BleakLink, name)) == _params(getattr(BleLink, name)), name
    typed: BleRadio = radio  # mypy checks the structural match of the simulator
    assert typed is radio
