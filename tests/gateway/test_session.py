"""The sans-I/O collection session, driven with plain values: no asyncio, no radio, no outbox.

A small scripted peer answers each command the session emits and records it (the habluetooth
``FakePeer`` idea); wire bytes stay literals here.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from gateway.errors import DeviceUnavailable, ProcedureTimeout, UnknownDevice
from gateway.outbox import HighWater
from gateway.session import (
    TRANSITIONS,
    CollectionSession,
    CollectorConfig,
    Command,
    Connected,
    Event,
    IllegalTransition,
    Phase,
    SessionClock,
    UnexpectedEvent,
)
from gateway.session import protocol as p
from gateway.session.protocol import next_phase

ADDRESS = "C8:4F:86:00:00:01"
UTC_NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)  # 13:00 in Paris
CTS_90_S_AHEAD = bytes.fromhex("ea07030f0d011e000000")  # 2026-03-15 13:01:30 local
BP_120_80 = bytes.fromhex("0278005000" "5d00" "ea07030f0c0000")
RACP_SUCCESS = bytes.fromhex("06000101")
RACP_NO_RECORDS = bytes.fromhex("06000106")
SERIAL = 0x2A25


def glucose_frame(seq: int, day: int = 1) -> bytes:
    """0x2A18 with time offset and concentration (100 mg/dL), base time 2026-03-<day> 08:00."""
    return bytes.fromhex(f"03{seq & 0xFF:02x}{seq >> 8:02x}ea0703{day:02x}080000" "0000" "64b011")


@dataclass
class Peer:
    """Answers commands from plain data: a device, an outbox and a clock that ticks on demand."""

    info: dict[str, Any] | None = None
    reads: dict[int, bytes] = field(default_factory=dict)
    racp: dict[bytes, list[tuple[int, bytes]]] = field(default_factory=dict)  # request → frames
    frames: deque[tuple[int, bytes]] = field(default_factory=deque)
    mark: HighWater | None = None
    full_after: int | None = None  # outbox refuses readings after this many
    drop_after_frames: int | None = None
    now: float = 0.0
    log: list[Command] = field(default_factory=list)
    stored: list[p.StoreReading] = field(default_factory=list)
    delivered: int = 0

    def clock(self) -> SessionClock:
        return SessionClock(utc=lambda: UTC_NOW, monotonic=lambda: self.now)

    def answer(self, command: Command) -> Event | None:
        self.log.append(command)
        match command:
            case p.LoadDevice():
                return p.DeviceLoaded(self.info)
            case p.SaveDevice(info=info):
                self.info = dict(info)
            case p.Read(uuid=uuid):
                return p.ReadDone(uuid, self.reads.get(uuid))
            case p.Subscribe(uuid=uuid):
                return p.Subscribed(uuid)
            case p.Write(uuid=uuid, data=data):
                self.frames.extend(self.racp.get(data, []))
                return p.WriteDone(uuid)
            case p.NextFrame():
                return self._next_frame()
            case p.CheckLink():
                return p.LinkState(self.drop_after_frames is None)
            case p.CheckOutbox():
                return p.OutboxState(self.full_after == 0)
            case p.LoadMark():
                return p.MarkLoaded(self.mark)
            case p.StoreReading():
                if self.full_after is not None and len(self.stored) >= self.full_after:
                    return p.StoreRefused()
                self.stored.append(command)
                return p.Stored(True)
            case p.RecordReset(meter_newest=newest):
                return p.ResetRecorded("2026-03-15T12:00:00+00:00", newest)
        return None

    def _next_frame(self) -> Event:
        if self.drop_after_frames is not None and self.delivered >= self.drop_after_frames:
            return p.Disconnected()
        if self.frames:
            self.delivered += 1
            uuid, data = self.frames.popleft()
            return p.FrameReceived(uuid, data, UTC_NOW + timedelta(seconds=self.delivered))
        self.now += 1.0  # a tick with nothing: time passes
        return p.TimerFired()


def config(**kw: Any) -> CollectorConfig:
    return CollectorConfig("gw-test", ZoneInfo("Europe/Paris"), session_idle_s=3, racp_timeout_s=10, **kw)


def run(peer: Peer, present: set[int], writable: frozenset[int] = frozenset(),
        **kw: Any) -> CollectionSession:
    session = CollectionSession(config(**kw), peer.clock(), Connected(ADDRESS, frozenset(present),
                                                                      frozenset(writable)))
    command = session.start()
    while command is not None:
        command = session.send(peer.answer(command))
    return session


def of(peer: Peer, kind: type[Any]) -> list[Any]:
    return [c for c in peer.log if isinstance(c, kind)]


# -- the phase table ---------------------------------------------------------------------------

@pytest.mark.parametrize("current", list(Phase))
@pytest.mark.parametrize("wanted", list(Phase))
def test_every_phase_pair(current: Phase, wanted: Phase) -> None:
    allowed = wanted in TRANSITIONS[current] or (
        wanted is Phase.FAILED and current not in (Phase.DONE, Phase.FAILED))
    if allowed:
        assert next_phase(current, wanted) is wanted
    else:
        with pytest.raises(IllegalTransition):
            next_phase(current, wanted)


# -- blood pressure ----------------------------------------------------------------------------

def test_bp_session_reads_dis_clock_commits_then_sets_the_clock() -> None:
    peer = Peer(reads={SERIAL: b"BP-1", 0x2A2B: CTS_90_S_AHEAD}, frames=deque([(0x2A35, BP_120_80)]))
    session = run(peer, {0x2A35, SERIAL, 0x2A2B}, frozenset({0x2A2B}))
    result = session.result
    assert result is not None and session.phase is Phase.DONE
    assert (result.device_id, result.committed, result.clock_offset_s) == ("BP-1", 1, 90.0)
    assert result.complete and result.clock_set
    assert peer.info is not None and peer.info["serial"] == "BP-1" and peer.info["clock_offset_s"] == 90.0
    (stored,) = peer.stored
    reading = json.loads(stored.payload)
    assert stored.must_keep and reading["values"]["systolic_mmhg"] == 120
    # the clock write comes after the reading was stored, and only then
    writes = of(peer, p.Write)
    assert [w.uuid for w in writes] == [0x2A2B]
    assert peer.log.index(writes[0]) > peer.log.index(stored)


def test_bp_repeated_indication_keeps_its_identity_and_bad_bytes_are_rejected_once() -> None:
    peer = Peer(info={"serial": "BP-1"},
                frames=deque([(0x2A35, BP_120_80), (0x2A35, BP_120_80),
                              (0x2A35, b"\x00"), (0x2A35, b"\x00")]))
    run(peer, {0x2A35})
    ids = {s.message_id for s in peer.stored}
    # the second indication, 1 s later, keeps the first one's receive time: the outbox sees a duplicate
    assert len(peer.stored) == 2 and len(ids) == 1
    (rejected,) = of(peer, p.StoreRejected)
    assert rejected.characteristic == "2A35" and rejected.payload_hex == "00"


def test_bp_outbox_full_leaves_readings_on_the_cuff() -> None:
    peer = Peer(info={"serial": "BP-1"}, full_after=0, frames=deque([(0x2A35, BP_120_80)]))
    result = run(peer, {0x2A35}).result
    assert result is not None and not of(peer, p.Subscribe) and not peer.stored
    assert "outbox full" in result.notes[0]


def test_allow_list_refuses_an_unknown_device() -> None:
    peer = Peer(info={"serial": "BP-9"})
    session = CollectionSession(config(allow=frozenset({"BP-1"})), peer.clock(),
                                Connected(ADDRESS, frozenset({0x2A35})))
    command = session.start()
    with pytest.raises(UnknownDevice):
        while command is not None:
            command = session.send(peer.answer(command))
    assert session.phase is Phase.FAILED


# -- glucose -----------------------------------------------------------------------------------

GLUCOSE_CHARS = {0x2A18, 0x2A34, 0x2A52}


def test_first_download_asks_for_all_records_after_enabling_cccds() -> None:
    peer = Peer(info={"serial": "GL-1"},
                racp={bytes.fromhex("0101"): [(0x2A18, glucose_frame(1)), (0x2A18, glucose_frame(2)),
                                              (0x2A52, RACP_SUCCESS)]})
    result = run(peer, GLUCOSE_CHARS).result
    assert result is not None and result.committed == 2 and result.complete
    assert [s.high_water for s in peer.stored] == [("GL-1", 1, "2026-03-01T08:00:00"),
                                                    ("GL-1", 2, "2026-03-01T08:00:00")]
    first_write = peer.log.index(of(peer, p.Write)[0])
    assert all(peer.log.index(s) < first_write for s in of(peer, p.Subscribe))
    assert {s.uuid for s in of(peer, p.Subscribe)} == GLUCOSE_CHARS


def test_resume_checks_the_mark_then_asks_for_the_next_record() -> None:
    peer = Peer(info={"serial": "GL-1"}, mark=HighWater(3, "2026-03-01T08:00:00"),
                racp={bytes.fromhex("01040103000300"): [(0x2A18, glucose_frame(3)), (0x2A52, RACP_SUCCESS)],
                      bytes.fromhex("0103010400"): [(0x2A18, glucose_frame(4)), (0x2A52, RACP_SUCCESS)]})
    result = run(peer, GLUCOSE_CHARS).result
    assert result is not None and result.sequence_reset is None
    assert [w.data.hex() for w in of(peer, p.Write)] == ["01040103000300", "0103010400"]
    assert [s.high_water for s in peer.stored] == [("GL-1", 4, "2026-03-01T08:00:00")]


def test_mark_65535_resumes_at_0_not_a_reset() -> None:
    peer = Peer(info={"serial": "GL-1"}, mark=HighWater(65535, "2026-03-01T08:00:00"),
                racp={bytes.fromhex("010401ffffffff"): [(0x2A18, glucose_frame(65535)),
                                                      (0x2A52, RACP_SUCCESS)],
                      bytes.fromhex("0103010000"): [(0x2A18, glucose_frame(0)), (0x2A52, RACP_SUCCESS)]})
    result = run(peer, GLUCOSE_CHARS).result
    assert result is not None and result.sequence_reset is None and result.committed == 1


def test_meter_reset_is_recorded_and_everything_downloaded() -> None:
    peer = Peer(info={"serial": "GL-1"}, mark=HighWater(5, "2026-03-01T08:00:00"),
                racp={bytes.fromhex("01040105000500"): [(0x2A52, RACP_NO_RECORDS)],
                      bytes.fromhex("0106"): [(0x2A18, glucose_frame(2, day=4)), (0x2A52, RACP_SUCCESS)],
                      bytes.fromhex("0101"): [(0x2A18, glucose_frame(1, day=4)),
                                              (0x2A18, glucose_frame(2, day=4)), (0x2A52, RACP_SUCCESS)]})
    result = run(peer, GLUCOSE_CHARS).result
    assert result is not None and "behind our mark 5" in (result.sequence_reset or "")
    (reset,) = of(peer, p.RecordReset)
    assert reset.meter_newest == 2
    (report,) = of(peer, p.ReportReset)
    assert report.entry["old_high_water"] == 5
    assert [s.high_water for s in peer.stored] == [("GL-1", 1, "2026-03-04T08:00:00"),
                                                    ("GL-1", 2, "2026-03-04T08:00:00")]
    assert all(w.data[0] != 0x02 for w in of(peer, p.Write))  # never a RACP Delete


def test_silent_meter_is_aborted_after_the_racp_timeout() -> None:
    peer = Peer(info={"serial": "GL-1"}, racp={bytes.fromhex("0101"): [(0x2A18, glucose_frame(1))]})
    with pytest.raises(ProcedureTimeout):
        run(peer, GLUCOSE_CHARS)
    assert of(peer, p.Write)[-1] == p.Write(0x2A52, bytes.fromhex("0300"), tolerate=True)
    assert len(peer.stored) == 1  # what arrived before the silence is committed
    assert 10 < peer.now <= 12


def test_link_lost_mid_download_keeps_what_was_committed() -> None:
    peer = Peer(info={"serial": "GL-1"}, drop_after_frames=2,
                racp={bytes.fromhex("0101"): [(0x2A18, glucose_frame(n)) for n in (1, 2, 3)]})
    with pytest.raises(DeviceUnavailable, match="link lost during RACP download"):
        run(peer, GLUCOSE_CHARS)
    assert [s.high_water for s in peer.stored] == [("GL-1", 1, "2026-03-01T08:00:00"),
                                                    ("GL-1", 2, "2026-03-01T08:00:00")]


def test_outbox_full_mid_download_aborts_and_keeps_the_rest_on_the_meter() -> None:
    peer = Peer(info={"serial": "GL-1"}, full_after=1,
                racp={bytes.fromhex("0101"): [(0x2A18, glucose_frame(n)) for n in (1, 2, 3)]})
    result = run(peer, GLUCOSE_CHARS).result
    assert result is not None and result.committed == 1 and not result.complete
    assert "outbox full at seq 2" in result.notes[0]
    assert of(peer, p.Write)[-1].data == bytes.fromhex("0300")


def test_orphan_context_is_rejected_with_its_reason() -> None:
    context = bytes.fromhex("00" "0900" "01")  # flags 0, sequence 9, one extended-flags-free byte
    peer = Peer(info={"serial": "GL-1"},
                racp={bytes.fromhex("0101"): [(0x2A34, context[:3]), (0x2A52, RACP_SUCCESS)]})
    result = run(peer, GLUCOSE_CHARS).result
    assert result is not None and result.rejected == 1
    (rejected,) = of(peer, p.StoreRejected)
    assert rejected.characteristic == "2A34"
    assert "sequence number 9 without its measurement" in rejected.reason


# -- driver mistakes ---------------------------------------------------------------------------

def test_a_wrong_answer_is_a_typed_error() -> None:
    session = CollectionSession(config(), Peer().clock(), Connected(ADDRESS, frozenset({0x2A35})))
    assert session.start() == p.LoadDevice(ADDRESS)
    with pytest.raises(UnexpectedEvent, match="LoadDevice was answered with TimerFired"):
        session.send(p.TimerFired())
    assert session.phase is Phase.FAILED


def test_abandon_marks_the_session_failed() -> None:
    session = CollectionSession(config(), Peer().clock(), Connected(ADDRESS, frozenset()))
    session.start()
    session.abandon()
    assert session.phase is Phase.FAILED and session.result is None


def _with_context(seq: int) -> list[tuple[int, bytes]]:
    """0x2A18 with Context Information Follows (flag b4), then its 0x2A34 (flags 0, the sequence)."""
    measurement = bytearray(glucose_frame(seq))
    measurement[0] |= 0x10
    return [(0x2A18, bytes(measurement)), (0x2A34, bytes([0, seq & 0xFF, seq >> 8]))]


def test_a_meter_repeating_records_and_contexts_loses_nothing_and_keeps_each_context() -> None:
    m1, c1 = _with_context(1)
    m2, c2 = _with_context(2)
    m3, c3 = _with_context(3)
    # Record 1 is repeated after it was committed; record 2's copies overlap (measurement, measurement,
    # context); record 3 follows. A repeat used to be listed twice and hold back every later record.
    frames = [m1, c1, m1, m2, c2, m2, m2, c2, m2, m3, c3, m3, m3, c3, (0x2A52, RACP_SUCCESS)]
    peer = Peer(info={"serial": "GL-1"}, racp={bytes.fromhex("0101"): frames})
    result = run(peer, GLUCOSE_CHARS).result
    assert result is not None and result.complete and result.duplicates >= 1
    firsts: dict[int, dict[str, Any]] = {}
    for stored in peer.stored:
        reading = json.loads(stored.payload)
        firsts.setdefault(reading["sequence_number"], reading)
    assert sorted(firsts) == [1, 2, 3]
    assert all("+" in r["raw"] for r in firsts.values()), firsts  # measurement + its context
