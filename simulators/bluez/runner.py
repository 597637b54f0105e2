"""The BlueZ double on its own thread and event loop, or as a process (``python -m simulators.bluez``).

Why a thread: a gateway service under test runs its own loop (and bleak one BlueZ manager per loop);
the double must answer D-Bus calls whatever that loop is doing, exactly like bluetoothd would.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import cast

from simulators.bluez.double import BluezDouble
from simulators.devices import SimDevice, build_devices
from simulators.devices.scenarios import SCENARIOS


@contextmanager
def double_thread(bus_address: str, devices: Sequence[SimDevice], timeout_s: float = 10.0
                  ) -> Iterator[BluezDouble]:
    """Run a :class:`BluezDouble` on a daemon thread until the block ends."""
    ready = threading.Event()
    holder: dict[str, object] = {}

    async def main() -> None:
        stop = asyncio.Event()
        holder["stop"] = (asyncio.get_running_loop(), stop)
        try:
            async with BluezDouble(bus_address, devices) as bluez:
                holder["double"] = bluez
                ready.set()
                await stop.wait()
        except BaseException as exc:
            holder["error"] = exc
            ready.set()

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True, name="bluez-double")
    thread.start()
    if not ready.wait(timeout_s) or "error" in holder:
        raise RuntimeError(f"the BlueZ double did not start on {bus_address}: {holder.get('error')}")
    try:
        bluez = holder["double"]
        assert isinstance(bluez, BluezDouble)
        yield bluez
    finally:
        loop, stop = cast(tuple[asyncio.AbstractEventLoop, asyncio.Event], holder["stop"])
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout_s)


def main(argv: list[str] | None = None) -> int:
    """``python -m simulators.bluez --bus ADDRESS``: bluetoothd's stand-in until SIGTERM."""
    ap = argparse.ArgumentParser(prog="python -m simulators.bluez", description=__doc__)
    ap.add_argument("--bus", required=True, help="D-Bus address to own org.bluez on")
    ap.add_argument("--devices", default="bp:SIM-BP-0001,glucose:SIM-GL-0001")
    ap.add_argument("--scenario", default="normal", choices=sorted(SCENARIOS))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--interval-s", type=float, default=20.0)
    ap.add_argument("--tz", default="UTC")
    ap.add_argument("--epoch", type=datetime.fromisoformat, default=None)
    args = ap.parse_args(argv)
    try:
        devices = build_devices(args.devices, args.scenario, args.seed, args.interval_s, args.tz, args.epoch)
    except ValueError as exc:
        print(f"simulators.bluez: {exc}", file=sys.stderr)
        return 2

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        async with BluezDouble(args.bus, devices):
            print("ready", flush=True)
            await stop.wait()

    try:
        asyncio.run(serve())
    except (OSError, RuntimeError) as exc:
        print(f"simulators.bluez: cannot serve on {args.bus}: {exc}", file=sys.stderr)
        return 1
    return 0
