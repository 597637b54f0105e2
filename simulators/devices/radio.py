"""A simulated Bluetooth adapter: the same structural seam as the gateway's ``BleakRadio``.

``SimulatedRadio.scan`` / ``connect`` and ``SimLink`` read / write / start_notify / pair /
disconnect match ``gateway.ble_link.BleRadio`` / ``BleLink`` by shape only (nothing is imported
from the gateway). Devices are small GATT servers (:class:`SimDevice`) that push exact bytes to
the link's callbacks from asyncio tasks, as bleak does from its D-Bus reader. Errors use the
seam's builtin classes: ``ConnectionError`` (link lost), ``LookupError`` (no such
characteristic), ``OSError`` (ATT error), ``PermissionError`` (pairing needed).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from simulators.devices.encoding import current_time, date_time, decode_current_time

log = logging.getLogger(__name__)

NotifyCallback = Callable[[bytes], None]

CHAR_MANUFACTURER = 0x2A29
CHAR_MODEL = 0x2A24
CHAR_SERIAL = 0x2A25
CHAR_FIRMWARE = 0x2A26
CHAR_CURRENT_TIME = 0x2A2B
CHAR_DATE_TIME = 0x2A08


def address_for(serial: str) -> str:
    """A stable, locally-administered-looking BLE address derived from the serial number."""
    digest = hashlib.sha256(serial.encode()).digest()
    return ":".join(f"{b:02X}" for b in (0xC0 | (digest[0] & 0x3F), *digest[1:6]))


@dataclass(frozen=True)
class SimAdvertisement:
    address: str
    name: str | None
    service_uuids: tuple[int, ...]
    rssi: int | None = -60


@dataclass
class SimRecord:
    """One thing a device produced, for tests to count against what reached the broker."""

    kind: str  # "blood_pressure" | "glucose" | "weight" | "spo2" | "corrupt" | "control_solution" | ...
    raw: bytes
    sequence_number: int | None = None
    context: bytes | None = None
    delivered: bool = False
    truth: dict[str, Any] | None = None  # what the simulated patient really had (the truth log)


@dataclass
class SimDevice:
    """A GATT server with Device Information and Current Time; subclasses add their service."""

    serial: str
    manufacturer: str
    model: str
    firmware: str = "1.0"
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    clock_drift_s: float = 0.0
    cts_writable: bool = True
    drop_after: int | None = None  # drop the link after this many records in one connection (once)
    clock_char: int = CHAR_CURRENT_TIME  # 0x2A08 Date Time (Roche), or 0 for no clock access (TaiDoc)
    advertises: bool = True  # False: connectable when bonded but silent in scans (a polled cuff)
    service_uuid: int = 0
    address: str = ""
    produced: list[SimRecord] = field(default_factory=list)
    connections: int = 0
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def __post_init__(self) -> None:
        if not self.address:
            self.address = address_for(self.serial)

    # -- clock ------------------------------------------------------------------------------
    def local_now(self) -> datetime:
        """The device's zone-less wall clock: the local time of its zone plus its drift."""
        return datetime.now(self.zone).replace(tzinfo=None) + timedelta(seconds=self.clock_drift_s)

    # -- GATT -------------------------------------------------------------------------------
    def characteristics(self) -> dict[int, str]:
        """uuid16 → properties ("read", "write", "notify", "indicate")."""
        chars = {CHAR_MANUFACTURER: "read", CHAR_MODEL: "read", CHAR_SERIAL: "read", CHAR_FIRMWARE: "read"}
        if self.clock_char:
            chars[self.clock_char] = "read,notify" if self.clock_char == CHAR_CURRENT_TIME else "read"
            if self.cts_writable:
                chars[self.clock_char] += ",write"
        return chars

    def read(self, uuid16: int) -> bytes:
        texts = {CHAR_MANUFACTURER: self.manufacturer, CHAR_MODEL: self.model, CHAR_SERIAL: self.serial,
                 CHAR_FIRMWARE: self.firmware}
        if uuid16 in texts:
            return texts[uuid16].encode()
        if uuid16 == CHAR_CURRENT_TIME and self.clock_char == CHAR_CURRENT_TIME:
            return current_time(self.local_now())
        if uuid16 == CHAR_DATE_TIME and self.clock_char == CHAR_DATE_TIME:
            return date_time(self.local_now())
        raise LookupError(f"characteristic 0x{uuid16:04X} not readable on {self.serial}")

    async def write(self, link: SimLink, uuid16: int, data: bytes) -> None:
        if uuid16 == self.clock_char and uuid16 in (CHAR_CURRENT_TIME, CHAR_DATE_TIME):
            if not self.cts_writable:
                raise OSError(f"ATT error 0x80 on 0x{uuid16:04X} write ({self.serial}: data field ignored)")
            wanted = decode_current_time(data)
            self.clock_drift_s = (wanted - datetime.now(self.zone).replace(tzinfo=None)).total_seconds()
            log.info("%s: clock set to %s", self.serial, wanted.isoformat())
            return
        raise LookupError(f"characteristic 0x{uuid16:04X} not writable on {self.serial}")

    def on_subscribed(self, link: SimLink, uuid16: int) -> None:
        """Hook: a CCCD was enabled (BP cuffs start pushing stored readings here)."""

    def on_connected(self, link: SimLink) -> None:
        """Hook: a central connected."""

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


