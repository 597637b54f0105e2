"""The RACP download, as sans-I/O steps: join contexts, commit records in order with their mark.

Records are joined with their contexts by sequence number (with a timeout) and committed in
arrival order, each in one outbox transaction with the device's high-water mark, so a dropped link
resumes exactly after the last committed record. "No records found" is success; no final RACP
indication within ``racp_timeout_s`` of the last progress → Abort and :class:`ProcedureTimeout`.
Outbox full → Abort, the rest stays on the meter. Control-solution tests are logged, never
published.
"""

from __future__ import annotations

import logging
from datetime import datetime

from gateway import wire
from gateway.errors import DeviceUnavailable, MalformedMeasurement, ProcedureTimeout
from gateway.gatt import (
    ContextJoiner,
    GlucoseRecord,
    RacpOpCode,
    check_racp_response,
    encode_racp_abort,
    parse_glucose_context,
    parse_glucose_measurement,
    parse_racp,
)
from gateway.gatt.context_join import Expired
from gateway.gatt.plausibility import check_glucose
from gateway.quirks import QuirkProfile
from gateway.sequence import MarkTracker, base_iso
from gateway.session.core import SessionCore, expect, warn_implausible
from gateway.session.protocol import (
    GLUCOSE,
    GLUCOSE_CONTEXT,
    RACP,
    Disconnected,
    Flow,
    FrameReceived,
    SessionResult,
    SetHighWater,
    Stored,
    StoreReading,
    StoreRefused,
    StoreRejected,
)

log = logging.getLogger(__name__)


def abort(core: SessionCore) -> Flow[None]:
    """RACP Abort, best effort (the link may already be gone)."""
    yield from core.write(RACP, encode_racp_abort(), tolerate=True)


def racp_answer(core: SessionCore, device: wire.DeviceIdentity, frame: FrameReceived, result: SessionResult,
                request_opcode: int = 0x01) -> Flow[bool | None]:
    """True/False at the end of the procedure (records / none); None for anything else."""
    try:
        racp = parse_racp(frame.data, from_device=True)
        if racp.opcode is RacpOpCode.NUMBER_OF_STORED_RECORDS_RESPONSE:
            return None
        return check_racp_response(racp, request_opcode)
    except MalformedMeasurement as exc:
        yield from core.reject(device.id, exc, frame.received_at)
        result.rejected += 1
        return None


def receive_records(core: SessionCore, device: wire.DeviceIdentity, offset: float | None,
                    result: SessionResult, tracker: MarkTracker, profile: QuirkProfile,
                    request: bytes | None) -> Flow[bool]:
    """Commit the records of one RACP report (``request``), or, with ``request=None``, of readings
    the meter notifies unasked until it has been quiet for ``session_idle_s``.

    True when the procedure ended normally (so the session may go on).
    """
    if request is not None:
        yield from core.write(RACP, request)
    download = _Download(core, device, offset, result, tracker, profile)
    patience = core.config.racp_timeout_s if request is not None else core.config.session_idle_s
    deadline = core.clock.monotonic() + patience
    while True:
        event = yield from core.next_frame()
        if not isinstance(event, FrameReceived):
            lost = isinstance(event, Disconnected)
            now = core.clock.monotonic()
            yield from download.release_outcome(download.joiner.expire(now))
            if not (yield from download.commit_ready()):
                yield from abort(core)
                return False
            if request is None and (lost or now > deadline):
                yield from download.finish()
                return True
            if lost:
                raise DeviceUnavailable(device.id, "link lost during RACP download; resuming next time")
            if now > deadline:
                yield from abort(core)
                raise ProcedureTimeout(device.id, "RACP report stored records", core.config.racp_timeout_s)
            continue
        deadline = core.clock.monotonic() + patience  # progress extends the deadline
        if event.uuid in (GLUCOSE, GLUCOSE_CONTEXT):
            yield from download.take(event)
        elif request is not None:
            done = yield from racp_answer(core, device, event, result, request[0])
            if done is None:
                continue
            if not (yield from download.finish()):
                return False
            result.complete = True
            if not done:
                log.info("%s: no new glucose records (after %s)", device.id, tracker.initial)
            return True
        if not (yield from download.commit_ready()):
            yield from abort(core)
            return False


