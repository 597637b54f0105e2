"""One collection session per device, above the BLE seam: plain asyncio code, testable with simulators.

A session: connect (bounded retries, :func:`backoff_for`) → Device Information (once per
address, cached in the outbox file) → allow-list check (address or serial) → Current Time read and
``device − gateway`` clock offset → collect → set the device clock when it drifted past the limit
and the device accepts CTS writes (after collecting, so stored records keep the offset they were
stamped with) → disconnect.

Collecting:

- **Blood pressure** (BPS 1.0): enable 0x2A36 (decoded and dropped: never a reading) and 0x2A35
  indications; every indication is committed to the outbox as it arrives; the session ends when
  the cuff goes quiet for ``session_idle_s`` or drops the link. A cuff forgets a reading once its
  indication is confirmed, so these rows are kept even past the outbox bound (``must_keep``);
  when the outbox is already full we do not enable indications at all, leaving them on the cuff.
- **Glucose**: enable 0x2A18 / 0x2A34 notifications and 0x2A52 indications *first*, then RACP
  "report records ≥ last committed + 1" (all records the first time); join contexts by sequence
  number (timeout); commit each record in arrival order with its high-water mark in the same
  transaction; "no records found" is success; no final indication within ``racp_timeout_s`` of the
  last progress → Abort and :class:`ProcedureTimeout`. A dropped link resumes next session from the
  last committed record. Outbox full → Abort, the rest stays on the meter.

Bytes from callbacks only go onto a queue; parsing happens here, and anything malformed becomes a
``rejected`` outbox row with its reason and hex (never lost, never a crash).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from gateway import wire
from gateway.ble_link import BleLink, BleRadio
from gateway.errors import (
    DecodeError,
    DeviceUnavailable,
    GatewayError,
    ImpossibleValue,
    MalformedMeasurement,
    OutboxFull,
    ProcedureTimeout,
    UnknownDevice,
)
from gateway.gatt import (
    ContextJoiner,
    DeviceInformation,
    GlucoseRecord,
    RacpOpCode,
    check_racp_response,
    encode_current_time,
    encode_racp_abort,
    encode_racp_report_all_records,
    encode_racp_report_records_from,
    parse_blood_pressure_measurement,
    parse_current_time,
    parse_glucose_context,
    parse_glucose_measurement,
    parse_intermediate_cuff_pressure,
    parse_racp,
)
from gateway.gatt.plausibility import check_blood_pressure, check_glucose
from gateway.outbox import Outbox

log = logging.getLogger(__name__)

BPM = 0x2A35
ICP = 0x2A36
GLUCOSE = 0x2A18
GLUCOSE_CONTEXT = 0x2A34
RACP = 0x2A52
CURRENT_TIME = 0x2A2B
DIS_CHARACTERISTICS = (0x2A29, 0x2A24, 0x2A25, 0x2A27, 0x2A26, 0x2A28)
SERVICE_UUIDS = (0x1810, 0x1808)


def backoff_for(exc: BaseException, attempt: int) -> float:
    """Seconds to wait before connect attempt ``attempt + 1`` after ``exc`` (pure, DOMAIN A6).

    BlueZ aborts (``le-connection-abort-by-local``, "Software caused connection abort") are usually
    RF noise and succeed on a quick retry; timeouts get a slower exponential back-off; a device that
    wants pairing will not change its mind in a second.
    """
    if isinstance(exc, PermissionError):
        return 10.0
    if isinstance(exc, TimeoutError):
        return min(10.0, 1.0 * 2.0**attempt)
    if isinstance(exc, ConnectionError):
        text = str(exc).lower()
        if "abort" in text:
            return min(2.0, 0.25 * 2.0**attempt)
        return min(15.0, 0.5 * 2.0**attempt)
    return min(30.0, 1.0 * 2.0**attempt)


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
        raise DeviceUnavailable(device_id, f"{what}: pairing/encryption needed ({exc})") from exc
    except ConnectionError as exc:
        raise DeviceUnavailable(device_id, f"{what}: {exc}") from exc
    except OSError as exc:
        raise DeviceUnavailable(device_id, f"{what}: ATT error ({exc})") from exc


@dataclass(frozen=True)
class CollectorConfig:
    gateway_id: str
    zone: ZoneInfo
    clock_drift_max_s: float = 60.0
    session_idle_s: float = 5.0
    racp_timeout_s: float = 30.0
    context_timeout_s: float = 2.0
    connect_attempts: int = 5
    allow: frozenset[str] = frozenset()  # BLE addresses or serial numbers; empty = every device
    duplicate_window_s: float = 10.0


class DeviceBoard:
    """Last contact / last error per device, read by the status publisher from another thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._devices: dict[str, dict[str, Any]] = {}

    def contact(self, device_id: str) -> None:
        with self._lock:
            entry = self._devices.setdefault(device_id, {"last_contact": None, "last_error": None})
            entry["last_contact"] = wire.iso_utc(datetime.now(UTC))
            entry["last_error"] = None

    def error(self, device_id: str, error: str) -> None:
        with self._lock:
            entry = self._devices.setdefault(device_id, {"last_contact": None, "last_error": None})
            entry["last_error"] = error

    def snapshot(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {k: dict(v) for k, v in self._devices.items()}


@dataclass
class SessionResult:
    device_id: str
    committed: int = 0
    duplicates: int = 0
    rejected: int = 0
    not_published: int = 0  # control solution tests
    clock_offset_s: float | None = None
    clock_set: bool = False
    complete: bool = False
    notes: list[str] = field(default_factory=list)


Frame = tuple[int, bytes, datetime]


class Collector:
    """Runs sessions against devices found by a :class:`BleRadio`; commits to one :class:`Outbox`."""

    def __init__(self, radio: BleRadio, outbox: Outbox, config: CollectorConfig,
                 board: DeviceBoard | None = None, on_commit: Callable[[], None] | None = None) -> None:
        self.radio = radio
        self.outbox = outbox
        self.config = config
        self.board = board or DeviceBoard()
        self.on_commit = on_commit or (lambda: None)

    # -- connect ---------------------------------------------------------------------------------
    async def connect(self, address: str, on_disconnect: Callable[[], None]) -> BleLink:
        last: BaseException | None = None
        for attempt in range(self.config.connect_attempts):
            try:
                return await self.radio.connect(address, on_disconnect)
            except (OSError, TimeoutError) as exc:  # ConnectionError/PermissionError are OSErrors
                last = exc
                delay = backoff_for(exc, attempt)
                log.info("connect %s failed (%s); retry %d in %.2f s", address, exc, attempt + 1, delay)
                if attempt + 1 < self.config.connect_attempts:
                    await asyncio.sleep(delay)
        raise DeviceUnavailable(address, f"connect failed {self.config.connect_attempts} times: {last}")

    # -- one session ---------------------------------------------------------------------------
    async def session(self, address: str) -> SessionResult:
        """Connect to ``address``, collect what is new, disconnect. Raises typed gateway errors."""
        lost = asyncio.Event()
        link = await self.connect(address, lost.set)
        device_id = address
        try:
            with seam_errors(address, "session"):
                device = await self._identify(link)
                device_id = device.id
                result = SessionResult(device.id)
                self.board.contact(device.id)
                offset = await self._clock_offset(link, device)
                result.clock_offset_s = offset
                timing_offset = offset
                if link.has_characteristic(BPM):
                    await self._collect_bp(link, device, timing_offset, lost, result)
                elif link.has_characteristic(RACP):
                    await self._collect_glucose(link, device, timing_offset, lost, result)
                else:
                    result.notes.append("no blood pressure or glucose service")
                if not lost.is_set():
                    result.clock_set = await self._maybe_set_clock(link, device, offset)
                self.board.contact(device.id)
                return result
        except GatewayError as exc:
            self.board.error(device_id, str(exc))
            raise
        finally:
            with contextlib.suppress(OSError, TimeoutError):
                await link.disconnect()

    async def _identify(self, link: BleLink) -> wire.DeviceIdentity:
        """Device Information, read once per address and kept in the outbox file; allow-list check."""
        address = link.address
        cached = self.outbox.load_device(address)
        if cached is None or "serial" not in cached:
            values: dict[int, bytes] = {}
            for uuid in DIS_CHARACTERISTICS:
                if link.has_characteristic(uuid):
                    with contextlib.suppress(LookupError):
                        values[uuid] = await link.read(uuid)
            try:
                info = DeviceInformation.from_values(values)
            except MalformedMeasurement as exc:
                self.outbox.add_rejected(address, exc.characteristic, exc.reason, exc.payload_hex,
                                         wire.iso_utc(datetime.now(UTC)))
                info = DeviceInformation()
            cached = {"manufacturer": info.manufacturer, "model": info.model, "serial": info.serial,
                      "firmware": info.firmware_revision, "clock_offset_s": None}
            self.outbox.save_device(address, cached)
        serial = cached.get("serial")
        allow = self.config.allow
        if allow and address not in allow and (serial is None or serial not in allow):
            raise UnknownDevice(serial or address)
        return wire.DeviceIdentity(id=serial or address, manufacturer=cached.get("manufacturer"),
                                   model=cached.get("model"), serial=serial,
                                   firmware=cached.get("firmware"), address=address)

    def _gateway_local_now(self) -> datetime:
        return datetime.now(self.config.zone).replace(tzinfo=None)

    async def _clock_offset(self, link: BleLink, device: wire.DeviceIdentity) -> float | None:
        """``device clock − gateway clock`` (both local wall clock) through Current Time 0x2A2B."""
        if not link.has_characteristic(CURRENT_TIME):
            return None
        try:
            data = await link.read(CURRENT_TIME)
        except LookupError:
            return None
        gateway_now = self._gateway_local_now()
        try:
            current = parse_current_time(data)
        except MalformedMeasurement as exc:
            self._reject(device, exc, datetime.now(UTC))
            return None
        if current.timestamp is None:
            return None
        offset = round((current.timestamp - gateway_now).total_seconds() + current.seconds_fraction, 3)
        info = self.outbox.load_device(device.address or device.id) or {}
        info["clock_offset_s"] = offset
        self.outbox.save_device(device.address or device.id, info)
        if abs(offset) > self.config.clock_drift_max_s:
            log.warning("%s: device clock off by %.1f s (limit %.0f s)", device.id, offset,
                        self.config.clock_drift_max_s)
        return offset

    async def _maybe_set_clock(self, link: BleLink, device: wire.DeviceIdentity,
                               offset: float | None) -> bool:
        if offset is None or abs(offset) <= self.config.clock_drift_max_s:
            return False
        if not link.can_write(CURRENT_TIME):
            log.warning("%s: clock drift %.1f s but Current Time is read-only; offsets correct it",
                        device.id, offset)
            return False
        try:
            await link.write(CURRENT_TIME, encode_current_time(self._gateway_local_now()))
        except (OSError, LookupError) as exc:  # e.g. ATT 0x80 "data field ignored" (eigger/hass-omron #11)
            log.warning("%s: Current Time write refused: %s", device.id, exc)
            return False
        log.info("%s: device clock set (was off by %.1f s)", device.id, offset)
        return True

    # -- shared helpers ------------------------------------------------------------------------
    def _reject(self, device: wire.DeviceIdentity, exc: DecodeError, received_at: datetime,
                characteristic: str = "", payload_hex: str = "",
                high_water: tuple[str, int] | None = None) -> None:
        if isinstance(exc, MalformedMeasurement):
            characteristic, reason, payload_hex = exc.characteristic, exc.reason, exc.payload_hex
        else:
            reason = str(exc)
        self.outbox.add_rejected(device.id, characteristic, reason, payload_hex, wire.iso_utc(received_at),
                                 high_water=high_water)

    def _timing(self, received_at: datetime, offset: float | None) -> wire.Timing:
        return wire.Timing(received_at=received_at, clock_offset_s=offset, zone=self.config.zone)

    @staticmethod
    async def _next_frame(frames: asyncio.Queue[Frame]) -> Frame | None:
        """The next frame, or None after a short tick (so loops can check deadlines and the link)."""
        try:
            return await asyncio.wait_for(frames.get(), timeout=0.1)
        except TimeoutError:
            return None

    @staticmethod
    def _enqueue(frames: asyncio.Queue[Frame], uuid: int) -> Callable[[bytes], None]:
        def callback(data: bytes) -> None:
            frames.put_nowait((uuid, bytes(data), datetime.now(UTC)))  # hand over only

        return callback

    # -- blood pressure --------------------------------------------------------------------------
    async def _collect_bp(self, link: BleLink, device: wire.DeviceIdentity, offset: float | None,
                          lost: asyncio.Event, result: SessionResult) -> None:
        if self.outbox.full:
            result.notes.append("outbox full: indications not enabled, readings stay on the cuff")
            log.error("%s: outbox full, not enabling BP indications", device.id)
            return
        frames: asyncio.Queue[Frame] = asyncio.Queue()
        if link.has_characteristic(ICP):
            with contextlib.suppress(LookupError):
                await link.start_notify(ICP, self._enqueue(frames, ICP))
        await link.start_notify(BPM, self._enqueue(frames, BPM))
        seen: dict[str, datetime] = {}  # raw hex → first receive time in this session
        idle_since = time.monotonic()
        while True:
            frame = await self._next_frame(frames)
            if frame is None:
                if lost.is_set() or time.monotonic() - idle_since >= self.config.session_idle_s:
                    result.complete = not lost.is_set()
                    return
                continue
            uuid, data, received_at = frame
            idle_since = time.monotonic()
            if uuid == ICP:
                self._drop_icp(device, data, received_at)
                continue
            self._commit_bp(device, data, received_at, offset, seen, result)

    def _drop_icp(self, device: wire.DeviceIdentity, data: bytes, received_at: datetime) -> None:
        try:
            parse_intermediate_cuff_pressure(data)  # live cuff pressure: decoded, never stored
        except MalformedMeasurement as exc:
            self._reject(device, exc, received_at)

    def _commit_bp(self, device: wire.DeviceIdentity, data: bytes, received_at: datetime,
                   offset: float | None, seen: dict[str, datetime], result: SessionResult) -> None:
        try:
            m = parse_blood_pressure_measurement(data)
        except DecodeError as exc:
            if seen.setdefault("rejected:" + data.hex(), received_at) is received_at:
                self._reject(device, exc, received_at, "2A35", data.hex())  # once per session
                result.rejected += 1
            return
        _warn_implausible(device.id, m.raw_hex, lambda: check_blood_pressure(m))
        first = seen.get(m.raw_hex)
        if first is not None and (received_at - first).total_seconds() <= self.config.duplicate_window_s:
            received_at = first  # a repeated indication of the same reading: same identity
        else:
            seen[m.raw_hex] = received_at
        reading = wire.blood_pressure_reading(m, gateway_id=self.config.gateway_id, device=device,
                                              timing=self._timing(received_at, offset))
        added = self.outbox.add(reading["message_id"], wire.KIND_BLOOD_PRESSURE, device.id,
                                wire.encode(reading), must_keep=True)
        if added:
            result.committed += 1
            self.on_commit()
        else:
            result.duplicates += 1
            log.info("%s: duplicate BP indication %s (message %s)", device.id, m.raw_hex,
                     reading["message_id"])

    # -- glucose ---------------------------------------------------------------------------------
    async def _collect_glucose(self, link: BleLink, device: wire.DeviceIdentity, offset: float | None,
                               lost: asyncio.Event, result: SessionResult) -> None:
        if self.outbox.full:
            result.notes.append("outbox full: no RACP download, records stay on the meter")
            log.error("%s: outbox full, not downloading", device.id)
            return
        frames: asyncio.Queue[Frame] = asyncio.Queue()
        await link.start_notify(GLUCOSE, self._enqueue(frames, GLUCOSE))
        if link.has_characteristic(GLUCOSE_CONTEXT):
            await link.start_notify(GLUCOSE_CONTEXT, self._enqueue(frames, GLUCOSE_CONTEXT))
        await link.start_notify(RACP, self._enqueue(frames, RACP))
        high_water = self.outbox.high_water(device.id)
        if high_water is None or high_water >= 0xFFFF:
            request = encode_racp_report_all_records()
        else:
            request = encode_racp_report_records_from(high_water + 1)
        await link.write(RACP, request)

        joiner = ContextJoiner(self.config.context_timeout_s)
        order: list[int] = []  # sequence numbers in arrival order, not yet committed
        ready: dict[int, tuple[GlucoseRecord, datetime]] = {}
        received: dict[int, datetime] = {}
        deadline = time.monotonic() + self.config.racp_timeout_s

        def release(records: list[GlucoseRecord]) -> None:
            for record in records:
                seq = record.measurement.sequence_number
                ready[seq] = (record, received.get(seq, datetime.now(UTC)))

        def commit_ready() -> bool:
            """Commit the in-order prefix; False when the outbox refused (full)."""
            while order and order[0] in ready:
                seq = order.pop(0)
                record, received_at = ready.pop(seq)
                if not self._commit_glucose(device, record, received_at, offset, result):
                    return False
            return True

        while True:
            frame = await self._next_frame(frames)
            if frame is None:
                now = time.monotonic()
                expired = joiner.expire(now)
                release(expired.records_without_context)
                for context in expired.orphan_contexts:
                    self._orphan_context(device, context.raw_hex, context.sequence_number, result)
                if not commit_ready():
                    await self._abort(link)
                    return
                if lost.is_set():
                    raise DeviceUnavailable(device.id, "link lost during RACP download; resuming next time")
                if now > deadline:
                    await self._abort(link)
                    raise ProcedureTimeout(device.id, "RACP report stored records",
                                           self.config.racp_timeout_s)
                continue
            uuid, data, received_at = frame
            deadline = time.monotonic() + self.config.racp_timeout_s  # progress extends the deadline
            if uuid == GLUCOSE:
                try:
                    m = parse_glucose_measurement(data)
                except MalformedMeasurement as exc:
                    self._reject(device, exc, received_at)
                    result.rejected += 1
                    continue
                order.append(m.sequence_number)
                received[m.sequence_number] = received_at
                release(joiner.add_measurement(m, time.monotonic()))
            elif uuid == GLUCOSE_CONTEXT:
                try:
                    context = parse_glucose_context(data)
                except MalformedMeasurement as exc:
                    self._reject(device, exc, received_at)
                    result.rejected += 1
                    continue
                release(joiner.add_context(context, time.monotonic()))
            else:
                done = self._racp_answer(device, data, received_at, result)
                if done is None:
                    continue
                flushed = joiner.flush()
                release(flushed.records_without_context)
                for context in flushed.orphan_contexts:
                    self._orphan_context(device, context.raw_hex, context.sequence_number, result)
                if not commit_ready():
                    return
                for seq in order:  # measurements whose record never completed (cannot happen after flush)
                    log.error("%s: record %d left uncommitted at the end of the procedure", device.id, seq)
                result.complete = True
                if not done:
                    log.info("%s: no new glucose records (after %s)", device.id, high_water)
                return
            if not commit_ready():
                await self._abort(link)
                return

    def _racp_answer(self, device: wire.DeviceIdentity, data: bytes, received_at: datetime,
                     result: SessionResult) -> bool | None:
        """True/False at the end of the procedure (records / none); None for anything else."""
        try:
            frame = parse_racp(data, from_device=True)
            if frame.opcode is RacpOpCode.NUMBER_OF_STORED_RECORDS_RESPONSE:
                return None
            return check_racp_response(frame, 0x01)
        except MalformedMeasurement as exc:
            self._reject(device, exc, received_at)
            result.rejected += 1
            return None

    def _orphan_context(self, device: wire.DeviceIdentity, raw_hex: str, seq: int,
                        result: SessionResult) -> None:
        reason = f"context for sequence number {seq} without its measurement"
        self.outbox.add_rejected(device.id, "2A34", reason, raw_hex, wire.iso_utc(datetime.now(UTC)))
        result.rejected += 1

    def _commit_glucose(self, device: wire.DeviceIdentity, record: GlucoseRecord, received_at: datetime,
                        offset: float | None, result: SessionResult) -> bool:
        m = record.measurement
        mark = (device.id, m.sequence_number)
        if m.is_control_solution:
            log.info("%s: control solution test seq=%d (%s) not published", device.id, m.sequence_number,
                     record.raw_hex)
            self.outbox.set_high_water(*mark)
            result.not_published += 1
            return True
        _warn_implausible(device.id, record.raw_hex, lambda: check_glucose(m))
        reading = wire.glucose_reading(record, gateway_id=self.config.gateway_id, device=device,
                                       timing=self._timing(received_at, offset))
        try:
            added = self.outbox.add(reading["message_id"], wire.KIND_GLUCOSE, device.id, wire.encode(reading),
                                    high_water=mark)
        except OutboxFull:
            result.notes.append(f"outbox full at seq {m.sequence_number}: the rest stays on the meter")
            return False
        if added:
            result.committed += 1
            self.on_commit()
        else:
            result.duplicates += 1
        return True

    async def _abort(self, link: BleLink) -> None:
        with contextlib.suppress(OSError, TimeoutError, LookupError):
            await link.write(RACP, encode_racp_abort())


def _warn_implausible(device_id: str, raw_hex: str, check: Callable[[], list[str]]) -> None:
    """Log what looks wrong but still publish: the server quarantines it where staff can see it.

    Dropping an impossible value here would hide it on a Pi nobody reads; ingest's plausibility
    layer stores it as a quarantined reading with the reason (never alerting, never billed).
    """
    try:
        reasons = check()
    except ImpossibleValue as exc:
        reasons = [str(exc)]
    for reason in reasons:
        log.warning("%s: implausible reading %s published for quarantine: %s", device_id, raw_hex, reason)
