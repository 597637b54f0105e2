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
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

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

@contextmanager
def _map_bleak_errors(what: str) -> Iterator[None]:
    """Translate bleak / BlueZ exceptions to the seam's builtin classes (the one place we do it)."""
    from bleak.exc import (
        BleakCharacteristicNotFoundError,
        BleakDeviceNotFoundError,
        BleakError,
        BleakGATTProtocolError,
    )

    try:
        yield
    except BleakCharacteristicNotFoundError as exc:
        raise LookupError(f"{what}: {exc}") from exc
    except BleakDeviceNotFoundError as exc:
        raise ConnectionError(f"{what}: device not found ({exc})") from exc
    except BleakGATTProtocolError as exc:
        code = int(exc.args[0]) if exc.args and isinstance(exc.args[0], int) else 0
        if code in (0x05, 0x08, 0x0C, 0x0F):  # insufficient authentication/authorization/encryption
            raise PermissionError(f"{what}: ATT error 0x{code:02X} (pairing needed)") from exc
        raise OSError(f"{what}: ATT error 0x{code:02X}") from exc
    except TimeoutError as exc:
        raise TimeoutError(f"{what}: timed out") from exc
    except BleakError as exc:
        text = str(exc)
        if "Authentication" in text or "Encryption" in text or "NotPermitted" in text:
            raise PermissionError(f"{what}: {text}") from exc
        raise ConnectionError(f"{what}: {text}") from exc
    except EOFError as exc:  # dbus-fast when bluetoothd restarts
        raise ConnectionError(f"{what}: D-Bus connection lost") from exc


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
        with _map_bleak_errors(f"read 0x{uuid16:04X}"):
            return bytes(await self._client.read_gatt_char(uuid16_to_str(uuid16)))

    async def write(self, uuid16: int, data: bytes) -> None:
        with _map_bleak_errors(f"write 0x{uuid16:04X}"):
            await self._client.write_gatt_char(uuid16_to_str(uuid16), data, response=True)

    async def start_notify(self, uuid16: int, callback: NotifyCallback) -> None:
        def forward(_sender: object, data: bytearray) -> None:
            callback(bytes(data))  # hand over bytes only; parsing happens above the seam

        with _map_bleak_errors(f"start_notify 0x{uuid16:04X}"):
            await self._client.start_notify(uuid16_to_str(uuid16), forward)

    async def pair(self) -> None:
        with _map_bleak_errors("pair"):
            await self._client.pair()

    async def disconnect(self) -> None:
        with _map_bleak_errors("disconnect"):
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
        with _map_bleak_errors("scan"):
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
        with _map_bleak_errors(f"connect {address}"):
            await client.connect()
        return BleakLink(client)

