"""Blood pressure collection (BPS 1.0), as steps of a sans-I/O session.

Enable 0x2A36 (decoded and dropped: live cuff pressure is never a reading) and 0x2A35
indications; commit every indication as it arrives; the session ends when the cuff goes quiet for
``session_idle_s`` or drops the link. A cuff forgets a reading once its indication is confirmed,
so these rows are kept even past the outbox bound (``must_keep``); when the outbox is already full
indications are not enabled at all, leaving the readings on the cuff. A repeated indication of the
same frame within ``duplicate_window_s`` keeps its first receive time, hence its ``message_id``.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime

from gateway import wire
from gateway.errors import DecodeError, MalformedMeasurement
from gateway.gatt import parse_blood_pressure_measurement, parse_intermediate_cuff_pressure
from gateway.gatt.plausibility import check_blood_pressure
from gateway.quirks import QuirkProfile
from gateway.session.core import SessionCore, expect, warn_implausible
from gateway.session.protocol import (
    BPM,
    ICP,
    CheckOutbox,
    Disconnected,
    Flow,
    FrameReceived,
    OutboxState,
    Phase,
    SessionResult,
    Stored,
    StoreReading,
)

log = logging.getLogger(__name__)


def collect_bp(core: SessionCore, device: wire.DeviceIdentity, offset: float | None,
               result: SessionResult, profile: QuirkProfile) -> Flow[None]:
    command = CheckOutbox()
    if expect((yield command), OutboxState, command).full:
        result.notes.append("outbox full: indications not enabled, readings stay on the cuff")
        log.error("%s: outbox full, not enabling BP indications", device.id)
        return
    core.enter(Phase.COLLECTING_BP)
    if core.has(ICP):
        yield from core.subscribe(ICP, optional=True)
    yield from core.subscribe(BPM)
    seen: dict[str, datetime] = {}  # raw hex → first receive time in this session
    idle_since = core.clock.monotonic()
    while True:
        event = yield from core.next_frame()
        if not isinstance(event, FrameReceived):
            lost = isinstance(event, Disconnected)
            if lost or core.clock.monotonic() - idle_since >= core.config.session_idle_s:
                result.complete = not lost
                return
            continue
        idle_since = core.clock.monotonic()
        if event.uuid == ICP:
            yield from _drop_icp(core, device, event, profile)
            continue
        yield from _commit_bp(core, device, event, offset, seen, result, profile)


def _drop_icp(core: SessionCore, device: wire.DeviceIdentity, frame: FrameReceived,
              profile: QuirkProfile) -> Flow[None]:
    try:
        parse_intermediate_cuff_pressure(profile.normalise_bp(frame.data))  # live cuff pressure: never stored
    except MalformedMeasurement as exc:
        yield from core.reject(device.id, exc, frame.received_at)


def _commit_bp(core: SessionCore, device: wire.DeviceIdentity, frame: FrameReceived, offset: float | None,
               seen: dict[str, datetime], result: SessionResult, profile: QuirkProfile) -> Flow[None]:
    data, received_at = frame.data, frame.received_at
    try:
        # a quirk rewrites the device's bytes into the spec layout; ``raw`` stays what it sent
        m = replace(parse_blood_pressure_measurement(profile.normalise_bp(data)), raw_hex=data.hex())
    except DecodeError as exc:
        if "rejected:" + data.hex() not in seen:
            seen["rejected:" + data.hex()] = received_at
            yield from core.reject(device.id, exc, received_at, "2A35", data.hex())  # once per session
            result.rejected += 1
        return
    warn_implausible(device.id, m.raw_hex, lambda: check_blood_pressure(m))
    first = seen.get(m.raw_hex)
    if first is not None and (received_at - first).total_seconds() <= core.config.duplicate_window_s:
        received_at = first  # a repeated indication of the same reading: same identity
    else:
        seen[m.raw_hex] = received_at
    reading = wire.blood_pressure_reading(m, gateway_id=core.config.gateway_id, device=device,
                                          timing=core.timing(received_at, offset))
    command = StoreReading(reading["message_id"], wire.KIND_BLOOD_PRESSURE, device.id, wire.encode(reading),
                           must_keep=True)
    if expect((yield command), Stored, command).added:
        result.committed += 1
    else:
        result.duplicates += 1
        log.info("%s: duplicate BP indication (message %s)", device.id, reading["message_id"])
