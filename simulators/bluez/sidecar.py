"""A BlueZ double beside one gateway process: its own dbus-daemon and ``python -m simulators.bluez``.

Why: the chaos run (and anything else that starts gateways as processes) can put a gateway on the
bleak backend by giving it ``DBUS_SYSTEM_BUS_ADDRESS`` of a bus where this double owns org.bluez.
The double outlives gateway restarts, so its devices keep their memory as real ones would.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from simulators.bluez.bus import start_bus, stop_bus


class DoubleSidecar:
    def __init__(self, directory: Path, argv: list[str]) -> None:
        self.directory = directory
        self.argv = argv  # python -m simulators.bluez arguments after --bus
        self.bus: subprocess.Popen[str] | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.address = ""

    def start(self, env: dict[str, str], timeout_s: float = 20.0) -> str:
        """Start bus and double; the bus address once org.bluez is owned."""
        self.bus, self.address = start_bus(self.directory)
        log = self.directory / "bluez-double.log"
        with log.open("ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "simulators.bluez", "--bus", self.address,
                                          *self.argv], env=env, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while "ready" not in log.read_text(errors="replace"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the BlueZ double did not start; see {log}")
            time.sleep(0.05)
        return self.address

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(20)
        self.proc = None
        if self.bus is not None:
            stop_bus(self.bus)
            self.bus = None
