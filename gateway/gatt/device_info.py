"""Device Information Service 0x180A: strings, System ID 0x2A23 and PnP ID 0x2A50.

The serial number is the stable device key (BLE addresses rotate); manufacturer, model and firmware
select quirk profiles.  DIS strings are UTF-8 without a terminator, but some devices pad with NULs
or send Latin-1: padding is stripped and undecodable bytes are replaced, with a warning.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from gateway.gatt._wire import Reader, require_layout

__all__ = [
    "DIS_STRING_CHARACTERISTICS",
    "DeviceInformation",
    "PnpId",
    "SystemId",
    "VendorIdSource",
    "decode_dis_string",
    "parse_pnp_id",
    "parse_system_id",
]

DIS_STRING_CHARACTERISTICS = {
    0x2A29: "manufacturer",
    0x2A24: "model",
    0x2A25: "serial",
    0x2A27: "hardware_revision",
    0x2A26: "firmware_revision",
    0x2A28: "software_revision",
}


def decode_dis_string(data: bytes) -> tuple[str, tuple[str, ...]]:
    """Decode a DIS UTF-8 string; returns ``(text, warnings)`` (NUL/space padding stripped)."""
    data = bytes(data)
    warnings: list[str] = []
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("utf-8", errors="replace")
        warnings.append(f"invalid UTF-8 replaced: {data.hex()}")
    stripped = text.rstrip("\x00").strip()
    if "\x00" in stripped:
        warnings.append("embedded NUL in string")
        stripped = stripped.split("\x00", 1)[0].strip()
    return stripped, tuple(warnings)


@dataclass(frozen=True, slots=True)
class SystemId:
    """0x2A23: 40-bit manufacturer-defined identifier and 24-bit OUI (little-endian uint64)."""

    manufacturer_identifier: int
    organizationally_unique_identifier: int
    raw_hex: str
    warnings: tuple[str, ...]


def parse_system_id(data: bytes) -> SystemId:
    data = bytes(data)
    warnings = require_layout(data, "2A23", [("manufacturer_identifier", 5), ("oui", 3)])
    reader = Reader(data, "2A23")
    manufacturer = int.from_bytes(reader.take(5, "manufacturer_identifier"), "little")
    oui = int.from_bytes(reader.take(3, "oui"), "little")
    return SystemId(manufacturer, oui, data.hex(), tuple(warnings))


class VendorIdSource(enum.IntEnum):
    BLUETOOTH_SIG = 1
    USB_IMPLEMENTERS_FORUM = 2


@dataclass(frozen=True, slots=True)
class PnpId:
    """0x2A50: vendor id source, vendor id, product id, product version."""

    vendor_id_source: int
    vendor_id: int
    product_id: int
    product_version: int
    raw_hex: str
    warnings: tuple[str, ...]


def parse_pnp_id(data: bytes) -> PnpId:
    data = bytes(data)
    layout = [("vendor_id_source", 1), ("vendor_id", 2), ("product_id", 2), ("product_version", 2)]
    warnings = require_layout(data, "2A50", layout)
    reader = Reader(data, "2A50")
    source = reader.u8("vendor_id_source")
    if source not in VendorIdSource._value2member_map_:
        warnings.append(f"reserved vendor id source {source}")
    return PnpId(
        vendor_id_source=source,
        vendor_id=reader.u16("vendor_id"),
        product_id=reader.u16("product_id"),
        product_version=reader.u16("product_version"),
        raw_hex=data.hex(),
        warnings=tuple(warnings),
    )


@dataclass(frozen=True, slots=True)
class DeviceInformation:
    """What the gateway records on first connect; ``serial`` is the stable device key when present."""

    manufacturer: str | None = None
    model: str | None = None
    serial: str | None = None
    hardware_revision: str | None = None
    firmware_revision: str | None = None
    software_revision: str | None = None
    system_id: SystemId | None = None
    pnp_id: PnpId | None = None

    @classmethod
    def from_values(cls, values: dict[int, bytes]) -> DeviceInformation:
        """Build from ``{uuid16: value}`` as read from the device (missing characteristics stay ``None``)."""
        strings = {
            name: decode_dis_string(values[uuid])[0] or None
            for uuid, name in DIS_STRING_CHARACTERISTICS.items()
            if uuid in values
        }
        return cls(
            manufacturer=strings.get("manufacturer"),
            model=strings.get("model"),
            serial=strings.get("serial"),
            hardware_revision=strings.get("hardware_revision"),
            firmware_revision=strings.get("firmware_revision"),
            software_revision=strings.get("software_revision"),
            system_id=parse_system_id(values[0x2A23]) if 0x2A23 in values else None,
            pnp_id=parse_pnp_id(values[0x2A50]) if 0x2A50 in values else None,
        )

    def quirk_key(self) -> tuple[str, str, str]:
        """(manufacturer, model, firmware) lower-cased, for looking up a per-model quirk profile."""
        return (
            (self.manufacturer or "").lower(),
            (self.model or "").lower(),
            (self.firmware_revision or "").lower(),
        )
