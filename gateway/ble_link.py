"""The BLE seam: a narrow structural Protocol, and the one implementation on bleak.

Everything above this module (collector, decoders, outbox, publisher) talks to a :class:`BleRadio`
and the :class:`BleLink` it returns; the simulators implement the same Protocol structurally (they
import nothing from the gateway) and send exact GATT bytes. This is the only module that imports
bleak, and it imports it lazily so ``BACKEND=sim`` never loads it.

Characteristics and services are addressed by their 16-bit SIG number (``0x2A35``).
Notification callbacks receive ``bytes`` and must only hand them on (queue / parse later).

Errors crossing the seam are builtin classes, so a simulator can raise them without importing us;
the collector maps them to :mod:`gateway.errors` in one place:

- ``ConnectionError``: could not connect, or the link dropped (transient);
- ``TimeoutError``: a GATT operation or connect timed out (transient);
- ``PermissionError``: insufficient authentication/encryption: the device needs pairing;
- ``LookupError``: the device has no such characteristic (an optional feature);
- ``OSError`` (other): the device answered an ATT error (e.g. 0x80 on a CTS write).

The bleak implementation may also raise two typed gateway errors (translated in
:func:`bleak_errors`, the one place bleak/BlueZ/D-Bus exceptions are looked at):
:class:`~gateway.errors.PairingNeeded` (a :class:`~gateway.errors.DeviceUnavailable`) and the
:class:`~gateway.errors.BluetoothUnavailable` family for the host's stack (no system bus, BlueZ
not running, no adapter, no permission: terminal; adapter off or rfkill-blocked: transient).
A BlueZ double on a private bus (``DBUS_SYSTEM_BUS_ADDRESS``) exercises exactly this class.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from gateway.errors import (
    AdapterOff,
    BluetoothPermissionDenied,
    BluetoothUnavailable,
    BlueZNotRunning,
    NoAdapter,
    NoSystemBus,
    PairingNeeded,
)

if TYPE_CHECKING:  # pragma: no cover - typing only
    from bleak import BleakClient

log = logging.getLogger(__name__)

NotifyCallback = Callable[[bytes], None]
DisconnectCallback = Callable[[], None]

SERVICE_BLOOD_PRESSURE = 0x1810
SERVICE_GLUCOSE = 0x1808
SERVICE_CURRENT_TIME = 0x1805
SERVICE_DEVICE_INFORMATION = 0x180A


_SIG_BASE = "-0000-1000-8000-00805f9b34fb"


def uuid16_to_str(uuid16: int) -> str:
    """The 128-bit string form of a 16-bit SIG UUID (what bleak and BlueZ use)."""
    return f"0000{uuid16:04x}{_SIG_BASE}"


class Advertisement(Protocol):
    """One device seen while scanning (read-only fields; any object with them will do)."""

    @property
    def address(self) -> str: ...

    @property
    def name(self) -> str | None: ...

    @property
    def service_uuids(self) -> tuple[int, ...]: ...


@dataclass(frozen=True)
class Advert:
    """The bleak radio's :class:`Advertisement`."""

    address: str
    name: str | None
    service_uuids: tuple[int, ...] = field(default=())
    rssi: int | None = None


@runtime_checkable
class BleLink(Protocol):
    """One connected device."""

    @property
    def address(self) -> str: ...

    @property
    def is_connected(self) -> bool: ...

    def has_characteristic(self, uuid16: int) -> bool: ...

    def can_write(self, uuid16: int) -> bool: ...

    async def read(self, uuid16: int) -> bytes: ...

    async def write(self, uuid16: int, data: bytes) -> None:
        """Write with response (the device acknowledges, or an ATT error raises)."""
        ...

    async def start_notify(self, uuid16: int, callback: NotifyCallback) -> None:
        """Enable notifications or indications (writes the CCCD); ``callback`` gets each value."""
        ...

    async def pair(self) -> None: ...

    async def disconnect(self) -> None: ...


@runtime_checkable
class BleRadio(Protocol):
    """The adapter: scan and connect."""

    async def scan(self, service_uuids: Sequence[int], timeout: float) -> Sequence[Advertisement]: ...

    async def connect(self, address: str, on_disconnect: DisconnectCallback | None = None,
                      timeout: float = 30.0) -> BleLink: ...


# --------------------------------------------------------------------------------------------
# bleak implementation
# --------------------------------------------------------------------------------------------

