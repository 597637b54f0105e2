"""The asyncio shell around the sans-I/O collection session: radio, outbox and clock live here.

:class:`Collector` connects (bounded retries, :func:`backoff_for`), builds a
:class:`~gateway.session.CollectionSession` from what the link offers, and carries out each
command the session emits over the BLE seam (:class:`~gateway.ble_link.BleLink`) or on the
:class:`~gateway.outbox.Outbox`, answering with the event the command names. Everything a session
*decides* (Device Information, allow-list, clock offset and correction, BP indications, RACP
download, context pairing, meter resets, quirks) is in :mod:`gateway.session`.

Notification callbacks only put bytes on a queue; ``NextFrame`` takes one off (or reports a
0.1 s tick, or the lost link). Builtin exceptions from the seam are mapped to
:mod:`gateway.errors` in :func:`seam_errors`, the one place this is done.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from gateway.ble_link import BleLink, BleRadio
from gateway.board import DeviceBoard
from gateway.errors import DeviceUnavailable, GatewayError, OutboxFull, PairingNeeded, ProcedureTimeout
from gateway.outbox import Outbox
from gateway.quirks import QuirkProfile
from gateway.runtime.retry import Backoff
from gateway.sequence import next_sequence, restart_reason, sequence_after
from gateway.session import (
    KNOWN_CHARACTERISTICS,
    SERVICE_UUIDS,
    CollectionSession,
    CollectorConfig,
    Command,
    Connected,
    Event,
    SessionClock,
    SessionResult,
)
from gateway.session import protocol as p

__all__ = [
    "SERVICE_UUIDS",
    "Collector",
    "CollectorConfig",
    "DeviceBoard",
    "SessionResult",
    "backoff_for",
    "next_sequence",
    "restart_reason",
    "seam_errors",
    "sequence_after",
]

log = logging.getLogger(__name__)

SYSTEM_CLOCK = SessionClock(utc=lambda: datetime.now(UTC), monotonic=time.monotonic)
FRAME_TICK_S = 0.1  # how long NextFrame waits before the session gets to check its deadlines


_PAIRING = Backoff(base_s=10.0, cap_s=10.0)
_TIMEOUT = Backoff(base_s=1.0, cap_s=10.0)
_ABORT = Backoff(base_s=0.25, cap_s=2.0)
_REFUSED = Backoff(base_s=0.5, cap_s=15.0)
_OTHER = Backoff(base_s=1.0, cap_s=30.0)


def backoff_for(exc: BaseException, attempt: int) -> float:
    """The ceiling of the wait before connect attempt ``attempt + 1`` after ``exc`` (pure, DOMAIN
    A6); :meth:`Collector.connect` waits a full-jitter draw below it (gateway/runtime/retry.py).

    BlueZ aborts (``le-connection-abort-by-local``, "Software caused connection abort") are usually
    RF noise and succeed on a quick retry; timeouts get a slower exponential back-off; a device that
    wants pairing will not change its mind in a second.
    """
    return _backoff_of(exc).ceiling(attempt)


def _backoff_of(exc: BaseException) -> Backoff:
    if isinstance(exc, PermissionError):
        return _PAIRING
    if isinstance(exc, TimeoutError):
        return _TIMEOUT
    if isinstance(exc, ConnectionError):
        return _ABORT if "abort" in str(exc).lower() else _REFUSED
    return _OTHER


@contextlib.contextmanager
def seam_errors(device_id: str, what: str) -> Iterator[None]:
    """Map the seam's builtin exceptions to :mod:`gateway.errors` (the one place we do it)."""
    try:
        yield
    except GatewayError:
        raise
    except TimeoutError as exc:
        raise ProcedureTimeout(device_id, what, 0.0) from exc
    except PermissionError as exc:
        raise PairingNeeded(device_id, f"{what}: {exc}") from exc
    except ConnectionError as exc:
        raise DeviceUnavailable(device_id, f"{what}: {exc}") from exc
    except OSError as exc:
        raise DeviceUnavailable(device_id, f"{what}: ATT error ({exc})") from exc


