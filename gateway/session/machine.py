"""One collection session as a pure state machine: fed events, it emits commands (sans-I/O).

The order of a session: Device Information (once per address, cached in the outbox file) →
allow-list check (address or serial) → quirk profile → Current Time read and the
``device − gateway`` clock offset → collect (blood pressure: :mod:`gateway.session.bp`; glucose:
:mod:`gateway.session.glucose`; weight and pulse oximetry: :mod:`gateway.session.vitals`) → set
the device clock when it drifted past the limit and the device accepts writes (*after*
collecting, so stored records keep the offset they were stamped with). Each step is a generator
of commands; :class:`CollectionSession` runs them, keeps the phase (checked against
:data:`~gateway.session.protocol.TRANSITIONS`) and hands out one command at a time. Nothing here
awaits, sleeps or reads a clock it was not given, so tests drive it with plain values.
"""

from __future__ import annotations

import logging
from collections.abc import Generator
from typing import Any

from gateway import wire
from gateway.errors import MalformedMeasurement, UnknownDevice
from gateway.gatt import (
    DeviceInformation,
    encode_current_time,
    encode_date_time,
    parse_current_time,
    parse_date_time,
)
from gateway.quirks import QuirkProfile
from gateway.quirks import select as select_quirks
from gateway.session import vitals
from gateway.session.bp import collect_bp
from gateway.session.core import SessionCore, expect
from gateway.session.glucose import collect_glucose
from gateway.session.protocol import (
    BPM,
    CURRENT_TIME,
    DIS_CHARACTERISTICS,
    RACP,
    CollectorConfig,
    Command,
    Connected,
    Contact,
    DeviceLoaded,
    Event,
    Flow,
    LoadDevice,
    Phase,
    ProfileSelected,
    SaveDevice,
    SessionClock,
    SessionResult,
)

log = logging.getLogger(__name__)