# D-Bus error names that say something about the host's Bluetooth stack, not about one device
_DBUS_HOST_ERRORS: dict[str, type[BluetoothUnavailable]] = {
    "org.freedesktop.DBus.Error.ServiceUnknown": BlueZNotRunning,  # nobody owns org.bluez
    "org.freedesktop.DBus.Error.NameHasNoOwner": BlueZNotRunning,
    "org.freedesktop.DBus.Error.AccessDenied": BluetoothPermissionDenied,  # bus policy: not in group
    "org.freedesktop.DBus.Error.AuthFailed": BluetoothPermissionDenied,
    "org.freedesktop.DBus.Error.NoServer": NoSystemBus,
    "org.bluez.Error.NoSuchAdapter": NoAdapter,
    "org.bluez.Error.NotReady": AdapterOff,  # StartDiscovery/Connect on a powered-off adapter
}
# ... and those that mean "this device wants an encrypted, bonded link" (hbldh/bleak #1434)
_DBUS_PAIRING_ERRORS = frozenset({
    "org.bluez.Error.AuthenticationFailed", "org.bluez.Error.AuthenticationRejected",
    "org.bluez.Error.AuthenticationCanceled", "org.bluez.Error.AuthenticationTimeout",
    "org.bluez.Error.NotPermitted", "org.bluez.Error.NotAuthorized",
})
# bleak's BleakBluetoothNotAvailableReason, by name
_UNAVAILABLE_REASONS: dict[str, type[BluetoothUnavailable]] = {
    "NO_BLUETOOTH": NoAdapter, "NO_BLE_CENTRAL_ROLE": NoAdapter, "POWERED_OFF": AdapterOff,
    "DENIED_BY_USER": BluetoothPermissionDenied, "DENIED_BY_SYSTEM": BluetoothPermissionDenied,
    "DENIED_BY_UNKNOWN": BluetoothPermissionDenied,
}
_ATT_PAIRING_CODES = (0x05, 0x08, 0x0C, 0x0F)  # insufficient authentication/authorization/encryption


def _system_bus_address() -> str:
    """Where bleak (dbus-fast) looks for the system bus, for the operator's message."""
    return os.environ.get("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/var/run/dbus/system_bus_socket")


def _from_dbus(name: str, details: str, what: str, device: str | None) -> Exception | None:
    if "rfkill" in details.lower():
        return AdapterOff(f"{name}: {details}")
    host = _DBUS_HOST_ERRORS.get(name)
    if host is not None:
        return host(f"{what}: {name}" + (f": {details}" if details else ""))
    if name in _DBUS_PAIRING_ERRORS:
        return PairingNeeded(device or "?", f"{what}: {name}")
    return None


def map_bleak_error(exc: BaseException, what: str, device: str | None = None) -> Exception | None:
    """What to raise instead of ``exc`` from bleak, dbus-fast or the OS (pure; None: leave it).

    The host's Bluetooth stack (no bus, no BlueZ, no adapter, adapter off, no permission) becomes
    a typed :class:`~gateway.errors.BluetoothUnavailable` whose message names the fix; a device
    that wants pairing becomes :class:`~gateway.errors.PairingNeeded`; any other device-level
    failure becomes the seam's builtin class (module docstring). Chosen by exception type and
    D-Bus error name; text is only looked at where bleak gives nothing else.
    """
    from bleak.exc import (
        BleakBluetoothNotAvailableError,
        BleakCharacteristicNotFoundError,
        BleakDBusError,
        BleakDeviceNotFoundError,
        BleakError,
        BleakGATTProtocolError,
    )

    if isinstance(exc, BleakDBusError):
        mapped = _from_dbus(exc.dbus_error, exc.dbus_error_details or "", what, device)
        if mapped is not None:
            return mapped
    if isinstance(exc, BleakBluetoothNotAvailableError):
        return _UNAVAILABLE_REASONS.get(exc.reason.name, AdapterOff)(f"{what}: {exc.args[0]}")
    if isinstance(exc, BleakCharacteristicNotFoundError):
        return LookupError(f"{what}: {exc}")
    if isinstance(exc, BleakDeviceNotFoundError):
        return ConnectionError(f"{what}: device not found ({exc})")
    if isinstance(exc, BleakGATTProtocolError):
        code = int(exc.args[0]) if exc.args and isinstance(exc.args[0], int) else 0
        if code in _ATT_PAIRING_CODES:
            return PairingNeeded(device or "?", f"{what}: ATT error 0x{code:02X}")
        return OSError(f"{what}: ATT error 0x{code:02X}")
    if isinstance(exc, BleakError):
        text = str(exc)
        if text.startswith("adapter '") and text.endswith("not found"):  # bleak gives only text here
            return NoAdapter(f"{what}: {text}")
        if "Authentication" in text or "Encryption" in text or "NotPermitted" in text:
            return PairingNeeded(device or "?", f"{what}: {text}")
        return ConnectionError(f"{what}: {text}")
    return _from_os(exc, what)