class _Download:
    """Records of one procedure on their way from notifications to the outbox."""

    def __init__(self, core: SessionCore, device: wire.DeviceIdentity, offset: float | None,
                 result: SessionResult, tracker: MarkTracker, profile: QuirkProfile) -> None:
        self.core, self.device, self.offset = core, device, offset
        self.result, self.tracker, self.profile = result, tracker, profile
        self.joiner = ContextJoiner(core.config.context_timeout_s)
        self.order: list[int] = []  # sequence numbers in arrival order, not yet committed (once each)
        self.ready: dict[int, tuple[GlucoseRecord, datetime]] = {}
        self.received: dict[int, datetime] = {}
        self.done: set[int] = set()  # committed in this procedure: a repeat is a duplicate

    def take(self, frame: FrameReceived) -> Flow[None]:
        """A measurement or context: parse it (malformed → rejected row) and offer it to the joiner."""
        try:
            if frame.uuid == GLUCOSE:
                m = parse_glucose_measurement(frame.data)
                seq = m.sequence_number
                if seq in self.done:  # a meter repeating a record it already gave us
                    self.result.duplicates += 1
                    return
                # A repeat while the record is still pending keeps its first place: listed twice, the
                # second entry would wait for a record already committed and hold back every later one.
                if seq not in self.order:
                    self.order.append(seq)
                self.received.setdefault(seq, frame.received_at)
                self.release(self.joiner.add_measurement(m, self.core.clock.monotonic()))
            else:
                context = parse_glucose_context(frame.data)
                if context.sequence_number in self.done:  # its record is committed with a context
                    return
                self.release(self.joiner.add_context(context, self.core.clock.monotonic()))
        except MalformedMeasurement as exc:
            yield from self.core.reject(self.device.id, exc, frame.received_at)
            self.result.rejected += 1

    def release(self, records: list[GlucoseRecord]) -> None:
        for record in records:
            seq = record.measurement.sequence_number
            held = self.ready.get(seq)
            if held is not None and held[0].context is not None and record.context is None:
                continue  # a repeat released without its context never replaces the joined record
            self.ready[seq] = (record, self.received.get(seq, self.core.clock.utc()))

    def release_outcome(self, outcome: Expired) -> Flow[None]:
        """Records whose context never came, and contexts whose measurement never came (rejected)."""
        self.release(outcome.records_without_context)
        for context in outcome.orphan_contexts:
            reason = f"context for sequence number {context.sequence_number} without its measurement"
            yield StoreRejected(self.device.id, "2A34", reason, context.raw_hex,
                                wire.iso_utc(self.core.clock.utc()))
            self.result.rejected += 1

    def commit_ready(self) -> Flow[bool]:
        """Commit the in-order prefix; False when the outbox refused (full)."""
        while self.order and self.order[0] in self.ready:
            seq = self.order.pop(0)
            record, received_at = self.ready.pop(seq)
            if not (yield from self._commit(record, received_at)):
                return False
            self.done.add(seq)
        return True

    def finish(self) -> Flow[bool]:
        yield from self.release_outcome(self.joiner.flush())
        if not (yield from self.commit_ready()):
            return False
        for seq in self.order:  # measurements whose record never completed (cannot happen after flush)
            log.error("%s: record %d left uncommitted at the end of the procedure", self.device.id, seq)
        return True

    def _commit(self, record: GlucoseRecord, received_at: datetime) -> Flow[bool]:
        core, device, result = self.core, self.device, self.result
        device_seq = record.measurement.sequence_number
        record = self.profile.normalise_glucose(record)
        m = record.measurement
        mark = self.tracker.advance(device.id, m.sequence_number, base_iso(m))
        if m.is_control_solution:
            log.info("%s: control solution test seq=%d (%s) not published", device.id, device_seq,
                     record.raw_hex)
            if mark is not None:
                yield SetHighWater(*mark)
            result.not_published += 1
            return True
        warn_implausible(device.id, record.raw_hex, lambda: check_glucose(m))
        reading = wire.glucose_reading(record, gateway_id=core.config.gateway_id, device=device,
                                       timing=core.timing(received_at, self.offset))
        command = StoreReading(reading["message_id"], wire.KIND_GLUCOSE, device.id, wire.encode(reading),
                               high_water=mark, remember=True)
        answer = yield command
        if isinstance(answer, StoreRefused):
            self.tracker.undo()
            result.notes.append(f"outbox full at seq {device_seq}: the rest stays on the meter")
            return False
        if expect(answer, Stored, command).added:
            result.committed += 1
        else:
            result.duplicates += 1
        return True
