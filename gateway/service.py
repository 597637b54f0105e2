"""The gateway process: radio + collectors (asyncio) + publisher thread, stopped cleanly by a signal.

``run(settings)`` builds everything from the settings object (nothing reads the environment
here): the outbox (recovering rows left in flight by a crash), the paho client (created here and
handed to the publisher), the radio (bleak, or the one the CLI made from a plug-in backend found by
entry point, gateway/backends.py), then scans periodically and runs one collection session per
device found.
A session's failure is logged and recorded in the status (``last_error``); it never stops the
service. SIGTERM/SIGINT stop scanning, let running sessions finish their current step, publish the
retained ``online: false`` status and close the outbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from typing import TYPE_CHECKING

from gateway import backends
from gateway.ble_link import BleRadio
from gateway.collector import SERVICE_UUIDS, Collector, CollectorConfig, DeviceBoard
from gateway.errors import (
    BluetoothUnavailable,
    StateDirUnusable,
    TerminalError,
    TransientError,
    UnknownDevice,
    is_transient,
)
from gateway.outbox import Outbox
from gateway.publisher import Publisher, make_client
from gateway.runtime.fatal import EXIT_LOCAL, Fatal
from gateway.runtime.retry import Backoff
from gateway.settings import Settings
from gateway.state_dir import prepare_state_dir

if TYPE_CHECKING:  # pragma: no cover
    import paho.mqtt.client as mqtt

log = logging.getLogger(__name__)

#: adapter off / rfkill-blocked: scan again after this (jittered) back-off, up to 5 minutes
RADIO_BACKOFF = Backoff(base_s=5.0, cap_s=300.0)


class GatewayService:
    """Scan → sessions → outbox; the publisher thread drains the outbox to the broker."""

    def __init__(self, settings: Settings, *, radio: BleRadio | None = None,
                 client: mqtt.Client | None = None) -> None:
        self.settings = settings
        self.radio = radio or backends.make_radio(settings.backend, {}, settings.zone)
        self.client = client or make_client(settings)
        self.board = DeviceBoard()
        self.outbox: Outbox | None = None
        self.publisher = Publisher.from_settings(self.client, settings, devices=self.board.snapshot)
        self.publisher.on_fatal = self.request_stop  # the broker refused us past the bound
        self.stop_event = asyncio.Event()
        self._sessions: dict[str, asyncio.Task[None]] = {}
        self._denied: set[str] = set()
        self._last_poll: dict[str, float] = {}
        self._radio_failures = 0  # consecutive scans refused by a transient Bluetooth failure
        self._loop: asyncio.AbstractEventLoop | None = None

    def request_stop(self) -> None:
        """Thread-safe: stop as SIGTERM would (from a test thread or a signal handler)."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.stop_event.set)

    def _collector(self, outbox: Outbox) -> Collector:
        s = self.settings
        config = CollectorConfig(
            gateway_id=s.gateway_id, zone=s.zone, clock_drift_max_s=s.clock_drift_max_s,
            session_idle_s=s.session_idle_s, racp_timeout_s=s.racp_timeout_s,
            context_timeout_s=s.context_timeout_s, allow=frozenset(s.devices),
            oximetry_window_s=s.oximetry_window_s,
        )
        return Collector(self.radio, outbox, config, self.board, on_commit=self.publisher.wake)

    async def run(self) -> None:
        s = self.settings
        self._loop = asyncio.get_running_loop()
        prepare_state_dir(s.outbox_path)
        self.outbox = Outbox(s.outbox_path, s.outbox_capacity, recover=True,
                             confirm_timeout_s=s.confirm_timeout_s)
        collector = self._collector(self.outbox)
        self.publisher.start()
        log.info("gateway %s up: backend %s, outbox %s (%d not yet confirmed), broker %s:%d, %s",
                 s.gateway_id, s.backend, s.outbox_path, self.outbox.depth(), s.mqtt.host, s.mqtt.port,
                 f"server acks (confirm timeout {s.confirm_timeout_s:g} s)" if s.server_acks
                 else "delete on PUBACK (server acks off)")
        # a plug-in backend (the simulator) answers a scan at once; a real radio listens a while
        scan_timeout = min(5.0, s.scan_interval_s) if s.backend == backends.BUILT_IN else 0.0
        try:
            while not self.stop_event.is_set():
                pause = await self._scan_once(collector, scan_timeout)
                self._poll_due(collector)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop_event.wait(), timeout=max(pause, s.scan_interval_s))
        finally:
            await self._finish_sessions(collector)
            await asyncio.to_thread(self.publisher.stop)
            self.outbox.close()
            log.info("gateway %s stopped", s.gateway_id)
        if self.publisher.fatal is not None:
            raise self.publisher.fatal  # the console script prints it as one line, exit 3

    async def _scan_once(self, collector: Collector, timeout: float) -> float:
        """Scan and start sessions; seconds to wait before the next scan at least (back-off).

        A terminal :class:`BluetoothUnavailable` (no bus, no BlueZ, no adapter, no permission)
        stops the service; a transient one (adapter off, rfkill) is logged and retried later.
        """
        try:
            adverts = await self.radio.scan(SERVICE_UUIDS, timeout)
        except BluetoothUnavailable as exc:
            if not is_transient(exc):
                raise
            delay = RADIO_BACKOFF.delay(self._radio_failures)
            self._radio_failures += 1
            log.warning("%s; scanning again in %.0f s", exc, delay)
            return delay
        except (OSError, TimeoutError) as exc:
            log.warning("scan failed: %s", exc)
            return 0.0
        self._radio_failures = 0
        for advert in adverts:
            address = advert.address
            running = self._sessions.get(address)
            if address in self._denied or (running is not None and not running.done()):
                continue
            self._sessions[address] = asyncio.create_task(self._session(collector, address),
                                                          name=f"session-{address}")
        return 0.0

    def _poll_due(self, collector: Collector) -> None:
        """Connect to devices that never push (quirk: polling) once their interval has passed,
        even when they were not seen advertising: a bonded cuff accepts a connection while idle."""
        now = time.monotonic()
        for address, quirk_every_s in collector.poll_schedule().items():
            every_s = self.settings.poll_interval_s or quirk_every_s
            running = self._sessions.get(address)
            if address in self._denied or (running is not None and not running.done()):
                continue
            if now - self._last_poll.get(address, float("-inf")) < every_s:
                continue
            self._last_poll[address] = now
            self._sessions[address] = asyncio.create_task(self._session(collector, address),
                                                          name=f"poll-{address}")

    async def _session(self, collector: Collector, address: str) -> None:
        try:
            result = await collector.session(address)
            log.info("session %s: %d new, %d duplicate, %d rejected, %d not published, offset %s s%s",
                     result.device_id, result.committed, result.duplicates, result.rejected,
                     result.not_published, result.clock_offset_s,
                     f" ({'; '.join(result.notes)})" if result.notes else "")
        except UnknownDevice as exc:
            self._denied.add(address)
            log.warning("ignoring %s: not in RPMFLOW_GATEWAY_DEVICES (%s)", address, exc)
        except TransientError as exc:
            log.warning("session %s: %s (will retry)", address, exc)
        except TerminalError as exc:
            log.error("session %s: %s", address, exc)
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug must not stop the other devices: log it with its traceback
            log.exception("session %s crashed", address)
        finally:
            self.publisher.request_status()

    async def _finish_sessions(self, collector: Collector) -> None:
        tasks = [t for t in self._sessions.values() if not t.done()]
        if not tasks:
            return
        _done, pending = await asyncio.wait(tasks, timeout=self.settings.session_idle_s + 2)
        if pending:  # still streaming (continuous oximetry): end them as on a lost link, then store
            collector.stopping = True
            _done, pending = await asyncio.wait(pending, timeout=2.0)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


def run(settings: Settings, radio: BleRadio | None = None) -> int:
    """Blocking entry point of ``rpmflow-gateway run`` (the CLI builds the radio of the backend)."""

    async def main() -> None:
        service = GatewayService(settings, radio=radio)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, service.stop_event.set)
        await service.run()

    try:
        asyncio.run(main())
    except (BluetoothUnavailable, StateDirUnusable) as exc:  # only terminal ones get here
        raise Fatal(str(exc), exit_code=EXIT_LOCAL) from exc
    return 0
