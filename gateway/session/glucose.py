"""Glucose collection: CCCDs first, the meter-reset check, then the RACP download (sans-I/O steps).

Enable 0x2A18 / 0x2A34 notifications and 0x2A52 indications *first*, then RACP "report records
≥ last committed + 1" (all records the first time, after a reset, or when the quirk says the
numbers are unreliable). The download itself is :mod:`gateway.session.download`.

**Meter resets**: with a mark, the session first asks for the record at the mark (and, if it is
gone, the newest record); a different base time, or a newest record behind the mark on the
uint16 circle, means the numbering restarted: logged, stored (``sequence_resets``), shown in the
status (``sequence_reset``), mark cleared, everything downloaded; identities already queued are not
published twice (outbox ``remember``). 65535 → 0 is a wrap, not a reset. Never RACP Delete.
"""

from __future__ import annotations

import contextlib
import logging

from gateway import wire
from gateway.errors import DeviceUnavailable, MalformedMeasurement, ProcedureTimeout, RacpRefused
from gateway.gatt import (
    GlucoseMeasurement,
    encode_racp_report_all_records,
    encode_racp_report_last_record,
    encode_racp_report_records_from,
    encode_racp_report_records_in_range,
    parse_glucose_measurement,
)
from gateway.outbox import HighWater
from gateway.quirks import QuirkProfile
from gateway.sequence import MarkTracker, base_iso, next_sequence, restart_reason
from gateway.session.core import SessionCore, expect
from gateway.session.download import abort, racp_answer, receive_records
from gateway.session.protocol import (
    GLUCOSE,
    GLUCOSE_CONTEXT,
    RACP,
    CheckOutbox,
    Disconnected,
    Flow,
    LoadMark,
    MarkLoaded,
    OutboxState,
    Phase,
    RecordReset,
    ReportReset,
    ResetRecorded,
    SessionResult,
    TimerFired,
)

log = logging.getLogger(__name__)


def collect_glucose(core: SessionCore, device: wire.DeviceIdentity, offset: float | None,
                    result: SessionResult, profile: QuirkProfile) -> Flow[None]:
    """Sequence check → download → (quirk) listen for readings taken while connected."""
    command = CheckOutbox()
    if expect((yield command), OutboxState, command).full:
        result.notes.append("outbox full: no RACP download, records stay on the meter")
        log.error("%s: outbox full, not downloading", device.id)
        return
    core.enter(Phase.SUBSCRIBING)
    yield from core.subscribe(GLUCOSE)
    if core.has(GLUCOSE_CONTEXT):
        yield from core.subscribe(GLUCOSE_CONTEXT)
    yield from core.subscribe(RACP)
    mark: HighWater | None = None
    if profile.sequence_reliable:
        load = LoadMark(device.id)
        mark = expect((yield load), MarkLoaded, load).mark
    if mark is not None:
        core.enter(Phase.CHECKING_SEQUENCE)
        reason, newest = yield from _sequence_restarted(core, device, mark)
        if reason is not None:
            yield from _record_reset(device, mark, newest, reason, result)
            mark = None
    if mark is None:
        request = encode_racp_report_all_records()  # first contact, after a reset, or unreliable seq
    else:
        request = encode_racp_report_records_from(next_sequence(mark.seq))
    core.enter(Phase.DOWNLOADING)
    tracker = MarkTracker(mark if profile.sequence_reliable else None, profile.sequence_reliable)
    if not (yield from receive_records(core, device, offset, result, tracker, profile, request)):
        return
    if profile.listen_after_download and (yield from core.link_up()):
        core.enter(Phase.LISTENING)
        log.info("%s: listening %.1f s for a reading taken while connected (%s)", device.id,
                 core.config.session_idle_s, ", ".join(profile.names))
        yield from receive_records(core, device, offset, result, tracker, profile, None)


def _record_reset(device: wire.DeviceIdentity, mark: HighWater, newest: int | None, reason: str,
                  result: SessionResult) -> Flow[None]:
    command = RecordReset(device.id, newest, reason)
    reset = expect((yield command), ResetRecorded, command)
    log.warning("%s: meter sequence restarted (%s): old high-water mark %d (base %s), meter's newest %s;"
                " re-downloading every record (nothing deleted on the meter, already-sent records"
                " keep their message_id)", device.id, reason, mark.seq, mark.base_time, reset.meter_last)
    yield ReportReset(device.id, {"detected_at": reset.detected_at, "old_high_water": mark.seq,
                                  "meter_newest": reset.meter_last, "reason": reason})
    result.sequence_reset = reason


def _sequence_restarted(core: SessionCore, device: wire.DeviceIdentity,
                        mark: HighWater) -> Flow[tuple[str | None, int | None]]:
    """Why the meter's numbering went backwards since ``mark`` (reset, battery swap), or None;
    with the meter's newest sequence number when it was asked for.

    Asks for the record at our mark (``within range mark..mark``): same base time → the meter
    still holds what we sent. Otherwise, or when the meter refuses that operator, asks for its
    newest record (operator 0x06) and compares on the 16-bit circle (65535 is followed by 0).
    """
    result = SessionResult(device.id)
    at_mark = yield from _racp_peek(core, device, encode_racp_report_records_in_range(mark.seq, mark.seq),
                                    result)
    reason: str | None = None
    if at_mark:
        found = at_mark[-1]
        reason = restart_reason(mark, found.sequence_number, base_iso(found), same_record=True)
        if reason is None:
            return None, None
    newest = yield from _racp_peek(core, device, encode_racp_report_last_record(), result)
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
    return restart_reason(mark, newest_seq, base_iso(last), same_record=False), newest_seq


def _racp_peek(core: SessionCore, device: wire.DeviceIdentity, request: bytes,
               result: SessionResult) -> Flow[list[GlucoseMeasurement] | None]:
    """Run one small report procedure and return its measurements without committing anything.

    ``[]`` for "no records found", ``None`` when the meter refuses the request (op code or
    operator not supported). Contexts are ignored: the records come again in the download.
    """
    yield from core.write(RACP, request)
    found: list[GlucoseMeasurement] = []
    deadline = core.clock.monotonic() + core.config.racp_timeout_s
    while True:
        event = yield from core.next_frame()
        if isinstance(event, Disconnected):
            raise DeviceUnavailable(device.id, "link lost during the sequence check")
        if isinstance(event, TimerFired):  # no frame: only the deadline to check
            if core.clock.monotonic() > deadline:
                yield from abort(core)
                raise ProcedureTimeout(device.id, "RACP sequence check", core.config.racp_timeout_s)
            continue
        if event.uuid == GLUCOSE:
            with contextlib.suppress(MalformedMeasurement):  # rejected when downloaded for real
                found.append(parse_glucose_measurement(event.data))
        elif event.uuid == RACP:
            try:
                done = yield from racp_answer(core, device, event, result, request[0])
            except RacpRefused as exc:
                log.info("%s: RACP %s refused (%s)", device.id, request.hex(), exc)
                return None
            if done is not None:
                return found
