"""BlueZ's D-Bus objects (``org.bluez.*``), as much of them as bleak's BlueZ backend uses.

Why a double and not a mock: bleak, dbus-fast and a real ``dbus-daemon`` all run for real; only the
radio behind BlueZ is simulated. Each object answers like bluetoothd does (same error names, same
PropertiesChanged order: ``Connected`` before the Connect reply, ``ServicesResolved`` after the
GATT objects appear) and hands the GATT work to a :class:`~simulators.devices.radio.SimLink`, so the
peripherals are the very same simulated cuffs and meters the ``sim`` backend uses.
"""

# No ``from __future__ import annotations``: dbus-fast reads these annotations at run time and
# takes a real ``None`` return (not the string "None") for "no reply arguments".
from typing import TYPE_CHECKING, Annotated, Any

from dbus_fast import DBusError, PropertyAccess, Variant
from dbus_fast.annotations import (
    DBusBool,
    DBusBytes,
    DBusDict,
    DBusInt16,
    DBusObjectPath,
    DBusSignature,
    DBusStr,
    DBusUInt16,
)
from dbus_fast.service import ServiceInterface, dbus_method, dbus_property

if TYPE_CHECKING:
    from simulators.bluez.double import BluezDouble, Peripheral

DBusStrList = Annotated[list[str], DBusSignature("as")]
DBusManufacturerData = Annotated[dict[int, Variant], DBusSignature("a{qv}")]

ERR = "org.bluez.Error."


def uuid128(uuid16: int) -> str:
    """BlueZ spells every UUID in its 128-bit lower-case form."""
    return f"0000{uuid16:04x}-0000-1000-8000-00805f9b34fb"


def bluez_error(name: str, text: str) -> DBusError:
    """An ``org.bluez.Error.<name>`` reply, as bluetoothd sends it."""
    return DBusError(ERR + name, text)


def att_error(exc: BaseException) -> DBusError:
    """The D-Bus error bluetoothd answers for a failed GATT operation on the simulated link."""
    if isinstance(exc, LookupError):
        return bluez_error("NotSupported", "Operation is not supported")
    if isinstance(exc, PermissionError):
        return bluez_error("NotPermitted", "Not paired")
    if isinstance(exc, ConnectionError):
        return bluez_error("Failed", "Not connected")
    text = str(exc)
    code = text.split("ATT error ", 1)[1][:4] if "ATT error 0x" in text else "0x0e"
    return bluez_error("Failed", f"Operation failed with ATT error: {code}")


class Adapter(ServiceInterface):
    """``org.bluez.Adapter1`` at ``/org/bluez/hci0``."""

    def __init__(self, double: "BluezDouble", address: str) -> None:
        super().__init__("org.bluez.Adapter1")
        self._double = double
        self._address = address
        self.powered = True
        self.discovering = False
        self.filter_uuids: frozenset[str] = frozenset()

    @dbus_method()
    async def StartDiscovery(self) -> None:
        self._double.check_powered()
        if self._double.take_fault("start_discovery") is not None:
            raise bluez_error("InProgress", "Operation already in progress")
        if not self.discovering:
            self.discovering = True
            self.emit_properties_changed({"Discovering": True})
        self._double.advertise()

    @dbus_method()
    async def StopDiscovery(self) -> None:
        if not self.discovering:
            raise bluez_error("Failed", "No discovery started")
        self.discovering = False
        self.emit_properties_changed({"Discovering": False})

    @dbus_method()
    def SetDiscoveryFilter(self, filters: DBusDict) -> None:
        self._double.check_powered()
        uuids = filters.get("UUIDs")
        self.filter_uuids = frozenset(str(u).lower() for u in uuids.value) if uuids else frozenset()

    @dbus_method()
    def RemoveDevice(self, device: DBusObjectPath) -> None:
        self._double.remove_device(device)

    @dbus_property(access=PropertyAccess.READ)
    def Address(self) -> DBusStr:
        return self._address

    @dbus_property(access=PropertyAccess.READ)
    def Name(self) -> DBusStr:
        return "rpmflow-bluez-double"

    @dbus_property(access=PropertyAccess.READ)
    def Alias(self) -> DBusStr:
        return "rpmflow-bluez-double"

    @dbus_property()
    def Powered(self) -> DBusBool:
        return self.powered

    @Powered.setter  # type: ignore[no-redef]  # dbus-fast's setter idiom
    def Powered(self, value: DBusBool) -> None:
        self._double.set_powered(value)

    @dbus_property(access=PropertyAccess.READ)
    def Discovering(self) -> DBusBool:
        return self.discovering

    @dbus_property(access=PropertyAccess.READ)
    def Roles(self) -> DBusStrList:
        return ["central", "peripheral"]


