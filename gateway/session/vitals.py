"""Weight scales (0x181D) and pulse oximeters (0x1822), as steps of a sans-I/O session.

- **Scale**: enable 0x2A9D indications; the scale pushes its stored weighings, each committed as it
  arrives (``must_keep``: the scale forgets a weighing once its indication is confirmed); the
  session ends when the scale goes quiet or drops the link.  A repeated indication within the
  duplicate window keeps the first receive time, so it carries the same identity.
- **Oximeter**: enable 0x2A5E / 0x2A5F / 0x2A52 first, read PLX Features 0x2A60, and when the
  device stores spot-checks ask for all stored records (``01 01``: PLX records carry no sequence
  number).  Spot-checks are committed with ``remember`` so a re-download publishes nothing twice;
  demonstration and testing data are never published (logged and counted).  Continuous samples go
  through :class:`~gateway.oximetry.ContinuousSummariser`; each closed window is one reading, and
  the open window is flushed when the session ends.  No final RACP indication within
  ``racp_timeout_s`` of the last progress → Abort, and the records stay on the device.

Malformed frames become ``rejected`` outbox rows with their reason and bytes, once per session.
"""

from __future__ import annotations

import logging
from datetime import datetime

from gateway import wire, wire_vitals
from gateway.errors import DecodeError, GatewayError
from gateway.gatt import (
    RacpOpCode,
    check_racp_response,
    encode_racp_abort,
    encode_racp_report_all_records,
    parse_plx_continuous_measurement,
    parse_plx_features,
    parse_plx_spot_check_measurement,
    parse_racp,
    parse_weight_measurement,
)
from gateway.oximetry import ContinuousSummariser, OximetrySummary
from gateway.session.core import SessionCore, expect
from gateway.session.protocol import (
    PLX_CONTINUOUS,
    PLX_FEATURES,
    PLX_SPOT_CHECK,
    RACP,
    WEIGHT_MEASUREMENT,
    CheckOutbox,
    Disconnected,
    Flow,
    FrameReceived,
    OutboxState,
    Phase,
    SessionResult,
    Stored,
    StoreReading,
    StoreRefused,
)

log = logging.getLogger(__name__)


def is_scale(core: SessionCore) -> bool:
    return core.has(WEIGHT_MEASUREMENT)


def is_oximeter(core: SessionCore) -> bool:
    return core.has(PLX_SPOT_CHECK) or core.has(PLX_CONTINUOUS)


class _Vitals:
    """What one scale or oximeter session needs: its device, offset, result and rejected frames."""

    def __init__(self, core: SessionCore, device: wire.DeviceIdentity, offset: float | None,
                 result: SessionResult) -> None:
        self.core, self.device, self.offset, self.result = core, device, offset, result
        self.rejected: set[str] = set()

    def reject_once(self, exc: DecodeError, frame: FrameReceived, characteristic: str) -> Flow[None]:
        if frame.data.hex() not in self.rejected:
            self.rejected.add(frame.data.hex())
            yield from self.core.reject(self.device.id, exc, frame.received_at, characteristic,
                                        frame.data.hex())
            self.result.rejected += 1

    def timing(self, received_at: datetime) -> wire.Timing:
        return self.core.timing(received_at, self.offset)

    def commit(self, reading: wire.JsonDict, *, must_keep: bool = False,
               remember: bool = False) -> Flow[bool]:
        """Store the reading; False when the outbox refused it (full)."""
        command = StoreReading(reading["message_id"], reading["kind"], self.device.id, wire.encode(reading),
                               must_keep=must_keep, remember=remember)
        answer = yield command
        if isinstance(answer, StoreRefused):
            return False
        if expect(answer, Stored, command).added:
            self.result.committed += 1
        else:
            self.result.duplicates += 1
        return True


def _outbox_full(core: SessionCore, device: wire.DeviceIdentity, result: SessionResult, note: str,
                 line: str) -> Flow[bool]:
    command = CheckOutbox()
    if expect((yield command), OutboxState, command).full:
        result.notes.append(note)
        log.error("%s: %s", device.id, line)
        return True
    return False


def collect_weight(core: SessionCore, device: wire.DeviceIdentity, offset: float | None,
                   result: SessionResult) -> Flow[None]:
    if (yield from _outbox_full(core, device, result,
                                "outbox full: indications not enabled, weighings stay on the scale",
                                "outbox full, not enabling weight indications")):
        return
    core.enter(Phase.COLLECTING_WEIGHT)
    s = _Vitals(core, device, offset, result)
    yield from core.subscribe(WEIGHT_MEASUREMENT)
    seen: dict[str, datetime] = {}
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
        try:
            m = parse_weight_measurement(event.data)
        except DecodeError as exc:
            yield from s.reject_once(exc, event, "2A9D")
            continue
        received_at = event.received_at
        first = seen.get(m.raw_hex)
        if first is not None and (received_at - first).total_seconds() <= core.config.duplicate_window_s:
            received_at = first  # a repeated indication: same identity
        else:
            seen[m.raw_hex] = received_at
        reading = wire_vitals.weight_reading(m, gateway_id=core.config.gateway_id, device=device,
                                             timing=s.timing(received_at))
        yield from s.commit(reading, must_keep=True)


