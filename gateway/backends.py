"""BLE backends: ``bleak`` is built in; any other is a plug-in found by entry point.

Why: the Pi package must not depend on test code. The simulated radio lives in ``simulators`` and
registers itself under the entry-point group ``rpmflow.ble_backends`` (pyproject.toml), so the
gateway finds it by name (``RPMFLOW_GATEWAY_BACKEND=sim``) without importing it, and a Pi where
only the gateway is used never loads it. A plug-in is a callable ``(environ, zone) -> BleRadio``:
it reads its own settings from the environment the gateway was started with (the simulator reads
``RPMFLOW_GATEWAY_SIM_*``) and raises :class:`~gateway.errors.SettingsError` naming a bad one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Final
from zoneinfo import ZoneInfo

from gateway.errors import SettingsError

if TYPE_CHECKING:
    from gateway.ble_link import BleRadio

GROUP: Final = "rpmflow.ble_backends"
BUILT_IN: Final = "bleak"
SETTING: Final = "RPMFLOW_GATEWAY_BACKEND"

BackendFactory = Callable[[Mapping[str, str], ZoneInfo], "BleRadio"]


def available() -> list[str]:
    """The backend names this installation can run: ``bleak`` plus every registered plug-in."""
    return [BUILT_IN, *sorted({ep.name for ep in entry_points(group=GROUP)} - {BUILT_IN})]


def check(name: str) -> None:
    """Refuse a backend this installation does not have, naming the setting and the choices."""
    if name not in available():
        raise SettingsError(SETTING, f"no BLE backend {name!r} is installed (installed: "
                                     f"{', '.join(available())}; plug-ins register under the "
                                     f"entry-point group {GROUP}: reinstall the package to refresh them)")


def make_radio(name: str, environ: Mapping[str, str], zone: ZoneInfo) -> BleRadio:
    """The radio of backend ``name``; a plug-in is imported only here, only when asked for."""
    if name == BUILT_IN:
        from gateway.ble_link import BleakRadio

        return BleakRadio()
    check(name)
    entry = next(iter(entry_points(group=GROUP, name=name)))
    factory: BackendFactory = entry.load()
    return factory(environ, zone)