class Device(ServiceInterface):
    """``org.bluez.Device1``: one simulated peripheral as bluetoothd shows it."""

    def __init__(self, peripheral: "Peripheral") -> None:
        super().__init__("org.bluez.Device1")
        self._p = peripheral
        self.connected = False
        self.services_resolved = False
        self.paired = False
        self.trusted = False
        self.rssi = -60

    @dbus_method()
    async def Connect(self) -> None:
        await self._p.connect()

    @dbus_method()
    async def Disconnect(self) -> None:
        self._p.disconnect("Disconnect called")

    @dbus_method()
    async def Pair(self) -> None:
        await self._p.pair()

    @dbus_method()
    def CancelPairing(self) -> None:
        """Nothing to cancel: pairing answers at once."""

    def set(self, **changed: Any) -> None:
        """Change properties by their D-Bus names and signal them (one PropertiesChanged)."""
        for name, value in changed.items():
            setattr(self, _ATTR[name], value)
        self.emit_properties_changed(changed)

    @dbus_property(access=PropertyAccess.READ)
    def Address(self) -> DBusStr:
        return self._p.device.address

    @dbus_property(access=PropertyAccess.READ)
    def AddressType(self) -> DBusStr:
        return "public"

    @dbus_property(access=PropertyAccess.READ)
    def Name(self) -> DBusStr:
        return self._p.device.model

    @dbus_property(access=PropertyAccess.READ)
    def Alias(self) -> DBusStr:
        return self._p.device.model

    @dbus_property(access=PropertyAccess.READ)
    def Adapter(self) -> DBusObjectPath:
        return self._p.adapter_path

    @dbus_property(access=PropertyAccess.READ)
    def Paired(self) -> DBusBool:
        return self.paired

    @dbus_property(access=PropertyAccess.READ)
    def Bonded(self) -> DBusBool:
        return self.paired

    @dbus_property()
    def Trusted(self) -> DBusBool:
        return self.trusted

    @Trusted.setter  # type: ignore[no-redef]
    def Trusted(self, value: DBusBool) -> None:
        self.trusted = value

    @dbus_property(access=PropertyAccess.READ)
    def Blocked(self) -> DBusBool:
        return False

    @dbus_property(access=PropertyAccess.READ)
    def LegacyPairing(self) -> DBusBool:
        return False

    @dbus_property(access=PropertyAccess.READ)
    def Connected(self) -> DBusBool:
        return self.connected

    @dbus_property(access=PropertyAccess.READ)
    def ServicesResolved(self) -> DBusBool:
        return self.services_resolved

    @dbus_property(access=PropertyAccess.READ)
    def RSSI(self) -> DBusInt16:
        return self.rssi

    @dbus_property(access=PropertyAccess.READ)
    def UUIDs(self) -> DBusStrList:
        return [uuid128(self._p.device.service_uuid)]

    @dbus_property(access=PropertyAccess.READ)
    def ManufacturerData(self) -> DBusManufacturerData:
        return dict(self._p.manufacturer_data)

    @dbus_property(access=PropertyAccess.READ)
    def ServiceData(self) -> DBusDict:
        return {}


_ATTR = {"Connected": "connected", "ServicesResolved": "services_resolved", "Paired": "paired",
         "Bonded": "paired", "RSSI": "rssi", "Trusted": "trusted"}


class GattService(ServiceInterface):
    """``org.bluez.GattService1``."""

    def __init__(self, uuid16: int, device_path: str) -> None:
        super().__init__("org.bluez.GattService1")
        self._uuid = uuid128(uuid16)
        self._device = device_path

    @dbus_property(access=PropertyAccess.READ)
    def UUID(self) -> DBusStr:
        return self._uuid

    @dbus_property(access=PropertyAccess.READ)
    def Primary(self) -> DBusBool:
        return True

    @dbus_property(access=PropertyAccess.READ)
    def Device(self) -> DBusObjectPath:
        return self._device


class GattCharacteristic(ServiceInterface):
    """``org.bluez.GattCharacteristic1``: reads, writes and notifications go to the peripheral's link.

    A notification or indication is a PropertiesChanged on ``Value``, as bluetoothd sends it.
    """

    def __init__(self, peripheral: "Peripheral", uuid16: int, flags: list[str], service_path: str) -> None:
        super().__init__("org.bluez.GattCharacteristic1")
        self._p = peripheral
        self.uuid16 = uuid16
        self._flags = flags
        self._service = service_path
        self.value = b""
        self.notifying = False

    @dbus_method()
    async def ReadValue(self, options: DBusDict) -> DBusBytes:
        data = await self._p.read(self.uuid16)
        if self.notifying:  # bluetoothd echoes a read as a Value change to notification sessions
            self.push(data)
        else:
            self.value = data
        return data

    @dbus_method()
    async def WriteValue(self, value: DBusBytes, options: DBusDict) -> None:
        kind = options.get("type")
        await self._p.write(self.uuid16, bytes(value), response=kind is None or kind.value != "command")

    @dbus_method()
    async def StartNotify(self) -> None:
        if "notify" not in self._flags and "indicate" not in self._flags:
            raise bluez_error("NotSupported", "Operation is not supported")
        if not self.notifying:
            self.notifying = True
            self.emit_properties_changed({"Notifying": True})
            await self._p.subscribe(self)

    @dbus_method()
    def StopNotify(self) -> None:
        if not self.notifying:
            raise bluez_error("Failed", "No notify session started")
        self.notifying = False
        self._p.unsubscribe(self.uuid16)
        self.emit_properties_changed({"Notifying": False})

    def push(self, data: bytes) -> None:
        """Device side: one notification or indication."""
        self.value = data
        self.emit_properties_changed({"Value": data})

    @dbus_property(access=PropertyAccess.READ)
    def UUID(self) -> DBusStr:
        return uuid128(self.uuid16)

    @dbus_property(access=PropertyAccess.READ)
    def Service(self) -> DBusObjectPath:
        return self._service

    @dbus_property(access=PropertyAccess.READ)
    def Value(self) -> DBusBytes:
        return self.value

    @dbus_property(access=PropertyAccess.READ)
    def Notifying(self) -> DBusBool:
        return self.notifying

    @dbus_property(access=PropertyAccess.READ)
    def Flags(self) -> DBusStrList:
        return list(self._flags)

    @dbus_property(access=PropertyAccess.READ)
    def MTU(self) -> DBusUInt16:
        return 247


def flags_of(properties: str) -> list[str]:
    """The simulator's ``"read,write,notify"`` → BlueZ's Flags (write-without-response too)."""
    flags = [p for p in properties.split(",") if p]
    if "write" in flags:
        flags.append("write-without-response")
    return flags
