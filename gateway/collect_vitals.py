"""Collecting from weight scales (0x181D) and pulse oximeters (0x1822), run by :class:`Collector`.

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

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from gateway import wire, wire_vitals
from gateway.ble_link import BleLink
from gateway.errors import DecodeError, GatewayError, OutboxFull
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

if TYPE_CHECKING:
    from gateway.collector import Collector, Frame, SessionResult

log = logging.getLogger(__name__)

WEIGHT_MEASUREMENT = 0x2A9D
PLX_SPOT_CHECK = 0x2A5E
PLX_CONTINUOUS = 0x2A5F
PLX_FEATURES = 0x2A60
RACP = 0x2A52
VITALS_SERVICE_UUIDS = (0x181D, 0x1822)


def is_scale(link: BleLink) -> bool:
    return link.has_characteristic(WEIGHT_MEASUREMENT)


def is_oximeter(link: BleLink) -> bool:
    return link.has_characteristic(PLX_SPOT_CHECK) or link.has_characteristic(PLX_CONTINUOUS)


@dataclass
class _Session:
    """What one collection session needs beside the collector."""

    collector: Collector
    link: BleLink
    device: wire.DeviceIdentity
    offset: float | None
    lost: asyncio.Event
    result: SessionResult
    frames: asyncio.Queue[Frame] = field(default_factory=asyncio.Queue)
    rejected: set[str] = field(default_factory=set)

    def reject_once(self, exc: DecodeError, received_at: datetime, characteristic: str, data: bytes) -> None:
        if data.hex() not in self.rejected:
            self.rejected.add(data.hex())
            self.collector._reject(self.device, exc, received_at, characteristic, data.hex())
            self.result.rejected += 1

    def timing(self, received_at: datetime) -> wire.Timing:
        return self.collector._timing(received_at, self.offset)

    def commit(self, reading: wire.JsonDict, *, must_keep: bool = False, remember: bool = False) -> None:
        added = self.collector.outbox.add(
            reading["message_id"],
            reading["kind"],
            self.device.id,
            wire.encode(reading),
            must_keep=must_keep,
            remember=remember,
        )
        if added:
            self.result.committed += 1
            self.collector.on_commit()
        else:
            self.result.duplicates += 1


async def collect_weight(
    collector: Collector,
    link: BleLink,
    device: wire.DeviceIdentity,
    offset: float | None,
    lost: asyncio.Event,
    result: SessionResult,
) -> None:
    if collector.outbox.full:
        result.notes.append("outbox full: indications not enabled, weighings stay on the scale")
        log.error("%s: outbox full, not enabling weight indications", device.id)
        return
    s = _Session(collector, link, device, offset, lost, result)
    await link.start_notify(WEIGHT_MEASUREMENT, collector._enqueue(s.frames, WEIGHT_MEASUREMENT))
    seen: dict[str, datetime] = {}
    idle_since = time.monotonic()
    while True:
        frame = await collector._next_frame(s.frames)
        if frame is None:
            if lost.is_set() or time.monotonic() - idle_since >= collector.config.session_idle_s:
                result.complete = not lost.is_set()
                return
            continue
        _, data, received_at = frame
        idle_since = time.monotonic()
        try:
            m = parse_weight_measurement(data)
        except DecodeError as exc:
            s.reject_once(exc, received_at, "2A9D", data)
            continue
        first = seen.get(m.raw_hex)
        if first is not None and (received_at - first).total_seconds() <= collector.config.duplicate_window_s:
            received_at = first  # a repeated indication: same identity
        else:
            seen[m.raw_hex] = received_at
        s.commit(
            wire_vitals.weight_reading(
                m, gateway_id=collector.config.gateway_id, device=device, timing=s.timing(received_at)
            ),
            must_keep=True,
        )


async def collect_plx(
    collector: Collector,
    link: BleLink,
    device: wire.DeviceIdentity,
    offset: float | None,
    lost: asyncio.Event,
    result: SessionResult,
) -> None:
    if collector.outbox.full:
        result.notes.append("outbox full: oximeter not read, spot-checks stay on the device")
        log.error("%s: outbox full, not reading the oximeter", device.id)
        return
    s = _Session(collector, link, device, offset, lost, result)
    for uuid in (PLX_SPOT_CHECK, PLX_CONTINUOUS, RACP):
        if link.has_characteristic(uuid):
            await link.start_notify(uuid, collector._enqueue(s.frames, uuid))
    racp_pending = await _request_stored(s)
    summariser = ContinuousSummariser(collector.config.oximetry_window_s)
    progress = idle_since = time.monotonic()
    try:
        while True:
            frame = await collector._next_frame(s.frames)
            now = time.monotonic()
            if frame is None:
                if racp_pending and now - progress >= collector.config.racp_timeout_s:
                    result.notes.append("no final RACP indication: aborted, records stay on the device")
                    with contextlib.suppress(OSError, TimeoutError, LookupError):
                        await link.write(RACP, encode_racp_abort())
                    racp_pending = False
                quiet = now - idle_since >= collector.config.session_idle_s
                if lost.is_set() or (not racp_pending and quiet):
                    result.complete = not lost.is_set() and not result.notes
                    return
                continue
            uuid, data, received_at = frame
            progress = idle_since = now
            if uuid == PLX_SPOT_CHECK:
                if not _spot_check(s, data, received_at):
                    racp_pending = False
                    with contextlib.suppress(OSError, TimeoutError, LookupError):
                        await link.write(RACP, encode_racp_abort())
            elif uuid == PLX_CONTINUOUS:
                _continuous(s, summariser, data, received_at)
            elif uuid == RACP and _racp_final(s, data, received_at):
                racp_pending = False
    finally:
        for summary in summariser.flush():
            _commit_summary(s, summary)
        if summariser.empty_windows:
            log.info("%s: %d oximetry window(s) without a usable sample", device.id, summariser.empty_windows)


async def _request_stored(s: _Session) -> bool:
    """Read PLX Features; ask for every stored spot-check when the device keeps them."""
    try:
        features = parse_plx_features(await s.link.read(PLX_FEATURES))
    except (LookupError, DecodeError) as exc:
        log.warning("%s: PLX features unreadable (%s); no stored records requested", s.device.id, exc)
        return False
    if not features.stores_spot_checks or not s.link.has_characteristic(RACP):
        return False
    await s.link.write(RACP, encode_racp_report_all_records())
    return True


def _spot_check(s: _Session, data: bytes, received_at: datetime) -> bool:
    """Commit one spot-check; False when the outbox is full (stop the download)."""
    try:
        m = parse_plx_spot_check_measurement(data)
    except DecodeError as exc:
        s.reject_once(exc, received_at, "2A5E", data)
        return True
    if not wire_vitals.is_patient_data(m):
        log.info("%s: demonstration/testing PLX data %s not published", s.device.id, m.raw_hex)
        s.result.not_published += 1
        return True
    reading = wire_vitals.spo2_reading(
        m, gateway_id=s.collector.config.gateway_id, device=s.device, timing=s.timing(received_at)
    )
    try:
        s.commit(reading, remember=True)
    except OutboxFull:
        s.result.notes.append("outbox full: the rest of the spot-checks stay on the oximeter")
        return False
    return True


def _continuous(s: _Session, summariser: ContinuousSummariser, data: bytes, received_at: datetime) -> None:
    try:
        m = parse_plx_continuous_measurement(data)
    except DecodeError as exc:
        s.reject_once(exc, received_at, "2A5F", data)
        return
    for summary in summariser.add(m, received_at):
        _commit_summary(s, summary)


def _commit_summary(s: _Session, summary: OximetrySummary) -> None:
    reading = wire_vitals.spo2_summary_reading(
        summary,
        gateway_id=s.collector.config.gateway_id,
        device=s.device,
        timing=s.timing(summary.first_received_at),
    )
    s.commit(reading, must_keep=True)  # live data: the device cannot send it again


def _racp_final(s: _Session, data: bytes, received_at: datetime) -> bool:
    """True when ``data`` ends the stored-records procedure (success, none, or refused)."""
    try:
        frame = parse_racp(data, from_device=True)
    except DecodeError as exc:
        s.reject_once(exc, received_at, "2A52", data)
        return False
    if frame.opcode is not RacpOpCode.RESPONSE_CODE:
        return False
    try:
        check_racp_response(frame, 0x01)
    except GatewayError as exc:
        s.result.notes.append(f"stored records refused: {exc}")
        log.warning("%s: RACP report refused: %s", s.device.id, exc)
    return True
