"""Fixtures for the bleak backend against the BlueZ double (marker ``bluez``, issue 19).

One real ``dbus-daemon`` per module on a private socket (tests/gateway/private_bus.py); each test
points ``DBUS_SYSTEM_BUS_ADDRESS`` at it and starts its own :class:`BluezDouble` inside the test's
event loop (bleak keeps one BlueZ manager per loop, so every test gets a fresh one).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gateway.private_bus import private_bus


@pytest.fixture(scope="module")
def system_bus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with private_bus(Path(tmp_path_factory.mktemp("bus"))) as address:
        yield address


@pytest.fixture
def bus_address(system_bus: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The private bus, as the gateway's "system" bus for this test."""
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", system_bus)
    return system_bus
