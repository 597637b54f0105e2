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

- **Meter resets**: with a mark, the session first asks for the record at the mark (and, if it is
  gone, the newest record); a different base time, or a newest record behind the mark on the
  uint16 circle, means the numbering restarted: logged, stored (``sequence_resets``), shown in the
  status (``sequence_reset``), mark cleared, everything downloaded; identities already queued are
  not published twice (outbox ``remember``). 65535 → 0 is a wrap, not a reset. Never RACP Delete.
- **Quirks** (:mod:`gateway.quirks`): one profile per device from its Device Information, logged
  once; it normalises BP bytes, replaces unreliable glucose sequence numbers, picks the clock
  characteristic, listens after the download, or asks to be polled (:meth:`Collector.poll_schedule`).

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
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from gateway import collect_vitals, wire
from gateway.ble_link import BleLink, BleRadio
from gateway.errors import (
    DecodeError,
    DeviceUnavailable,
    GatewayError,
    ImpossibleValue,
    MalformedMeasurement,
    OutboxFull,
    ProcedureTimeout,
    RacpRefused,
    UnknownDevice,
)
from gateway.gatt import (
    ContextJoiner,
    DeviceInformation,
    GlucoseMeasurement,
    GlucoseRecord,
    RacpOpCode,
    check_racp_response,
    encode_current_time,
    encode_date_time,
    encode_racp_abort,
    encode_racp_report_all_records,
    encode_racp_report_last_record,
    encode_racp_report_records_from,
    encode_racp_report_records_in_range,
    parse_blood_pressure_measurement,
    parse_current_time,
    parse_date_time,
    parse_glucose_context,
    parse_glucose_measurement,
    parse_intermediate_cuff_pressure,
    parse_racp,
)
from gateway.gatt.plausibility import check_blood_pressure, check_glucose
from gateway.outbox import HighWater, Outbox
from gateway.quirks import SPEC, QuirkProfile
from gateway.quirks import select as select_quirks

log = logging.getLogger(__name__)

