"""A private D-Bus "system" bus: a real ``dbus-daemon`` on a socket in a directory of ours.

Used by the tests (tests/gateway/private_bus.py re-exports it) and by ``rpmflow-sim demo`` with
``RPMFLOW_SIM_DEMO_BLUEZ`` (a gateway on the bleak backend against the BlueZ double).

Point ``DBUS_SYSTEM_BUS_ADDRESS`` at :attr:`PrivateBus.address` and bleak (through dbus-fast)
talks to it instead of the machine's system bus. Nothing owns ``org.bluez`` on it unless a test
puts a BlueZ double there (issue 19). Debian package ``dbus`` (scripts/setup.sh installs it).
"""

from __future__ import annotations

import selectors
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
  </policy>
</busconfig>
"""


def start_bus(directory: Path, timeout_s: float = 10.0) -> tuple[subprocess.Popen[str], str]:
    """Start ``dbus-daemon`` with its own config; its process and address."""
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "bus.conf"
    config.write_text(CONFIG.format(socket=directory / "system_bus_socket"))
    proc = subprocess.Popen(["dbus-daemon", f"--config-file={config}", "--nofork", "--print-address"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        return proc, _read_address(proc, timeout_s)
    except BaseException:
        stop_bus(proc, timeout_s)
        raise


def stop_bus(proc: subprocess.Popen[str], timeout_s: float = 10.0) -> None:
    proc.terminate()
    proc.wait(timeout_s)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    proc.stderr.close()


@contextmanager
def private_bus(directory: Path, timeout_s: float = 10.0) -> Iterator[str]:
    """Start ``dbus-daemon`` with its own config; yield its address; stop it."""
    proc, address = start_bus(directory, timeout_s)
    try:
        yield address
    finally:
        stop_bus(proc, timeout_s)


def _read_address(proc: subprocess.Popen[str], timeout_s: float) -> str:
    """The first line dbus-daemon prints (its address), waiting at most ``timeout_s``."""
    assert proc.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if selector.select(timeout=deadline - time.monotonic()):
                address = proc.stdout.readline().strip()
                if address:
                    return address
            if proc.poll() is not None:
                break
    raise AssertionError(f"dbus-daemon printed no address within {timeout_s} s (exit {proc.poll()})")
