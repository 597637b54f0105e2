"""What every step of a collection session shares: its inputs, its phase, and small helpers
that turn a need ("read this", "reject that") into a command and check the answer (pure)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from gateway import wire
from gateway.errors import DecodeError, ImpossibleValue, MalformedMeasurement
from gateway.session.protocol import (
    CheckLink,
    CollectorConfig,
    Connected,
    Disconnected,
    Event,
    Flow,
    FrameReceived,
    LinkState,
    NextFrame,
    Phase,
    Read,
    ReadDone,
    SessionClock,
    StoreRejected,
    Subscribe,
    Subscribed,
    TimerFired,
    UnexpectedEvent,
    Write,
    WriteDone,
    next_phase,
)

log = logging.getLogger(__name__)

E = TypeVar("E")


def expect(answer: Event | None, kind: type[E], command: object) -> E:
    """The answer, checked to be what ``command`` promises (else :class:`UnexpectedEvent`)."""
    if not isinstance(answer, kind):
        raise UnexpectedEvent(type(command).__name__, type(answer).__name__)
    return answer


class SessionCore:
    """Inputs and phase of one session, and the requests every step makes."""

    def __init__(self, config: CollectorConfig, clock: SessionClock, link: Connected) -> None:
        self.config = config
        self.clock = clock
        self.link = link
        self.phase = Phase.IDENTIFYING

    def enter(self, phase: Phase) -> None:
        self.phase = next_phase(self.phase, phase)

    def has(self, uuid: int) -> bool:
        return uuid in self.link.present

    def gateway_local_now(self) -> datetime:
        return self.clock.utc().astimezone(self.config.zone).replace(tzinfo=None)

    def timing(self, received_at: datetime, offset: float | None) -> wire.Timing:
        return wire.Timing(received_at=received_at, clock_offset_s=offset, zone=self.config.zone)

    # -- radio requests ------------------------------------------------------------------------
    def read(self, uuid: int) -> Flow[bytes | None]:
        command = Read(uuid)
        return expect((yield command), ReadDone, command).data

    def write(self, uuid: int, data: bytes, *, tolerate: bool = False) -> Flow[str | None]:
        """Write with response; with ``tolerate``, the error text (or None) instead of an exception."""
        command = Write(uuid, data, tolerate)
        return expect((yield command), WriteDone, command).error

    def subscribe(self, uuid: int, *, optional: bool = False) -> Flow[bool]:
        command = Subscribe(uuid, optional)
        return expect((yield command), Subscribed, command).ok

    def next_frame(self) -> Flow[FrameReceived | TimerFired | Disconnected]:
        command = NextFrame()
        answer = yield command
        if isinstance(answer, FrameReceived | TimerFired | Disconnected):
            return answer
        raise UnexpectedEvent(type(command).__name__, type(answer).__name__)

    def link_up(self) -> Flow[bool]:
        command = CheckLink()
        return expect((yield command), LinkState, command).up

    # -- outbox effects ------------------------------------------------------------------------
    def reject(self, device_id: str, exc: DecodeError, received_at: datetime,
               characteristic: str = "", payload_hex: str = "") -> Flow[None]:
        """Keep bytes we cannot accept as a ``rejected`` row with the reason (never lost)."""
        if isinstance(exc, MalformedMeasurement):
            characteristic, reason, payload_hex = exc.characteristic, exc.reason, exc.payload_hex
        else:
            reason = str(exc)
        yield StoreRejected(device_id, characteristic, reason, payload_hex, wire.iso_utc(received_at))


def warn_implausible(device_id: str, raw_hex: str, check: Callable[[], list[str]]) -> None:
    """Log what looks wrong but still publish: the server quarantines it where staff can see it.

    Dropping an impossible value here would hide it on a Pi nobody reads; ingest's plausibility
    layer stores it as a quarantined reading with the reason (never alerting, never billed).
    """
    try:
        reasons = check()
    except ImpossibleValue as exc:
        reasons = [str(exc)]
    if reasons:  # ids only: the values and reasons travel in the reading, not into the journal
        log.warning("%s: implausible reading published for quarantine (%d checks failed, raw %d bytes)",
                    device_id, len(reasons), len(raw_hex) // 2)