BPM = 0x2A35
ICP = 0x2A36
GLUCOSE = 0x2A18
GLUCOSE_CONTEXT = 0x2A34
RACP = 0x2A52
CURRENT_TIME = 0x2A2B
DIS_CHARACTERISTICS = (0x2A29, 0x2A24, 0x2A25, 0x2A27, 0x2A26, 0x2A28)
SERVICE_UUIDS = (0x1810, 0x1808, *collect_vitals.VITALS_SERVICE_UUIDS)


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
    oximetry_window_s: int = 60  # continuous oximetry: one summary reading per window


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

    def sequence_reset(self, device_id: str, reset: dict[str, Any]) -> None:
        """Kept in the status (``sequence_reset``) until the next reset replaces it."""
        with self._lock:
            entry = self._devices.setdefault(device_id, {"last_contact": None, "last_error": None})
            entry["sequence_reset"] = reset

    def quirks(self, device_id: str, names: tuple[str, ...]) -> None:
        with self._lock:
            entry = self._devices.setdefault(device_id, {"last_contact": None, "last_error": None})
            entry["quirks"] = list(names)

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
    sequence_reset: str | None = None  # why the meter's numbering restarted, when it did
    quirks: tuple[str, ...] = ()
    poll_after_s: float | None = None  # the cuff never pushes: connect again after this long
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
        self._profiles: dict[str, QuirkProfile] = {}  # address → quirks, selected once per device

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
                profile = self._profile(device)
                result = SessionResult(device.id, quirks=profile.names, poll_after_s=profile.poll_interval_s)
                self.board.contact(device.id)
                offset = await self._clock_offset(link, device, profile)
                result.clock_offset_s = offset
                timing_offset = offset
                if link.has_characteristic(BPM):
                    await self._collect_bp(link, device, timing_offset, lost, result, profile)
                elif collect_vitals.is_scale(link):
                    await collect_vitals.collect_weight(self, link, device, timing_offset, lost, result)
                elif collect_vitals.is_oximeter(link):  # before glucose: an oximeter may have RACP too
                    await collect_vitals.collect_plx(self, link, device, timing_offset, lost, result)
                elif link.has_characteristic(RACP):
                    await self._collect_glucose(link, device, timing_offset, lost, result, profile)
                else:
                    result.notes.append("no blood pressure, glucose, weight or pulse oximeter service")
                if not lost.is_set():
                    result.clock_set = await self._maybe_set_clock(link, device, offset, profile)
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

    def _profile(self, device: wire.DeviceIdentity) -> QuirkProfile:
        """The device's quirk profile, selected once from its Device Information (and logged)."""
        key = device.address or device.id
        profile = self._profiles.get(key)
        if profile is None:
            profile = select_quirks(device.manufacturer, device.model, device.firmware)
            self._profiles[key] = profile
            if profile.names:
                log.info("%s (%s / %s / fw %s): quirks applied: %s", device.id, device.manufacturer,
                         device.model, device.firmware, ", ".join(profile.names))
                self.board.quirks(device.id, profile.names)
        return profile

    def poll_schedule(self) -> dict[str, float]:
        """Address → seconds between connections, for devices that never push on their own.

        The service should connect to these even when they were not seen advertising
        (a bonded cuff accepts a connection while "off"; eigger/hass-omron #189).
        """
        return {address: p.poll_interval_s for address, p in self._profiles.items()
                if p.poll_interval_s is not None}

    def _gateway_local_now(self) -> datetime:
        return datetime.now(self.config.zone).replace(tzinfo=None)

    async def _clock_offset(self, link: BleLink, device: wire.DeviceIdentity,
                            profile: QuirkProfile = SPEC) -> float | None:
        """``device clock − gateway clock`` (both local wall clock) through Current Time 0x2A2B,
        or Date Time 0x2A08 for devices whose quirk says so (Roche)."""
        uuid = profile.clock_characteristic
        if uuid is None or not link.has_characteristic(uuid):
            return None
        try:
            data = await link.read(uuid)
        except LookupError:
            return None
        gateway_now = self._gateway_local_now()
        try:
            if uuid == CURRENT_TIME:
                current = parse_current_time(data)
                timestamp, fraction = current.timestamp, current.seconds_fraction
            else:
                timestamp, fraction = parse_date_time(data).timestamp, 0.0
        except MalformedMeasurement as exc:
            self._reject(device, exc, datetime.now(UTC))
            return None
        if timestamp is None:
            return None
        offset = round((timestamp - gateway_now).total_seconds() + fraction, 3)
        info = self.outbox.load_device(device.address or device.id) or {}
        info["clock_offset_s"] = offset
        self.outbox.save_device(device.address or device.id, info)
        if abs(offset) > self.config.clock_drift_max_s:
            log.warning("%s: device clock off by %.1f s (limit %.0f s)", device.id, offset,
                        self.config.clock_drift_max_s)
        return offset

    async def _maybe_set_clock(self, link: BleLink, device: wire.DeviceIdentity,
                               offset: float | None, profile: QuirkProfile = SPEC) -> bool:
        uuid = profile.clock_characteristic
        if offset is None or uuid is None or abs(offset) <= self.config.clock_drift_max_s:
            return False
        if not link.can_write(uuid):
            log.warning("%s: clock drift %.1f s but 0x%04X is read-only; offsets correct it",
                        device.id, offset, uuid)
            return False
        now = self._gateway_local_now()
        try:
            value = encode_current_time(now) if uuid == CURRENT_TIME else encode_date_time(now)
            await link.write(uuid, value)
        except (OSError, LookupError) as exc:  # e.g. ATT 0x80 "data field ignored" (eigger/hass-omron #11)
            log.warning("%s: clock write 0x%04X refused: %s", device.id, uuid, exc)
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
                          lost: asyncio.Event, result: SessionResult, profile: QuirkProfile = SPEC) -> None:
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
                self._drop_icp(device, data, received_at, profile)
                continue
            self._commit_bp(device, data, received_at, offset, seen, result, profile)

    def _drop_icp(self, device: wire.DeviceIdentity, data: bytes, received_at: datetime,
                  profile: QuirkProfile = SPEC) -> None:
        try:
            parse_intermediate_cuff_pressure(profile.normalise_bp(data))  # live cuff pressure: never stored
        except MalformedMeasurement as exc:
            self._reject(device, exc, received_at)

    def _commit_bp(self, device: wire.DeviceIdentity, data: bytes, received_at: datetime,
                   offset: float | None, seen: dict[str, datetime], result: SessionResult,
                   profile: QuirkProfile = SPEC) -> None:
        try:
            # a quirk rewrites the device's bytes into the spec layout; ``raw`` stays what it sent
            m = replace(parse_blood_pressure_measurement(profile.normalise_bp(data)), raw_hex=data.hex())
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
                               lost: asyncio.Event, result: SessionResult, profile: QuirkProfile) -> None:
        """Sequence check → download → (quirk) listen for readings taken while connected."""
        if self.outbox.full:
            result.notes.append("outbox full: no RACP download, records stay on the meter")
            log.error("%s: outbox full, not downloading", device.id)
            return
        frames: asyncio.Queue[Frame] = asyncio.Queue()
        await link.start_notify(GLUCOSE, self._enqueue(frames, GLUCOSE))
        if link.has_characteristic(GLUCOSE_CONTEXT):
            await link.start_notify(GLUCOSE_CONTEXT, self._enqueue(frames, GLUCOSE_CONTEXT))
        await link.start_notify(RACP, self._enqueue(frames, RACP))
        mark = self.outbox.mark(device.id) if profile.sequence_reliable else None
        if mark is not None:
            reason, newest = await self._sequence_restarted(link, frames, device, mark, lost)
            if reason is not None:
                self._record_reset(device, mark, newest, reason, result)
                mark = None
        if mark is None:
            request = encode_racp_report_all_records()  # first contact, after a reset, or unreliable seq
        else:
            request = encode_racp_report_records_from(next_sequence(mark.seq))
        tracker = _MarkTracker(mark if profile.sequence_reliable else None, profile.sequence_reliable)
        if not await self._receive_records(link, frames, device, offset, lost, result, tracker, profile,
                                           request):
            return
        if profile.listen_after_download and not lost.is_set():
            log.info("%s: listening %.1f s for a reading taken while connected (%s)", device.id,
                     self.config.session_idle_s, ", ".join(profile.names))
            await self._receive_records(link, frames, device, offset, lost, result, tracker, profile, None)

    def _record_reset(self, device: wire.DeviceIdentity, mark: HighWater, newest: int | None, reason: str,
                      result: SessionResult) -> None:
        reset = self.outbox.record_reset(device.id, newest, reason)
        log.warning("%s: meter sequence restarted (%s): old high-water mark %d (base %s), meter's newest %s;"
                    " re-downloading every record (nothing deleted on the meter, already-sent records"
                    " keep their message_id)", device.id, reason, mark.seq, mark.base_time,
                    reset.meter_last)
        self.board.sequence_reset(device.id, {"detected_at": reset.detected_at, "old_high_water": mark.seq,
                                              "meter_newest": reset.meter_last, "reason": reason})
        result.sequence_reset = reason

    async def _sequence_restarted(self, link: BleLink, frames: asyncio.Queue[Frame],
                                  device: wire.DeviceIdentity, mark: HighWater,
                                  lost: asyncio.Event) -> tuple[str | None, int | None]:
        """Why the meter's numbering went backwards since ``mark`` (reset, battery swap), or None;
        with the meter's newest sequence number when it was asked for.

        Asks for the record at our mark (``within range mark..mark``): same base time → the meter
        still holds what we sent. Otherwise, or when the meter refuses that operator, asks for its
        newest record (operator 0x06) and compares on the 16-bit circle (65535 is followed by 0).
        """
        result = SessionResult(device.id)
        at_mark = await self._racp_peek(link, frames, device,
                                        encode_racp_report_records_in_range(mark.seq, mark.seq), lost, result)
        if at_mark:
            found = at_mark[-1]
            reason = restart_reason(mark, found.sequence_number, _base_iso(found), same_record=True)
            if reason is None:
                return None, None
        newest = await self._racp_peek(link, frames, device, encode_racp_report_last_record(), lost, result)
        if newest is None:
            log.warning("%s: meter answers neither 'range' nor 'last record': cannot check for a reset",
                        device.id)
            return None, None
        if not newest:
            return f"meter holds no records (our mark {mark.seq})", None
        last = newest[-1]
        if at_mark:
            return reason, last.sequence_number
        newest_seq = last.sequence_number
        return restart_reason(mark, newest_seq, _base_iso(last), same_record=False), newest_seq

    async def _racp_peek(self, link: BleLink, frames: asyncio.Queue[Frame], device: wire.DeviceIdentity,
                         request: bytes, lost: asyncio.Event,
                         result: SessionResult) -> list[GlucoseMeasurement] | None:
        """Run one small report procedure and return its measurements without committing anything.

        ``[]`` for "no records found", ``None`` when the meter refuses the request (op code or
        operator not supported). Contexts are ignored: the records come again in the download.
        """
        await link.write(RACP, request)
        found: list[GlucoseMeasurement] = []
        deadline = time.monotonic() + self.config.racp_timeout_s
        while True:
            frame = await self._next_frame(frames)
            if frame is None:
                if lost.is_set():
                    raise DeviceUnavailable(device.id, "link lost during the sequence check")
                if time.monotonic() > deadline:
                    await self._abort(link)
                    raise ProcedureTimeout(device.id, "RACP sequence check", self.config.racp_timeout_s)
                continue
            uuid, data, _received_at = frame
            if uuid == GLUCOSE:
                with contextlib.suppress(MalformedMeasurement):  # rejected when downloaded for real
                    found.append(parse_glucose_measurement(data))
            elif uuid == RACP:
                try:
                    done = self._racp_answer(device, data, _received_at, result, request[0])
                except RacpRefused as exc:
                    log.info("%s: RACP %s refused (%s)", device.id, request.hex(), exc)
                    return None
                if done is None:
                    continue
                return found

    async def _receive_records(self, link: BleLink, frames: asyncio.Queue[Frame], device: wire.DeviceIdentity,
                               offset: float | None, lost: asyncio.Event, result: SessionResult,
                               tracker: _MarkTracker, profile: QuirkProfile, request: bytes | None) -> bool:
        """Commit the records of one RACP report (``request``), or, with ``request=None``, of readings
        the meter notifies unasked until it has been quiet for ``session_idle_s``.

        True when the procedure ended normally (so the session may go on).
        """
        if request is not None:
            await link.write(RACP, request)
        joiner = ContextJoiner(self.config.context_timeout_s)
        order: list[int] = []  # sequence numbers in arrival order, not yet committed
        ready: dict[int, tuple[GlucoseRecord, datetime]] = {}
        received: dict[int, datetime] = {}
        patience = self.config.racp_timeout_s if request is not None else self.config.session_idle_s
        deadline = time.monotonic() + patience

        def release(records: list[GlucoseRecord]) -> None:
            for record in records:
                seq = record.measurement.sequence_number
                ready[seq] = (record, received.get(seq, datetime.now(UTC)))

        def commit_ready() -> bool:
            """Commit the in-order prefix; False when the outbox refused (full)."""
            while order and order[0] in ready:
                seq = order.pop(0)
                record, received_at = ready.pop(seq)
                if not self._commit_glucose(device, record, received_at, offset, result, tracker, profile):
                    return False
            return True

        def finish() -> bool:
            flushed = joiner.flush()
            release(flushed.records_without_context)
            for context in flushed.orphan_contexts:
                self._orphan_context(device, context.raw_hex, context.sequence_number, result)
            if not commit_ready():
                return False
            for seq in order:  # measurements whose record never completed (cannot happen after flush)
                log.error("%s: record %d left uncommitted at the end of the procedure", device.id, seq)
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
                    return False
                if request is None and (lost.is_set() or now > deadline):
                    finish()
                    return True
                if lost.is_set():
                    raise DeviceUnavailable(device.id, "link lost during RACP download; resuming next time")
                if now > deadline:
                    await self._abort(link)
                    raise ProcedureTimeout(device.id, "RACP report stored records",
                                           self.config.racp_timeout_s)
                continue
            uuid, data, received_at = frame
            deadline = time.monotonic() + patience  # progress extends the deadline
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
            elif request is not None:
                done = self._racp_answer(device, data, received_at, result, request[0])
                if done is None:
                    continue
                if not finish():
                    return False
                result.complete = True
                if not done:
                    log.info("%s: no new glucose records (after %s)", device.id, tracker.initial)
                return True
            if not commit_ready():
                await self._abort(link)
                return False

    def _racp_answer(self, device: wire.DeviceIdentity, data: bytes, received_at: datetime,
                     result: SessionResult, request_opcode: int = 0x01) -> bool | None:
        """True/False at the end of the procedure (records / none); None for anything else."""
        try:
            frame = parse_racp(data, from_device=True)
            if frame.opcode is RacpOpCode.NUMBER_OF_STORED_RECORDS_RESPONSE:
                return None
            return check_racp_response(frame, request_opcode)
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
                        offset: float | None, result: SessionResult, tracker: _MarkTracker,
                        profile: QuirkProfile) -> bool:
        device_seq = record.measurement.sequence_number
        record = profile.normalise_glucose(record)
        m = record.measurement
        mark = tracker.advance(device.id, m.sequence_number, _base_iso(m))
        if m.is_control_solution:
            log.info("%s: control solution test seq=%d (%s) not published", device.id, device_seq,
                     record.raw_hex)
            if mark is not None:
                self.outbox.set_high_water(*mark)
            result.not_published += 1
            return True
        _warn_implausible(device.id, record.raw_hex, lambda: check_glucose(m))
        reading = wire.glucose_reading(record, gateway_id=self.config.gateway_id, device=device,
                                       timing=self._timing(received_at, offset))
        try:
            added = self.outbox.add(reading["message_id"], wire.KIND_GLUCOSE, device.id, wire.encode(reading),
                                    high_water=mark, remember=True)
        except OutboxFull:
            tracker.undo()
            result.notes.append(f"outbox full at seq {device_seq}: the rest stays on the meter")
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