def connected_event(link: BleLink) -> Connected:
    """What the session needs to know about a fresh link: which characteristics are there."""
    present = frozenset(u for u in KNOWN_CHARACTERISTICS if link.has_characteristic(u))
    writable = frozenset(u for u in (p.CURRENT_TIME, p.DATE_TIME) if u in present and link.can_write(u))
    return Connected(link.address, present, writable)


class Collector:
    """Runs sessions against devices found by a :class:`BleRadio`; commits to one :class:`Outbox`."""

    def __init__(self, radio: BleRadio, outbox: Outbox, config: CollectorConfig,
                 board: DeviceBoard | None = None, on_commit: Callable[[], None] | None = None,
                 clock: SessionClock = SYSTEM_CLOCK) -> None:
        self.radio = radio
        self.outbox = outbox
        self.config = config
        self.board = board or DeviceBoard()
        self.on_commit = on_commit or (lambda: None)
        self.clock = clock
        self._profiles: dict[str, QuirkProfile] = {}  # address → quirks, selected once per device
        # Set at shutdown for sessions that never go quiet (continuous oximetry): they see the link
        # as lost once the frames already received are handed over, so their open window is stored.
        self.stopping = False

    async def connect(self, address: str, on_disconnect: Callable[[], None]) -> BleLink:
        last: BaseException | None = None
        for attempt in range(self.config.connect_attempts):
            try:
                return await self.radio.connect(address, on_disconnect)
            except (OSError, TimeoutError) as exc:  # ConnectionError/PermissionError are OSErrors
                last = exc
                delay = _backoff_of(exc).delay(attempt)  # full jitter below backoff_for's ceiling
                log.info("connect %s failed (%s); retry %d in %.2f s", address, exc, attempt + 1, delay)
                if attempt + 1 < self.config.connect_attempts:
                    await asyncio.sleep(delay)
        raise DeviceUnavailable(address, f"connect failed {self.config.connect_attempts} times: {last}")

    async def session(self, address: str) -> SessionResult:
        """Connect to ``address``, collect what is new, disconnect. Raises typed gateway errors."""
        lost = asyncio.Event()
        link = await self.connect(address, lost.set)
        shell = _Shell(self, link, lost)
        session = CollectionSession(self.config, self.clock, connected_event(link))
        try:
            with seam_errors(address, "session"):
                command = session.start()
                while command is not None:
                    try:
                        answer = await shell.execute(command)
                    except BaseException:
                        session.abandon()
                        raise
                    command = session.send(answer)
                assert session.result is not None  # send() sets it before it returns None
                return session.result
        except GatewayError as exc:
            self.board.error(session.device_id, str(exc))
            raise
        finally:
            with contextlib.suppress(OSError, TimeoutError):
                await link.disconnect()

    def profile_selected(self, address: str, command: p.ProfileSelected) -> None:
        """Keep the device's quirk profile (for :meth:`poll_schedule`); log it the first time."""
        if address in self._profiles:
            return
        self._profiles[address] = command.profile
        device, names = command.device, command.profile.names
        if names:
            log.info("%s (%s / %s / fw %s): quirks applied: %s", device.id, device.manufacturer,
                     device.model, device.firmware, ", ".join(names))
            self.board.quirks(device.id, names)

    def poll_schedule(self) -> dict[str, float]:
        """Address → seconds between connections, for devices that never push on their own.

        The service should connect to these even when they were not seen advertising
        (a bonded cuff accepts a connection while "off"; eigger/hass-omron #189).
        """
        return {address: p.poll_interval_s for address, p in self._profiles.items()
                if p.poll_interval_s is not None}