class SimLink:
    """One connection to a :class:`SimDevice` (structurally a gateway ``BleLink``)."""

    def __init__(self, device: SimDevice, on_disconnect: Callable[[], None] | None) -> None:
        self.device = device
        self._on_disconnect = on_disconnect
        self._connected = True
        self._subscriptions: dict[int, NotifyCallback] = {}
        self.sent_in_connection = 0

    @property
    def address(self) -> str:
        return self.device.address

    @property
    def is_connected(self) -> bool:
        return self._connected

    def has_characteristic(self, uuid16: int) -> bool:
        return uuid16 in self.device.characteristics()

    def can_write(self, uuid16: int) -> bool:
        return "write" in self.device.characteristics().get(uuid16, "")

    def subscribed(self, uuid16: int) -> bool:
        return self._connected and uuid16 in self._subscriptions

    def _check(self, uuid16: int | None = None) -> None:
        if not self._connected:
            raise ConnectionError(f"{self.device.serial}: not connected")
        if uuid16 is not None and uuid16 not in self.device.characteristics():
            raise LookupError(f"{self.device.serial}: no characteristic 0x{uuid16:04X}")

    async def read(self, uuid16: int) -> bytes:
        self._check(uuid16)
        await asyncio.sleep(0)
        return self.device.read(uuid16)

    async def write(self, uuid16: int, data: bytes) -> None:
        self._check(uuid16)
        await asyncio.sleep(0)
        await self.device.write(self, uuid16, bytes(data))

    async def start_notify(self, uuid16: int, callback: NotifyCallback) -> None:
        self._check(uuid16)
        props = self.device.characteristics()[uuid16]
        if "notify" not in props and "indicate" not in props:
            raise OSError(f"ATT error 0x03: 0x{uuid16:04X} cannot notify")
        self._subscriptions[uuid16] = callback
        await asyncio.sleep(0)
        self.device.on_subscribed(self, uuid16)

    def notify(self, uuid16: int, data: bytes) -> bool:
        """Device side: send a value; False when the link is down or the CCCD is off (not sent)."""
        if not self.subscribed(uuid16):
            return False
        self._subscriptions[uuid16](bytes(data))
        return True

    async def pair(self) -> None:
        self._check()

    async def disconnect(self) -> None:
        if self._connected:
            self._connected = False
            self._subscriptions.clear()

    def drop(self) -> None:
        """Device side: the link is lost (out of range, battery): the central's callback fires."""
        if self._connected:
            self._connected = False
            self._subscriptions.clear()
            log.info("%s: link dropped by the device", self.device.serial)
            if self._on_disconnect is not None:
                self._on_disconnect()


class SimulatedRadio:
    """A Bluetooth adapter whose only neighbours are the given simulated devices."""

    def __init__(self, devices: Sequence[SimDevice]) -> None:
        self.devices = list(devices)
        self._by_address = {d.address: d for d in self.devices}
        self.links: list[SimLink] = []

    def device(self, serial: str) -> SimDevice:
        for d in self.devices:
            if d.serial == serial:
                return d
        raise KeyError(serial)

    async def scan(self, service_uuids: Sequence[int], timeout: float) -> list[SimAdvertisement]:
        await asyncio.sleep(0)
        wanted = set(service_uuids)
        return [
            SimAdvertisement(d.address, d.model, (d.service_uuid,))
            for d in self.devices
            if d.advertises and (not wanted or d.service_uuid in wanted)
        ]

    async def connect(self, address: str, on_disconnect: Callable[[], None] | None = None,
                      timeout: float = 30.0) -> SimLink:
        await asyncio.sleep(0)
        device = self._by_address.get(address)
        if device is None:
            raise ConnectionError(f"device {address} not found")
        device.connections += 1
        link = SimLink(device, on_disconnect)
        self.links.append(link)
        device.on_connected(link)
        return link
