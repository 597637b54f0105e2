"""Device Information Service strings, System ID and PnP ID."""

from __future__ import annotations

import pytest

from gateway.errors import MalformedMeasurement
from gateway.gatt import DeviceInformation, decode_dis_string, parse_pnp_id, parse_system_id


@pytest.mark.parametrize(
    ("raw", "text", "warned"),
    [
        (b"OMRON HEALTHCARE", "OMRON HEALTHCARE", False),
        (b"Roche\x00\x00", "Roche", False),
        (b"HEM-7361T \x00", "HEM-7361T", False),
        (b"A&D\x00junk", "A&D", True),
        (b"\xff\xfeSN", "\ufffd\ufffdSN", True),
        (b"", "", False),
    ],
)
def test_dis_strings(raw: bytes, text: str, warned: bool) -> None:
    decoded, warnings = decode_dis_string(raw)
    assert decoded == text
    assert bool(warnings) is warned


def test_system_id() -> None:
    sid = parse_system_id(bytes.fromhex("0102030405060708"))
    assert sid.manufacturer_identifier == 0x0504030201
    assert sid.organizationally_unique_identifier == 0x080706


def test_pnp_id() -> None:
    pnp = parse_pnp_id(bytes.fromhex("010D0034120102"))
    assert (pnp.vendor_id_source, pnp.vendor_id, pnp.product_id, pnp.product_version) == (
        1,
        0x000D,
        0x1234,
        0x0201,
    )
    assert pnp.warnings == ()
    assert parse_pnp_id(bytes.fromhex("030D0034120102")).warnings == ("reserved vendor id source 3",)


@pytest.mark.parametrize("short_by", range(1, 8), ids=lambda n: f"short_by_{n}")
def test_pnp_id_short(short_by: int) -> None:
    with pytest.raises(MalformedMeasurement, match="2A50"):
        parse_pnp_id(bytes.fromhex("010D0034120102")[:-short_by])


def test_device_information_from_values() -> None:
    info = DeviceInformation.from_values(
        {
            0x2A29: b"OMRON",
            0x2A24: b"HEM-7361T",
            0x2A25: b"OMR-7361-000123\x00",
            0x2A26: b"1.2",
            0x2A50: bytes.fromhex("010D0034120102"),
        }
    )
    assert info.serial == "OMR-7361-000123"
    assert info.quirk_key() == ("omron", "hem-7361t", "1.2")
    assert info.pnp_id is not None and info.pnp_id.product_id == 0x1234
    assert info.software_revision is None and info.system_id is None