class _Shell:
    """Carries out one session's commands on its link and the collector's outbox and board."""

    def __init__(self, collector: Collector, link: BleLink, lost: asyncio.Event) -> None:
        self.collector = collector
        self.link = link
        self.lost = lost
        self.frames: asyncio.Queue[p.FrameReceived] = asyncio.Queue()

    async def execute(self, command: Command) -> Event | None:
        if isinstance(command, p.Read | p.Write | p.Subscribe | p.NextFrame | p.CheckLink):
            return await self._radio(command)
        return self._store(command)

    def _enqueue(self, uuid: int) -> Callable[[bytes], None]:
        clock = self.collector.clock

        def callback(data: bytes) -> None:
            self.frames.put_nowait(p.FrameReceived(uuid, bytes(data), clock.utc()))  # hand over only

        return callback

    async def _radio(self, command: p.Read | p.Write | p.Subscribe | p.NextFrame | p.CheckLink) -> Event:
        link = self.link
        if isinstance(command, p.NextFrame):
            if self.collector.stopping:
                try:
                    return self.frames.get_nowait()  # what arrived before the stop is still stored
                except asyncio.QueueEmpty:
                    return p.Disconnected()
            try:
                return await asyncio.wait_for(self.frames.get(), timeout=FRAME_TICK_S)
            except TimeoutError:
                return p.Disconnected() if self.lost.is_set() else p.TimerFired()
        if isinstance(command, p.CheckLink):
            return p.LinkState(not self.lost.is_set())
        if isinstance(command, p.Read):
            try:
                return p.ReadDone(command.uuid, await link.read(command.uuid))
            except LookupError:
                return p.ReadDone(command.uuid, None)
        if isinstance(command, p.Subscribe):
            try:
                await link.start_notify(command.uuid, self._enqueue(command.uuid))
            except LookupError:
                if not command.optional:
                    raise
                return p.Subscribed(command.uuid, ok=False)
            return p.Subscribed(command.uuid)
        try:
            await link.write(command.uuid, command.data)
        except (OSError, LookupError, DeviceUnavailable) as exc:  # TimeoutError is an OSError
            if not command.tolerate:
                raise
            return p.WriteDone(command.uuid, str(exc))
        return p.WriteDone(command.uuid)

    def _store(self, command: Command) -> Event | None:
        outbox, board = self.collector.outbox, self.collector.board
        if isinstance(command, p.LoadDevice):
            return p.DeviceLoaded(outbox.load_device(command.key))
        if isinstance(command, p.LoadMark):
            return p.MarkLoaded(outbox.mark(command.device_id))
        if isinstance(command, p.CheckOutbox):
            return p.OutboxState(outbox.full)
        if isinstance(command, p.StoreReading):
            return self._store_reading(command)
        if isinstance(command, p.RecordReset):
            reset = outbox.record_reset(command.device_id, command.meter_newest, command.reason)
            return p.ResetRecorded(reset.detected_at, reset.meter_last)
        if isinstance(command, p.SaveDevice):
            outbox.save_device(command.key, dict(command.info))
        elif isinstance(command, p.StoreRejected):
            outbox.add_rejected(command.device_id, command.characteristic, command.reason,
                                command.payload_hex, command.received_at)
        elif isinstance(command, p.SetHighWater):
            outbox.set_high_water(command.device_id, command.seq, command.base_time)
        elif isinstance(command, p.Contact):
            board.contact(command.device_id)
        elif isinstance(command, p.ReportReset):
            board.sequence_reset(command.device_id, dict(command.entry))
        elif isinstance(command, p.ProfileSelected):
            self.collector.profile_selected(command.address, command)
        return None

    def _store_reading(self, command: p.StoreReading) -> Event:
        try:
            added = self.collector.outbox.add(command.message_id, command.kind, command.device_id,
                                              command.payload, must_keep=command.must_keep,
                                              high_water=command.high_water, remember=command.remember)
        except OutboxFull:
            return p.StoreRefused()
        if added:
            self.collector.on_commit()
        return p.Stored(added)
