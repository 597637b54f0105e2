"""A BlueZ double on D-Bus: bleak's BlueZ backend against the simulated peripherals (issue 19)."""

from simulators.bluez.double import ADAPTER_PATH, BluezDouble, Faults, Peripheral

__all__ = ["ADAPTER_PATH", "BluezDouble", "Faults", "Peripheral"]
