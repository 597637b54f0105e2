"""The gateway service on its own event-loop thread, for tests that drive it with a simulated radio."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from gateway.service import GatewayService
from gateway.settings import Settings
from simulators.devices import SimulatedRadio
from tests.waiting import wait_for


@contextmanager
def running(settings: Settings, radio: SimulatedRadio) -> Iterator[GatewayService]:
    """Start the service, yield it once its outbox is open; stop it as SIGTERM would."""
    holder: dict[str, GatewayService] = {}
    started = threading.Event()

    def main() -> None:
        async def go() -> None:
            holder["service"] = GatewayService(settings, radio=radio)
            started.set()
            await holder["service"].run()

        asyncio.run(go())

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    wait_for(started.is_set, 10, "service start")
    service = holder["service"]
    wait_for(lambda: service.outbox is not None, 10, "service running")
    try:
        yield service
    finally:
        service.request_stop()
        thread.join(20)
        assert not thread.is_alive(), "gateway did not stop"
