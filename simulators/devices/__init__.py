"""Simulated BLE devices behind the gateway's radio seam (exact GATT bytes, no gateway imports)."""

from simulators.devices.bp_cuff import BpCuff
from simulators.devices.glucose_meter import GlucoseMeter
from simulators.devices.radio import SimDevice, SimLink, SimRecord, SimulatedRadio
from simulators.devices.scenarios import SCENARIOS, build_devices, build_radio, parse_devices_spec

__all__ = [
    "SCENARIOS",
    "BpCuff",
    "GlucoseMeter",
    "SimDevice",
    "SimLink",
    "SimRecord",
    "SimulatedRadio",
    "build_devices",
    "build_radio",
    "parse_devices_spec",
]