# -- sequence numbers on the 16-bit circle (pure) ------------------------------------------------

def next_sequence(seq: int) -> int:
    """The sequence number after ``seq``: 65535 is followed by 0."""
    return (seq + 1) & 0xFFFF


def sequence_after(a: int, b: int) -> bool:
    """Whether ``a`` comes after ``b`` on the uint16 circle (serial-number arithmetic, RFC 1982).

    ``sequence_after(0, 65535)`` is True (a wrap); ``sequence_after(3, 500)`` is False (went back).
    """
    distance = (a - b) & 0xFFFF
    return 0 < distance < 0x8000


def restart_reason(mark: HighWater, meter_seq: int, meter_base: str | None, *,
                   same_record: bool) -> str | None:
    """Decide from one record of the meter whether its numbering restarted behind ``mark`` (pure).

    ``same_record``: the meter's record *at* our mark (its base time must match what we sent);
    otherwise the meter's newest record (it must not be behind our mark on the circle).
    """
    if same_record or meter_seq == mark.seq:
        if mark.base_time is not None and meter_base is not None and meter_base != mark.base_time:
            return f"record {meter_seq} now has base time {meter_base}, the one we sent had {mark.base_time}"
        return None
    if not sequence_after(meter_seq, mark.seq):
        return f"meter's newest sequence {meter_seq} is behind our mark {mark.seq}"
    return None


def _base_iso(m: GlucoseMeasurement) -> str | None:
    return m.base_time.isoformat() if m.base_time is not None else None


class _MarkTracker:
    """The newest sequence committed so far in this session (moves only forward on the circle)."""

    def __init__(self, mark: HighWater | None, reliable: bool) -> None:
        self.initial = mark.seq if mark else None
        self._current = mark
        self._previous = mark
        self._reliable = reliable

    def advance(self, device_id: str, seq: int, base_time: str | None) -> tuple[str, int, str | None] | None:
        """The mark to store with this record, or None when it is not newer (or seq is unreliable)."""
        self._previous = self._current
        if not self._reliable:
            return None
        if self._current is not None and not sequence_after(seq, self._current.seq):
            return None
        self._current = HighWater(seq, base_time)
        return (device_id, seq, base_time)

    def undo(self) -> None:
        """The record was refused (outbox full): its mark was not stored."""
        self._current = self._previous


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
