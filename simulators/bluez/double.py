"""A BlueZ double: owns ``org.bluez`` on a D-Bus bus and puts simulated peripherals behind it.

Why: bleak's BlueZ backend talks to bluetoothd only over D-Bus (``DBUS_SYSTEM_BUS_ADDRESS``), so a
service that answers the same calls lets the gateway's real Bluetooth code run in a test, with the
peripherals of :mod:`simulators.devices` (same bytes, RACP, clocks, quirks) behind it.

Faults on demand (:class:`Faults`, changeable while running): D-Bus errors answered to the next
Connect / Pair / StartDiscovery, a link dropped after N notifications (mid-RACP), a notification
storm (each value sent N times), services that resolve late, and an adapter that powers off.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from dbus_fast import BusType, DBusError, RequestNameReply, Variant
from dbus_fast.aio import MessageBus
from dbus_fast.service import ServiceInterface

from simulators.bluez.objects import (
    Adapter,
    Device,
    GattCharacteristic,
    GattService,
    att_error,
    bluez_error,
    flags_of,
    uuid128,
)
from simulators.devices.radio import (
    CHAR_CURRENT_TIME,
    CHAR_DATE_TIME,
    CHAR_FIRMWARE,
    CHAR_MANUFACTURER,
    CHAR_MODEL,
    CHAR_SERIAL,
    SimDevice,
    SimLink,
)

log = logging.getLogger(__name__)

ADAPTER_PATH = "/org/bluez/hci0"
_DIS = 0x180A
_CTS = 0x1805
_DIS_CHARS = (CHAR_MANUFACTURER, CHAR_MODEL, CHAR_SERIAL, CHAR_FIRMWARE)


@dataclass
class Faults:
    """What goes wrong next; each queued error is answered once, in order."""

    connect: list[str] = field(default_factory=list)  # e.g. ["InProgress", "NotPermitted"]
    pair: list[str] = field(default_factory=list)  # e.g. ["AuthenticationFailed"]
    start_discovery: list[str] = field(default_factory=list)  # e.g. ["InProgress"]
    drop_after_notifications: int | None = None  # drop the next link after N notifications (once)
    power_off_after_notifications: int | None = None  # the adapter powers off after N (once)
    storm: int = 1  # each notification is sent this many times
    services_delay_s: float = 0.0  # ServicesResolved comes this long after Connect returns
    pairing_required: bool = False  # GATT reads/writes answer NotPermitted until paired


class Peripheral:
    """One simulated device behind bluetoothd: its Device1 object, GATT tree and current link."""

    def __init__(self, double: BluezDouble, device: SimDevice) -> None:
        self.double = double
        self.device = device
        self.adapter_path = ADAPTER_PATH
        self.path = f"{ADAPTER_PATH}/dev_{device.address.replace(':', '_')}"
        self.manufacturer_data: dict[int, Variant] = {}
        self.iface = Device(self)
        self.link: SimLink | None = None
        self.chars: dict[int, GattCharacteristic] = {}
        self._gatt_paths: list[tuple[str, ServiceInterface]] = []
        self.exported = False
        self.notifications = 0

    # -- GATT tree ----------------------------------------------------------------------------
    def _export_gatt(self) -> None:
        """Publish the services and characteristics (InterfacesAdded), as after discovery."""
        chars = self.device.characteristics()
        groups = {_DIS: [c for c in _DIS_CHARS if c in chars]}
        clock = [c for c in (CHAR_CURRENT_TIME, CHAR_DATE_TIME) if c in chars]
        if clock:
            groups[_CTS if CHAR_CURRENT_TIME in clock else self.device.service_uuid] = clock
        taken = {c for cs in groups.values() for c in cs}
        groups.setdefault(self.device.service_uuid, []).extend(c for c in chars if c not in taken)
        handle = 0x000A
        for service_uuid, members in groups.items():
            service_path = f"{self.path}/service{handle:04x}"
            self._export(service_path, GattService(service_uuid, self.path))
            handle += 1
            for uuid16 in members:
                char = GattCharacteristic(self, uuid16, flags_of(chars[uuid16]), service_path)
                self._export(f"{service_path}/char{handle:04x}", char)
                self.chars[uuid16] = char
                handle += 2

    def _export(self, path: str, iface: ServiceInterface) -> None:
        self.double.bus.export(path, iface)
        self._gatt_paths.append((path, iface))

    def _unexport_gatt(self) -> None:
        """A device that is not bonded loses its GATT objects at disconnect (InterfacesRemoved)."""
        for path, iface in reversed(self._gatt_paths):
            self.double.bus.unexport(path, iface)
        self._gatt_paths.clear()
        self.chars.clear()

    # -- Device1 ------------------------------------------------------------------------------
    async def connect(self) -> None:
        self.double.check_powered()
        fault = self.double.take_fault("connect")
        if fault is not None:
            raise bluez_error(fault, fault)
        if self.iface.connected:
            raise bluez_error("AlreadyConnected", "Already Connected")
        self.device.connections += 1
        self.link = SimLink(self.device, self._dropped_by_device)
        self.notifications = 0
        self.iface.set(Connected=True)
        self._export_gatt()
        self.device.on_connected(self.link)
        delay = self.double.faults.services_delay_s
        if delay > 0:
            self.double.spawn(self._resolve_later(delay))
        else:
            self.iface.set(ServicesResolved=True)

    async def _resolve_later(self, delay: float) -> None:
        await asyncio.sleep(delay)
        if self.iface.connected:
            self.iface.set(ServicesResolved=True)

    def disconnect(self, why: str) -> None:
        """Central or adapter side: the link ends (Connected false, GATT objects removed)."""
        link, self.link = self.link, None
        if link is not None:
            link._on_disconnect = None  # the device's own drop callback must not fire twice
            link.drop()
        if self.iface.connected:
            log.info("%s: disconnected (%s)", self.device.serial, why)
            self.iface.set(ServicesResolved=False)
            self._unexport_gatt()
            self.iface.set(Connected=False)

    def _dropped_by_device(self) -> None:
        self.link = None
        self.disconnect("dropped by the device")

    async def pair(self) -> None:
        if not self.iface.connected:
            await self.connect()
        fault = self.double.take_fault("pair")
        if fault is not None:
            raise bluez_error(fault, fault)
        if self.iface.paired:
            raise bluez_error("AlreadyExists", "Already Exists")
        self.iface.set(Paired=True, Bonded=True)

    # -- GATT operations ----------------------------------------------------------------------
    def _live_link(self) -> SimLink:
        if self.link is None or not self.link.is_connected:
            raise bluez_error("Failed", "Not connected")
        if self.double.faults.pairing_required and not self.iface.paired:
            raise bluez_error("NotPermitted", "Not paired")
        return self.link

    async def read(self, uuid16: int) -> bytes:
        link = self._live_link()
        try:
            return await link.read(uuid16)
        except (OSError, LookupError) as exc:
            raise att_error(exc) from exc

    async def write(self, uuid16: int, data: bytes, response: bool) -> None:
        link = self._live_link()
        try:
            await link.write(uuid16, data)
        except (OSError, LookupError) as exc:
            if response:  # a write command has no answer: the error is lost, as over the air
                raise att_error(exc) from exc

    async def subscribe(self, char: GattCharacteristic) -> None:
        link = self._live_link()

        def forward(data: bytes) -> None:
            for _ in range(max(1, self.double.faults.storm)):
                char.push(data)
            self._count_notification()

        try:
            await link.start_notify(char.uuid16, forward)
        except (OSError, LookupError) as exc:
            raise att_error(exc) from exc

    def unsubscribe(self, uuid16: int) -> None:
        if self.link is not None:
            self.link._subscriptions.pop(uuid16, None)

    def _count_notification(self) -> None:
        self.notifications += 1
        faults = self.double.faults
        loop = asyncio.get_running_loop()
        # after this callback returns: the frame in flight is delivered, then the link goes
        drop_at = faults.drop_after_notifications
        if drop_at is not None and self.notifications >= drop_at:
            faults.drop_after_notifications = None
            loop.call_soon(self.disconnect, "dropped mid-transfer (fault)")
        limit = faults.power_off_after_notifications
        if limit is not None and self.notifications >= limit:
            faults.power_off_after_notifications = None
            loop.call_soon(self.double.set_powered, False)


class BluezDouble:
    """bluetoothd for tests and the demo: ``async with BluezDouble(address, devices) as bluez:``."""

    def __init__(self, bus_address: str, devices: Sequence[SimDevice]) -> None:
        self.bus_address = bus_address
        self.faults = Faults()
        self.bus = MessageBus(bus_address=bus_address, bus_type=BusType.SYSTEM)
        self.adapter = Adapter(self, "00:1A:7D:DA:71:13")
        self.peripherals = [Peripheral(self, d) for d in devices]
        self.calls: Counter[str] = Counter()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> BluezDouble:
        await self.bus.connect()
        reply = await self.bus.request_name("org.bluez")
        if reply != RequestNameReply.PRIMARY_OWNER:
            raise RuntimeError(f"org.bluez is already owned on {self.bus_address}")
        self.bus.export(ADAPTER_PATH, self.adapter)
        return self

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for p in self.peripherals:
            p.disconnect("double stopping")
        self.bus.disconnect()
        # After a notification storm the bus socket's buffer may still be full: dbus_fast then ends
        # with the writer's BlockingIOError. What was unsent goes with the double; it is stopping.
        with contextlib.suppress(OSError):
            await self.bus.wait_for_disconnect()  # type: ignore[no-untyped-call]

    async def __aenter__(self) -> BluezDouble:
        return await self.start()

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    # -- used by the objects ------------------------------------------------------------------
    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def take_fault(self, kind: str) -> str | None:
        """The next queued D-Bus error name for ``kind`` (connect/pair/start_discovery), once."""
        self.calls[kind] += 1
        queue: list[str] = getattr(self.faults, kind)
        return queue.pop(0) if queue else None

    def check_powered(self) -> None:
        if not self.adapter.powered:
            raise bluez_error("NotReady", "Resource Not Ready")

    def set_powered(self, on: bool) -> None:
        """Power the adapter off (every link drops, discovery stops) or on again."""
        if on == self.adapter.powered:
            return
        self.adapter.powered = on
        if not on:
            for p in self.peripherals:
                p.disconnect("adapter powered off")
            if self.adapter.discovering:
                self.adapter.discovering = False
                self.adapter.emit_properties_changed({"Discovering": False})
        self.adapter.emit_properties_changed({"Powered": on})

    def advertise(self) -> None:
        """While discovering, each advertising device appears (InterfacesAdded) or refreshes RSSI."""
        wanted = self.adapter.filter_uuids
        for p in self.peripherals:
            if not p.device.advertises or p.iface.connected:
                continue
            if wanted and uuid128(p.device.service_uuid) not in wanted:
                continue
            if not p.exported:
                self.bus.export(p.path, p.iface)
                p.exported = True
            else:
                p.iface.set(RSSI=p.iface.rssi - 1 if p.iface.rssi > -90 else -60)

    def remove_device(self, path: str) -> None:
        for p in self.peripherals:
            if p.path == path and p.exported:
                p.disconnect("removed")
                self.bus.unexport(p.path, p.iface)
                p.exported = False
                p.iface.paired = False
                return
        raise DBusError("org.bluez.Error.DoesNotExist", "Does Not Exist")

    def peripheral(self, serial: str) -> Peripheral:
        return next(p for p in self.peripherals if p.device.serial == serial)
