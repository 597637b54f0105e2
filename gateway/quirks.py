"""Per-model quirks (DOMAIN A7 item 8): data keyed by Device Information, plus small pure functions.

A :class:`Quirk` matches a device when its manufacturer, model and firmware *start with* the
quirk's (lower-cased) prefixes; an empty prefix matches anything. :func:`select` runs once per
device, right after Device Information is known, and merges every matching quirk into one
:class:`QuirkProfile` that the collector consults; the collector logs the names it applied.

The GATT decoders (``gateway.gatt``) stay spec-pure: a quirk never patches them. It either
rewrites the device's bytes into the standard layout *before* decoding (``bp_frame``), or
rewrites a decoded value *after* decoding (``synthetic_sequence``), or changes what the
collector asks the device (download all, clock characteristic, polling, listening window).

The table (sources in DOMAIN A3.4, A6, A7):

==================  ===========================  ===================================================
quirk               matches (prefixes)           what the gateway does
==================  ===========================  ===================================================
beurer-bm85         Beurer / BM85                pulse + status big-endian and user ID sent without
                                                 its flag: bytes normalised before decoding
                                                 (derdilla/blood-pressure-monitor-fl)
taidoc-sequence     TaiDoc                       sequence numbers reversed/unreliable, no clock
                                                 access: download all records every time, sequence
                                                 replaced by one derived from the base time, no CTS
                                                 (xDrip ``BluetoothGlucoseMeter``, Diamond Mini)
roche-date-time     Roche                        clock through Date Time 0x2A08 instead of CTS, and
                                                 a reading taken while connected arrives unasked:
                                                 listen after the download (xDrip, xDrip #208/#308)
omron-poll          OMRON / HEM-7342T            no push after a measurement: poll the cuff every
                                                 ``poll_interval_s`` (eigger/hass-omron #20, #39, #133)
==================  ===========================  ===================================================
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal

from gateway.gatt import GlucoseRecord

log = logging.getLogger(__name__)

CURRENT_TIME = 0x2A2B
DATE_TIME = 0x2A08

ByteTransform = Callable[[bytes], bytes]
Clock = Literal["cts", "date_time", "none"]


@dataclass(frozen=True)
class Quirk:
    """One known deviation, as data. Prefixes are compared lower-case."""

    name: str
    manufacturer: str
    model: str = ""
    firmware: str = ""
    source: str = ""
    bp_frame: ByteTransform | None = None  # 0x2A35/0x2A36 bytes → standard bytes, before decoding
    sequence_reliable: bool | None = None  # False: download all, synthesise the sequence number
    clock: Clock | None = None  # where the device clock lives
    listen_after_download: bool | None = None  # meter notifies a reading taken while connected
    poll_interval_s: float | None = None  # cuff never pushes on its own: connect this often

    def matches(self, manufacturer: str | None, model: str | None, firmware: str | None) -> bool:
        return ((manufacturer or "").lower().startswith(self.manufacturer)
                and (model or "").lower().startswith(self.model)
                and (firmware or "").lower().startswith(self.firmware))


@dataclass(frozen=True)
class QuirkProfile:
    """Everything the collector needs to know about one device; the default is a spec device."""

    names: tuple[str, ...] = ()
    bp_frame: tuple[ByteTransform, ...] = field(default=())
    sequence_reliable: bool = True
    clock: Clock = "cts"
    listen_after_download: bool = False
    poll_interval_s: float | None = None

    @property
    def clock_characteristic(self) -> int | None:
        return {"cts": CURRENT_TIME, "date_time": DATE_TIME, "none": None}[self.clock]

    def normalise_bp(self, data: bytes) -> bytes:
        for transform in self.bp_frame:
            data = transform(data)
        return data

    def normalise_glucose(self, record: GlucoseRecord) -> GlucoseRecord:
        """Decoded-value fix-ups (the raw bytes stay what the device sent)."""
        if self.sequence_reliable:
            return record
        m = record.measurement
        seq = synthetic_sequence(m.base_time, m.sequence_number)
        return replace(record, measurement=replace(m, sequence_number=seq))


SPEC = QuirkProfile()


# -- the small functions ------------------------------------------------------------------------

def _bp_layout(flags: int) -> tuple[int, int | None, int | None, int | None]:
    """(expected length, pulse offset, user-id offset, status offset) for a 0x2A35 flags byte."""
    offset = 7 + (7 if flags & 0x02 else 0)
    pulse = user = status = None
    if flags & 0x04:
        pulse, offset = offset, offset + 2
    if flags & 0x08:
        user, offset = offset, offset + 1
    if flags & 0x10:
        status, offset = offset, offset + 2
    return offset, pulse, user, status


def beurer_bm85_frame(data: bytes) -> bytes:
    """Beurer BM85: pulse (SFLOAT) and status (uint16) big-endian; the user ID byte is always there.

    Returns the standard little-endian frame. The user ID byte sent without flag bit 3 is
    recognised by the frame being exactly one byte longer than its flags promise; the flag is then
    set so the decoder reads it. Frames of any other length are returned untouched (the decoder
    rejects or warns as for any device).
    """
    if not data:
        return data
    out = bytearray(data)
    expected, *_ = _bp_layout(out[0])
    if not out[0] & 0x08 and len(out) == expected + 1:
        out[0] |= 0x08
        expected += 1
    if len(out) < expected:
        return bytes(data)
    _, pulse, _user, status = _bp_layout(out[0])
    for at in (pulse, status):
        if at is not None:
            out[at], out[at + 1] = out[at + 1], out[at]
    return bytes(out)


_SEQUENCE_EPOCH = datetime(2000, 1, 1)


def synthetic_sequence(base_time: datetime | None, device_sequence: int) -> int:
    """A stable uint16 for a meter whose own sequence numbers move (TaiDoc: newest record is 0).

    Minutes since 2000-01-01 of the base time, modulo 65536 (xDrip uses the time stamp the same
    way). The reading's identity is ``seq + base time``, so it is stable across downloads; the
    modulo cannot merge two readings because the base time is part of the identity too. A record
    with an unknown base time keeps the device's number (nothing better exists).
    """
    if base_time is None:
        return device_sequence
    return int((base_time - _SEQUENCE_EPOCH).total_seconds() // 60) & 0xFFFF


# -- the registry -------------------------------------------------------------------------------

QUIRKS: tuple[Quirk, ...] = (
    Quirk("beurer-bm85", "beurer", "bm85", bp_frame=beurer_bm85_frame,
          source="derdilla/blood-pressure-monitor-fl ble_measurement_data (Beurer BM85 profile)"),
    Quirk("taidoc-sequence", "taidoc", sequence_reliable=False, clock="none",
          source="NightscoutFoundation/xDrip BluetoothGlucoseMeter (Diamond Mini DM30b fw 1.2.4)"),
    Quirk("roche-date-time", "roche", clock="date_time", listen_after_download=True,
          source="NightscoutFoundation/xDrip BluetoothGlucoseMeter; xDrip #208, #308 (Accu-Chek Guide)"),
    Quirk("omron-poll", "omron", "hem-7342t", poll_interval_s=300.0,
          source="eigger/hass-omron #20, #39, #133 (no push after a measurement)"),
)


def select(manufacturer: str | None, model: str | None, firmware: str | None,
           quirks: Iterable[Quirk] = QUIRKS) -> QuirkProfile:
    """Merge every matching quirk (later entries win on the same knob) into one profile."""
    profile = SPEC
    for q in quirks:
        if not q.matches(manufacturer, model, firmware):
            continue
        profile = QuirkProfile(
            names=(*profile.names, q.name),
            bp_frame=profile.bp_frame + ((q.bp_frame,) if q.bp_frame else ()),
            sequence_reliable=(profile.sequence_reliable if q.sequence_reliable is None
                               else q.sequence_reliable),
            clock=profile.clock if q.clock is None else q.clock,
            listen_after_download=(profile.listen_after_download if q.listen_after_download is None
                                   else q.listen_after_download),
            poll_interval_s=profile.poll_interval_s if q.poll_interval_s is None else q.poll_interval_s,
        )
    return profile
