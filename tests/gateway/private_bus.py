"""A private D-Bus "system" bus for tests (the implementation lives in simulators/bluez/bus.py).

Point ``DBUS_SYSTEM_BUS_ADDRESS`` at the address it yields and bleak (through dbus-fast) talks to it
instead of the machine's system bus. Nothing owns ``org.bluez`` on it unless a test puts the BlueZ
double there (simulators/bluez). Debian package ``dbus`` (scripts/setup.sh installs it).
"""

from simulators.bluez.bus import private_bus

__all__ = ["private_bus"]
