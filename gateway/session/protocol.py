"""The vocabulary of a collection session: its settings, the commands it emits, the events it is fed,
its phases and the one table of phase transitions (pure data, no I/O).

The session (:mod:`gateway.session.machine`) never touches the radio, the outbox or the clock
itself. It emits one :data:`Command` at a time; whoever drives it (the asyncio shell in
:mod:`gateway.collector`, or a test with plain values) carries it out and answers with the
:data:`Event` the command names, or ``None`` for commands that only have an effect:

==========================  =============================================  ======================
command                     meaning                                        answer
==========================  =============================================  ======================
``Read(uuid)``              read a characteristic (absent → ``None``)      ``ReadDone``
``Write(uuid, data)``       write with response; ``tolerate``: errors      ``WriteDone``
                            come back as text instead of ending the
                            session
``Subscribe(uuid)``         enable notifications/indications (CCCD)        ``Subscribed``
``NextFrame()``             wait briefly for the next notified value       ``FrameReceived``,
                                                                           ``TimerFired`` or
                                                                           ``Disconnected``
``CheckLink()``             is the link still up?                          ``LinkState``
``LoadDevice(key)``         cached Device Information / clock offset       ``DeviceLoaded``
``LoadMark(device_id)``     the device's high-water mark                   ``MarkLoaded``
``CheckOutbox()``           is the outbox full?                            ``OutboxState``
``StoreReading(...)``       commit a reading (and its mark) in one tx      ``Stored`` or
                                                                           ``StoreRefused``
``RecordReset(...)``        store a meter sequence reset, clear the mark   ``ResetRecorded``
``SaveDevice``,             effects: outbox writes, status board,          ``None``
``StoreRejected``,          the quirk profile chosen
``SetHighWater``,
``Contact``, ``ReportReset``,
``ProfileSelected``
==========================  =============================================  ======================

Errors from the radio that end a session (link lost, ATT error, time-out) are raised by the
driver, not fed in: the session is then abandoned (phase ``FAILED``).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeAlias, TypeVar
from zoneinfo import ZoneInfo

from gateway import wire
from gateway.errors import GatewayError, TerminalError
from gateway.outbox import HighWater
from gateway.quirks import QuirkProfile
from gateway.sequence import Mark

BPM = 0x2A35
ICP = 0x2A36
GLUCOSE = 0x2A18
GLUCOSE_CONTEXT = 0x2A34
RACP = 0x2A52
CURRENT_TIME = 0x2A2B
DATE_TIME = 0x2A08
WEIGHT_MEASUREMENT = 0x2A9D
PLX_SPOT_CHECK = 0x2A5E
PLX_CONTINUOUS = 0x2A5F
PLX_FEATURES = 0x2A60
DIS_CHARACTERISTICS = (0x2A29, 0x2A24, 0x2A25, 0x2A27, 0x2A26, 0x2A28)
VITALS_SERVICE_UUIDS = (0x181D, 0x1822)  # weight scale, pulse oximeter
SERVICE_UUIDS = (0x1810, 0x1808, *VITALS_SERVICE_UUIDS)
#: every characteristic a session may ask about: the driver reports which of them the device has
KNOWN_CHARACTERISTICS = (BPM, ICP, GLUCOSE, GLUCOSE_CONTEXT, RACP, CURRENT_TIME, DATE_TIME,
                         WEIGHT_MEASUREMENT, PLX_SPOT_CHECK, PLX_CONTINUOUS, PLX_FEATURES,
                         *DIS_CHARACTERISTICS)


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


@dataclass(frozen=True)
class SessionClock:
    """Time, passed in (tests use fixed values): aware UTC wall clock and a monotonic counter."""

    utc: Callable[[], datetime]
    monotonic: Callable[[], float]


# -- the first event: the link is up -----------------------------------------------------------

@dataclass(frozen=True)
class Connected:
    """The link is up; which of :data:`KNOWN_CHARACTERISTICS` the device has, and which are writable."""

    address: str
    present: frozenset[int]
    writable: frozenset[int] = frozenset()


# -- commands ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Read:
    uuid: int


@dataclass(frozen=True)
class Write:
    uuid: int
    data: bytes
    tolerate: bool = False  # ATT error / missing characteristic → WriteDone(error=...), not an exception


@dataclass(frozen=True)
class Subscribe:
    uuid: int
    optional: bool = False  # a missing characteristic → Subscribed(ok=False), not an exception


@dataclass(frozen=True)
class NextFrame:
    """Wait a short tick for a notified value (so the session can check its deadlines)."""


@dataclass(frozen=True)
class CheckLink:
    pass


@dataclass(frozen=True)
class LoadDevice:
    key: str


@dataclass(frozen=True)
class SaveDevice:
    key: str
    info: Mapping[str, Any]


@dataclass(frozen=True)
class LoadMark:
    device_id: str


@dataclass(frozen=True)
class CheckOutbox:
    pass


@dataclass(frozen=True)
class StoreReading:
    message_id: str
    kind: str
    device_id: str
    payload: str
    high_water: Mark | None = None
    must_keep: bool = False  # a BP cuff will not send it again: keep it past the bound
    remember: bool = False  # keep the identity so a re-download after a reset is not re-published


@dataclass(frozen=True)
class StoreRejected:
    device_id: str
    characteristic: str
    reason: str
    payload_hex: str
    received_at: str  # ISO UTC


@dataclass(frozen=True)
class SetHighWater:
    device_id: str
    seq: int
    base_time: str | None


@dataclass(frozen=True)
class RecordReset:
    device_id: str
    meter_newest: int | None
    reason: str


@dataclass(frozen=True)
class Contact:
    device_id: str


@dataclass(frozen=True)
class ReportReset:
    device_id: str
    entry: Mapping[str, Any]


@dataclass(frozen=True)
class ProfileSelected:
    address: str
    device: wire.DeviceIdentity
    profile: QuirkProfile


Command: TypeAlias = (Read | Write | Subscribe | NextFrame | CheckLink | LoadDevice | SaveDevice | LoadMark
                      | CheckOutbox | StoreReading | StoreRejected | SetHighWater | RecordReset | Contact
                      | ReportReset | ProfileSelected)


# -- events (answers) --------------------------------------------------------------------------

@dataclass(frozen=True)
class ReadDone:
    uuid: int
    data: bytes | None  # None: the device has no such characteristic


@dataclass(frozen=True)
class WriteDone:
    uuid: int
    error: str | None = None


@dataclass(frozen=True)
class Subscribed:
    uuid: int
    ok: bool = True


@dataclass(frozen=True)
class FrameReceived:
    uuid: int
    data: bytes
    received_at: datetime  # aware UTC, when the callback handed the bytes over


@dataclass(frozen=True)
class TimerFired:
    """No frame within the tick; the link is still up."""


@dataclass(frozen=True)
class Disconnected:
    """No frame within the tick, and the device dropped the link."""


@dataclass(frozen=True)
class LinkState:
    up: bool


@dataclass(frozen=True)
class DeviceLoaded:
    info: Mapping[str, Any] | None


@dataclass(frozen=True)
class MarkLoaded:
    mark: HighWater | None


@dataclass(frozen=True)
class OutboxState:
    full: bool


@dataclass(frozen=True)
class Stored:
    added: bool  # False: a duplicate (already queued or already sent)


@dataclass(frozen=True)
class StoreRefused:
    """The outbox is full."""


@dataclass(frozen=True)
class ResetRecorded:
    detected_at: str
    meter_last: int | None


Event: TypeAlias = (ReadDone | WriteDone | Subscribed | FrameReceived | TimerFired | Disconnected | LinkState
                    | DeviceLoaded | MarkLoaded | OutboxState | Stored | StoreRefused | ResetRecorded)

T = TypeVar("T")
#: a step of the session: yields commands, is sent their answers, returns its value
Flow: TypeAlias = Generator[Command, Event | None, T]


# -- phases ------------------------------------------------------------------------------------

class Phase(enum.Enum):
    IDENTIFYING = "identifying"  # Device Information, allow-list, quirk profile
    READING_CLOCK = "reading_clock"
    COLLECTING_BP = "collecting_bp"
    COLLECTING_WEIGHT = "collecting_weight"
    COLLECTING_PLX = "collecting_plx"  # pulse oximeter: stored spot-checks and continuous samples
    SUBSCRIBING = "subscribing"  # glucose CCCDs, before any RACP request
    CHECKING_SEQUENCE = "checking_sequence"  # meter reset / wrap check at the mark
    DOWNLOADING = "downloading"  # RACP report records
    LISTENING = "listening"  # quirk: readings taken while connected
    SETTING_CLOCK = "setting_clock"
    DONE = "done"
    FAILED = "failed"


#: the only phase changes a session may make; any other is a bug (:class:`IllegalTransition`)
TRANSITIONS: dict[Phase, frozenset[Phase]] = {
    Phase.IDENTIFYING: frozenset({Phase.READING_CLOCK}),
    Phase.READING_CLOCK: frozenset({Phase.COLLECTING_BP, Phase.COLLECTING_WEIGHT, Phase.COLLECTING_PLX,
                                    Phase.SUBSCRIBING, Phase.SETTING_CLOCK, Phase.DONE}),
    Phase.COLLECTING_BP: frozenset({Phase.SETTING_CLOCK, Phase.DONE}),
    Phase.COLLECTING_WEIGHT: frozenset({Phase.SETTING_CLOCK, Phase.DONE}),
    Phase.COLLECTING_PLX: frozenset({Phase.SETTING_CLOCK, Phase.DONE}),
    Phase.SUBSCRIBING: frozenset({Phase.CHECKING_SEQUENCE, Phase.DOWNLOADING}),
    Phase.CHECKING_SEQUENCE: frozenset({Phase.DOWNLOADING}),
    Phase.DOWNLOADING: frozenset({Phase.LISTENING, Phase.SETTING_CLOCK, Phase.DONE}),
    Phase.LISTENING: frozenset({Phase.SETTING_CLOCK, Phase.DONE}),
    Phase.SETTING_CLOCK: frozenset({Phase.DONE}),
    Phase.DONE: frozenset(),
    Phase.FAILED: frozenset(),
}
FINAL = frozenset({Phase.DONE, Phase.FAILED})


class IllegalTransition(GatewayError, TerminalError):
    """A session tried a phase change the table does not list (a bug in the session)."""

    def __init__(self, current: Phase, wanted: Phase) -> None:
        super().__init__(current, wanted)
        self.current = current
        self.wanted = wanted

    def __str__(self) -> str:
        return f"collection session cannot go from {self.current.value} to {self.wanted.value}"


class UnexpectedEvent(GatewayError, TerminalError):
    """The driver answered a command with the wrong event (a bug in the driver)."""

    def __init__(self, command: str, event: str) -> None:
        super().__init__(command, event)
        self.command = command
        self.event = event

    def __str__(self) -> str:
        return f"collection session: {self.command} was answered with {self.event}"


def next_phase(current: Phase, wanted: Phase) -> Phase:
    """``wanted`` when the table allows it; every non-final phase may fail."""
    if wanted is Phase.FAILED and current not in FINAL:
        return wanted
    if wanted not in TRANSITIONS[current]:
        raise IllegalTransition(current, wanted)
    return wanted