def collect_plx(core: SessionCore, device: wire.DeviceIdentity, offset: float | None,
                result: SessionResult) -> Flow[None]:
    if (yield from _outbox_full(core, device, result,
                                "outbox full: oximeter not read, spot-checks stay on the device",
                                "outbox full, not reading the oximeter")):
        return
    core.enter(Phase.COLLECTING_PLX)
    s = _Vitals(core, device, offset, result)
    for uuid in (PLX_SPOT_CHECK, PLX_CONTINUOUS, RACP):
        if core.has(uuid):
            yield from core.subscribe(uuid)
    racp_pending = yield from _request_stored(s)
    summariser = ContinuousSummariser(core.config.oximetry_window_s)
    yield from _plx_frames(s, summariser, racp_pending)
    for summary in summariser.flush():
        yield from _commit_summary(s, summary)
    if summariser.empty_windows:
        log.info("%s: %d oximetry window(s) without a usable sample", device.id, summariser.empty_windows)


def _plx_frames(s: _Vitals, summariser: ContinuousSummariser, racp_pending: bool) -> Flow[None]:
    """Spot-checks, continuous samples and the RACP answer until the device goes quiet."""
    core, result = s.core, s.result
    progress = idle_since = core.clock.monotonic()
    while True:
        event = yield from core.next_frame()
        now = core.clock.monotonic()
        if not isinstance(event, FrameReceived):
            if racp_pending and now - progress >= core.config.racp_timeout_s:
                result.notes.append("no final RACP indication: aborted, records stay on the device")
                yield from core.write(RACP, encode_racp_abort(), tolerate=True)
                racp_pending = False
            lost = isinstance(event, Disconnected)
            if lost or (not racp_pending and now - idle_since >= core.config.session_idle_s):
                result.complete = not lost and not result.notes
                return
            continue
        progress = idle_since = now
        if event.uuid == PLX_SPOT_CHECK:
            if not (yield from _spot_check(s, event)):
                racp_pending = False
                yield from core.write(RACP, encode_racp_abort(), tolerate=True)
        elif event.uuid == PLX_CONTINUOUS:
            yield from _continuous(s, summariser, event)
        elif event.uuid == RACP and (yield from _racp_final(s, event)):
            racp_pending = False


def _request_stored(s: _Vitals) -> Flow[bool]:
    """Read PLX Features; ask for every stored spot-check when the device keeps them."""
    data = yield from s.core.read(PLX_FEATURES)
    try:
        if data is None:
            raise LookupError(f"no characteristic 0x{PLX_FEATURES:04X}")
        features = parse_plx_features(data)
    except (LookupError, DecodeError) as exc:
        log.warning("%s: PLX features unreadable (%s); no stored records requested", s.device.id, exc)
        return False
    if not features.stores_spot_checks or not s.core.has(RACP):
        return False
    yield from s.core.write(RACP, encode_racp_report_all_records())
    return True


def _spot_check(s: _Vitals, frame: FrameReceived) -> Flow[bool]:
    """Commit one spot-check; False when the outbox is full (stop the download)."""
    try:
        m = parse_plx_spot_check_measurement(frame.data)
    except DecodeError as exc:
        yield from s.reject_once(exc, frame, "2A5E")
        return True
    if not wire_vitals.is_patient_data(m):
        log.info("%s: demonstration/testing PLX data not published", s.device.id)
        s.result.not_published += 1
        return True
    reading = wire_vitals.spo2_reading(m, gateway_id=s.core.config.gateway_id, device=s.device,
                                       timing=s.timing(frame.received_at))
    if not (yield from s.commit(reading, remember=True)):
        s.result.notes.append("outbox full: the rest of the spot-checks stay on the oximeter")
        return False
    return True


def _continuous(s: _Vitals, summariser: ContinuousSummariser, frame: FrameReceived) -> Flow[None]:
    try:
        m = parse_plx_continuous_measurement(frame.data)
    except DecodeError as exc:
        yield from s.reject_once(exc, frame, "2A5F")
        return
    for summary in summariser.add(m, frame.received_at):
        yield from _commit_summary(s, summary)


def _commit_summary(s: _Vitals, summary: OximetrySummary) -> Flow[None]:
    reading = wire_vitals.spo2_summary_reading(summary, gateway_id=s.core.config.gateway_id, device=s.device,
                                               timing=s.timing(summary.first_received_at))
    yield from s.commit(reading, must_keep=True)  # live data: the device cannot send it again


def _racp_final(s: _Vitals, frame: FrameReceived) -> Flow[bool]:
    """True when the frame ends the stored-records procedure (success, none, or refused)."""
    try:
        racp = parse_racp(frame.data, from_device=True)
    except DecodeError as exc:
        yield from s.reject_once(exc, frame, "2A52")
        return False
    if racp.opcode is not RacpOpCode.RESPONSE_CODE:
        return False
    try:
        check_racp_response(racp, 0x01)
    except GatewayError as exc:
        s.result.notes.append(f"stored records refused: {exc}")
        log.warning("%s: RACP report refused: %s", s.device.id, exc)
    return True