class CollectionSession:
    """Drive with :meth:`start`, then :meth:`send` each command's answer until :attr:`result` is set.

    A typed :class:`~gateway.errors.GatewayError` raised by :meth:`send` ends the session (phase
    ``FAILED``); so does :meth:`abandon`, for errors the driver met on the radio.
    """

    def __init__(self, config: CollectorConfig, clock: SessionClock, link: Connected) -> None:
        self.core = SessionCore(config, clock, link)
        self.device_id = link.address  # the serial once Device Information is known
        self.result: SessionResult | None = None
        self._flow: Generator[Command, Event | None, SessionResult] = self._run()

    @property
    def phase(self) -> Phase:
        return self.core.phase

    def start(self) -> Command | None:
        return self.send(None)

    def send(self, answer: Event | None) -> Command | None:
        """The next command, or None when the session is over (then :attr:`result` is set)."""
        try:
            return self._flow.send(answer)
        except StopIteration as stop:
            self.result = stop.value
            return None
        except BaseException:
            self.core.phase = Phase.FAILED
            raise

    def abandon(self) -> None:
        """The radio failed under the session: stop where it is."""
        self._flow.close()
        if self.core.phase is not Phase.DONE:
            self.core.phase = Phase.FAILED

    # -- the session ---------------------------------------------------------------------------
    def _run(self) -> Flow[SessionResult]:
        core = self.core
        device = yield from self._identify()
        self.device_id = device.id
        profile = select_quirks(device.manufacturer, device.model, device.firmware)
        yield ProfileSelected(core.link.address, device, profile)
        result = SessionResult(device.id, quirks=profile.names, poll_after_s=profile.poll_interval_s)
        yield Contact(device.id)
        core.enter(Phase.READING_CLOCK)
        offset = yield from self._clock_offset(device, profile)
        result.clock_offset_s = offset
        if core.has(BPM):
            yield from collect_bp(core, device, offset, result, profile)
        elif vitals.is_scale(core):
            yield from vitals.collect_weight(core, device, offset, result)
        elif vitals.is_oximeter(core):  # before glucose: an oximeter may have RACP too
            yield from vitals.collect_plx(core, device, offset, result)
        elif core.has(RACP):
            yield from collect_glucose(core, device, offset, result, profile)
        else:
            result.notes.append("no blood pressure, glucose, weight or pulse oximeter service")
        if (yield from core.link_up()):
            core.enter(Phase.SETTING_CLOCK)
            result.clock_set = yield from self._maybe_set_clock(device, offset, profile)
        yield Contact(device.id)
        core.enter(Phase.DONE)
        return result

    def _identify(self) -> Flow[wire.DeviceIdentity]:
        """Device Information, read once per address and kept in the outbox file; allow-list check."""
        core = self.core
        address = core.link.address
        command = LoadDevice(address)
        cached = expect((yield command), DeviceLoaded, command).info
        if cached is None or "serial" not in cached:
            info = yield from self._read_device_information(address)
            cached = {"manufacturer": info.manufacturer, "model": info.model, "serial": info.serial,
                      "firmware": info.firmware_revision, "clock_offset_s": None}
            yield SaveDevice(address, cached)
        serial = cached.get("serial")
        allow = core.config.allow
        if allow and address not in allow and (serial is None or serial not in allow):
            raise UnknownDevice(serial or address)
        return wire.DeviceIdentity(id=serial or address, manufacturer=cached.get("manufacturer"),
                                   model=cached.get("model"), serial=serial,
                                   firmware=cached.get("firmware"), address=address)

    def _read_device_information(self, address: str) -> Flow[DeviceInformation]:
        core = self.core
        values: dict[int, bytes] = {}
        for uuid in DIS_CHARACTERISTICS:
            if core.has(uuid):
                data = yield from core.read(uuid)
                if data is not None:
                    values[uuid] = data
        try:
            return DeviceInformation.from_values(values)
        except MalformedMeasurement as exc:
            yield from core.reject(address, exc, core.clock.utc())
            return DeviceInformation()

    def _clock_offset(self, device: wire.DeviceIdentity, profile: QuirkProfile) -> Flow[float | None]:
        """``device clock − gateway clock`` (both local wall clock) through Current Time 0x2A2B,
        or Date Time 0x2A08 for devices whose quirk says so (Roche)."""
        core = self.core
        uuid = profile.clock_characteristic
        if uuid is None or not core.has(uuid):
            return None
        data = yield from core.read(uuid)
        if data is None:
            return None
        gateway_now = core.gateway_local_now()
        try:
            if uuid == CURRENT_TIME:
                current = parse_current_time(data)
                timestamp, fraction = current.timestamp, current.seconds_fraction
            else:
                timestamp, fraction = parse_date_time(data).timestamp, 0.0
        except MalformedMeasurement as exc:
            yield from core.reject(device.id, exc, core.clock.utc())
            return None
        if timestamp is None:
            return None
        offset = round((timestamp - gateway_now).total_seconds() + fraction, 3)
        yield from self._save_offset(device, offset)
        if abs(offset) > core.config.clock_drift_max_s:
            log.warning("%s: device clock off by %.1f s (limit %.0f s)", device.id, offset,
                        core.config.clock_drift_max_s)
        return offset

    def _save_offset(self, device: wire.DeviceIdentity, offset: float) -> Flow[None]:
        key = device.address or device.id
        command = LoadDevice(key)
        info: dict[str, Any] = dict(expect((yield command), DeviceLoaded, command).info or {})
        info["clock_offset_s"] = offset
        yield SaveDevice(key, info)

    def _maybe_set_clock(self, device: wire.DeviceIdentity, offset: float | None,
                         profile: QuirkProfile) -> Flow[bool]:
        core = self.core
        uuid = profile.clock_characteristic
        if offset is None or uuid is None or abs(offset) <= core.config.clock_drift_max_s:
            return False
        if uuid not in core.link.writable:
            log.warning("%s: clock drift %.1f s but 0x%04X is read-only; offsets correct it",
                        device.id, offset, uuid)
            return False
        now = core.gateway_local_now()
        value = encode_current_time(now) if uuid == CURRENT_TIME else encode_date_time(now)
        error = yield from core.write(uuid, value, tolerate=True)
        if error is not None:  # e.g. ATT 0x80 "data field ignored" (eigger/hass-omron #11)
            log.warning("%s: clock write 0x%04X refused: %s", device.id, uuid, error)
            return False
        log.info("%s: device clock set (was off by %.1f s)", device.id, offset)
        return True