def _from_os(exc: BaseException, what: str) -> Exception | None:
    """dbus-fast's own failures to reach the system bus, and the OS's."""
    if isinstance(exc, TimeoutError):
        return TimeoutError(f"{what}: timed out")
    if isinstance(exc, FileNotFoundError | ConnectionRefusedError):  # the only socket bleak opens
        return NoSystemBus(f"{_system_bus_address()}: {exc.strerror or exc}")
    if isinstance(exc, PermissionError):
        return BluetoothPermissionDenied(f"{_system_bus_address()}: {exc.strerror or exc}")
    if isinstance(exc, ValueError) and type(exc).__name__ == "InvalidAddressError":  # dbus-fast
        return NoSystemBus(f"DBUS_SYSTEM_BUS_ADDRESS={_system_bus_address()!r} is not a D-Bus address")
    if isinstance(exc, EOFError):  # dbus-fast when bluetoothd or the bus restarts
        return ConnectionError(f"{what}: D-Bus connection lost")
    return None


@contextmanager
def bleak_errors(what: str, device: str | None = None) -> Iterator[None]:
    """The one place where bleak / BlueZ / D-Bus exceptions are translated (:func:`map_bleak_error`)."""
    try:
        yield
    except Exception as exc:
        mapped = map_bleak_error(exc, what, device)
        if mapped is None:
            raise
        raise mapped from exc


class BleakLink:
    """A :class:`BleLink` on one ``bleak.BleakClient``."""

    def __init__(self, client: BleakClient) -> None:
        self._client = client

    @property
    def address(self) -> str:
        return str(self._client.address)

    @property
    def is_connected(self) -> bool:
        return bool(self._client.is_connected)

    def _characteristic(self, uuid16: int) -> Any:
        return self._client.services.get_characteristic(uuid16_to_str(uuid16))

    def has_characteristic(self, uuid16: int) -> bool:
        return self._characteristic(uuid16) is not None

    def can_write(self, uuid16: int) -> bool:
        char = self._characteristic(uuid16)
        return char is not None and "write" in char.properties

    async def read(self, uuid16: int) -> bytes:
        with bleak_errors(f"read 0x{uuid16:04X}", self.address):
            return bytes(await self._client.read_gatt_char(uuid16_to_str(uuid16)))

    async def write(self, uuid16: int, data: bytes) -> None:
        with bleak_errors(f"write 0x{uuid16:04X}", self.address):
            await self._client.write_gatt_char(uuid16_to_str(uuid16), data, response=True)

    async def start_notify(self, uuid16: int, callback: NotifyCallback) -> None:
        def forward(_sender: object, data: bytearray) -> None:
            callback(bytes(data))  # hand over bytes only; parsing happens above the seam

        with bleak_errors(f"start_notify 0x{uuid16:04X}", self.address):
            await self._client.start_notify(uuid16_to_str(uuid16), forward)

    async def pair(self) -> None:
        with bleak_errors("pair", self.address):
            await self._client.pair()

    async def disconnect(self) -> None:
        with bleak_errors("disconnect", self.address):
            await self._client.disconnect()


class BleakRadio:
    """A :class:`BleRadio` on the host's Bluetooth adapter (BlueZ on a Raspberry Pi)."""

    def __init__(self, adapter: str | None = None) -> None:
        self._adapter = adapter
        self._seen: dict[str, Any] = {}  # address → BLEDevice from the last scan (connect after scan)

    async def scan(self, service_uuids: Sequence[int], timeout: float) -> list[Advert]:
        from bleak import BleakScanner

        kwargs: dict[str, Any] = {}
        if self._adapter:
            kwargs["bluez"] = {"adapter": self._adapter}
        with bleak_errors("scan"):
            found = await BleakScanner.discover(
                timeout=timeout, return_adv=True,
                service_uuids=[uuid16_to_str(u) for u in service_uuids], **kwargs,
            )
        out: list[Advert] = []
        for address, (device, adv) in found.items():
            self._seen[address] = device
            uuids = tuple(int(u[4:8], 16) for u in adv.service_uuids if u.endswith(_SIG_BASE))
            out.append(Advert(address=address, name=adv.local_name, service_uuids=uuids,
                                     rssi=adv.rssi))
        return out

    async def connect(self, address: str, on_disconnect: DisconnectCallback | None = None,
                      timeout: float = 30.0) -> BleakLink:
        from bleak import BleakClient

        def disconnected(_client: BleakClient) -> None:
            if on_disconnect is not None:
                on_disconnect()

        kwargs: dict[str, Any] = {}
        if self._adapter:
            kwargs["bluez"] = {"adapter": self._adapter}
        # Connecting to a BLEDevice from a recent scan avoids the implicit discover (weliem/bluez_inc #17).
        target = self._seen.get(address, address)
        client = BleakClient(target, disconnected_callback=disconnected, timeout=timeout, **kwargs)
        with bleak_errors(f"connect {address}", address):
            await client.connect()
        return BleakLink(client)

