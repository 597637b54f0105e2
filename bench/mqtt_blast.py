"""A lean MQTT 5 QoS 1 publisher for the benchmarks' load: test equipment, not product code.

Why: on this 2-core machine the bench's publishers share the CPU with the system they measure.
``run_fleet`` (one paho client and network thread per gateway) costs ~270 µs of CPU a message
(a wake-up byte per publish, a ``select`` and three ``recv`` per PUBACK, per-message objects), so
offering 5,000 msg/s took ~1.35 of the 2 cores and the measured p99 was mostly ingest starved by
its load generator. Here one thread per process drives plain sockets: every ~1 ms tick it builds
what is due, sends it with one ``send`` per gateway socket, and parses the PUBACKs that arrived
in bulk. The messages are exactly ``run_fleet``'s for the same ``FleetConfig`` (its schedule and
builders, each message stamped when the pacing lets it go); each gateway connects with its own
account (the broker's ACL binds it to its own topic) and keeps at most the smaller of
``config.window`` and the broker's Receive Maximum un-acked. Written from the MQTT 5.0 spec.
"""

from __future__ import annotations

import socket
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from gateway.contract import readings_topic
from simulators.fleet import BrokerAddress, Build, FleetConfig, FleetReport, _schedule, make_devices
from simulators.fleet_messages import build_reading

DEFAULT_RECEIVE_MAXIMUM = 65_535  # MQTT 5 §3.2.2.3.3: when the CONNACK does not say
TICK_S = 0.001
AHEAD = 2_000  # rate 0 (as fast as possible): messages built ahead of the windows
DISCONNECT = b"\xe0\x00"  # normal disconnection, no properties
_MAX_VARINT = 268_435_455
_REASONS = {0x80: "unspecified error", 0x84: "unsupported protocol version", 0x85: "client id not valid",
            0x86: "bad user name or password", 0x87: "not authorized", 0x88: "server unavailable",
            0x8A: "banned", 0x90: "topic name invalid", 0x95: "packet too large", 0x97: "quota exceeded"}


class ProtocolError(RuntimeError):
    """The broker sent something this publisher does not expect (or closed the connection)."""


class ConnectRefused(ProtocolError):
    """The broker's CONNACK refused a gateway (reason code >= 0x80)."""


# -- encoders and decoders (pure) ---------------------------------------------------------------------


def varint(n: int) -> bytes:
    """A Variable Byte Integer (§1.5.5): 7 bits a byte, low first, high bit = more follows."""
    if not 0 <= n <= _MAX_VARINT:
        raise ValueError(f"variable byte integer out of range: {n}")
    out = bytearray()
    while True:
        n, low = divmod(n, 128)
        if not n:
            out.append(low)
            return bytes(out)
        out.append(low | 0x80)


def decode_varint(buf: bytes | bytearray, pos: int) -> tuple[int, int] | None:
    """(value, position after it), or None when ``buf`` ends inside it."""
    value = 0
    for i in range(4):
        if pos + i >= len(buf):
            return None
        byte = buf[pos + i]
        value |= (byte & 0x7F) << (7 * i)
        if byte < 0x80:
            return value, pos + i + 1
    raise ProtocolError("malformed variable byte integer (more than 4 bytes)")


def _field(data: bytes) -> bytes:
    """UTF-8 string / binary data: a two-byte length, then the bytes."""
    return len(data).to_bytes(2, "big") + data


def connect_packet(client_id: str, username: str, password: str, keepalive: int = 60) -> bytes:
    """CONNECT, MQTT 5, clean start, user name and password, no properties, no will."""
    variable = _field(b"MQTT") + bytes([5, 0xC2]) + keepalive.to_bytes(2, "big") + varint(0)
    body = variable + _field(client_id.encode()) + _field(username.encode()) + _field(password.encode())
    return b"\x10" + varint(len(body)) + body


def publish_packet(topic: str, packet_id: int, payload: bytes) -> bytes:
    """PUBLISH at QoS 1 (not DUP, not retained), no properties."""
    head = _field(topic.encode()) + packet_id.to_bytes(2, "big") + b"\x00"
    return b"\x32" + varint(len(head) + len(payload)) + head + payload


_ONE, _TWO, _FOUR = {0x01, 0x17, 0x19, 0x24, 0x25, 0x28, 0x29, 0x2A}, {0x13, 0x21, 0x22, 0x23}, {
    0x02, 0x11, 0x18, 0x27}
_DATA = {0x03, 0x08, 0x09, 0x12, 0x15, 0x16, 0x1A, 0x1C, 0x1F}


def parse_properties(buf: bytes, pos: int) -> tuple[dict[int, int | bytes], int]:
    """A property list (§2.2.2) → ({identifier: value}, position after it); user properties dropped."""
    decoded = decode_varint(buf, pos)
    if decoded is None:
        raise ProtocolError("properties cut short")
    length, pos = decoded
    end = pos + length
    props: dict[int, int | bytes] = {}
    while pos < end:
        ident, pos = buf[pos], pos + 1
        if ident in _ONE or ident in _TWO or ident in _FOUR:
            size = 1 if ident in _ONE else 2 if ident in _TWO else 4
            props[ident], pos = int.from_bytes(buf[pos:pos + size], "big"), pos + size
        elif ident in _DATA:
            size = int.from_bytes(buf[pos:pos + 2], "big")
            props[ident], pos = buf[pos + 2:pos + 2 + size], pos + 2 + size
        elif ident == 0x26:  # user property: a string pair
            for _ in range(2):
                pos += 2 + int.from_bytes(buf[pos:pos + 2], "big")
        elif ident == 0x0B:
            sub = decode_varint(buf, pos)
            if sub is None:
                raise ProtocolError("properties cut short")
            props[ident], pos = sub
        else:
            raise ProtocolError(f"unknown property 0x{ident:02x}")
    if pos != end:
        raise ProtocolError("properties overrun their length")
    return props, end


@dataclass(frozen=True)
class Connack:
    reason: int
    receive_maximum: int = DEFAULT_RECEIVE_MAXIMUM


def parse_connack(body: bytes) -> Connack:
    """The CONNACK's variable header (after the fixed header): flags, reason code, properties."""
    if len(body) < 2:
        raise ProtocolError("CONNACK too short")
    if len(body) == 2:
        return Connack(body[1])
    props, _ = parse_properties(body, 2)
    receive_max = props.get(0x21, DEFAULT_RECEIVE_MAXIMUM)
    assert isinstance(receive_max, int)
    return Connack(body[1], receive_max)


# -- one gateway's connection -------------------------------------------------------------------------


def _recv_exactly(sock: socket.socket, n: int, who: str) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ProtocolError(f"broker closed gateway {who}'s connection before its CONNACK")
        data += chunk
    return data


def _read_connack(sock: socket.socket, who: str) -> Connack:
    head = _recv_exactly(sock, 1, who)
    if head[0] != 0x20:
        raise ProtocolError(f"gateway {who}: expected CONNACK, got packet type {head[0] >> 4}")
    length_bytes = b""
    while (decoded := decode_varint(length_bytes, 0)) is None:
        length_bytes += _recv_exactly(sock, 1, who)
    connack = parse_connack(_recv_exactly(sock, decoded[0], who))
    if connack.reason >= 0x80:
        name = _REASONS.get(connack.reason, "refused")
        raise ConnectRefused(f"broker refused gateway {who}: reason 0x{connack.reason:02x} ({name})")
    return connack


class Link:
    """One gateway's socket: its in-flight packet ids, the built messages waiting for window room,
    the bytes not sent yet, and the bytes received but not parsed yet."""

    def __init__(self, gateway_id: str, password: str, address: BrokerAddress, window: int,
                 timeout: float, client_id: str) -> None:
        self.gateway_id, self.topic = gateway_id, readings_topic(gateway_id)
        self.sock = socket.create_connection((address.host, address.port), timeout)
        try:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.sock.sendall(connect_packet(client_id, gateway_id, password))
            self.window = min(window, _read_connack(self.sock, gateway_id).receive_maximum)
        except BaseException:
            self.sock.close()
            raise
        self.sock.setblocking(False)
        self.inflight: set[int] = set()
        self.waiting: deque[bytes] = deque()
        self.out, self.inbuf = bytearray(), bytearray()
        self.next_id, self.acked, self.refused = 1, 0, 0

    @property
    def idle(self) -> bool:
        return not (self.inflight or self.waiting or self.out)

    def _take_id(self) -> int:
        while self.next_id in self.inflight:  # skip ids still in flight
            self.next_id = self.next_id % 65_535 + 1
        pid, self.next_id = self.next_id, self.next_id % 65_535 + 1
        self.inflight.add(pid)
        return pid

    def flush(self) -> None:
        """Everything the window allows, in one ``send`` (what the socket does not take waits)."""
        room = min(self.window - len(self.inflight), len(self.waiting))
        if room > 0:
            self.out += b"".join(publish_packet(self.topic, self._take_id(), self.waiting.popleft())
                                 for _ in range(room))
        if self.out:
            try:
                sent = self.sock.send(self.out)
            except BlockingIOError:
                return
            del self.out[:sent]

    def read(self) -> None:
        """Whatever has arrived (non-blocking), parsed; PUBACKs free their ids."""
        while True:
            try:
                chunk = self.sock.recv(65_536)
            except BlockingIOError:
                break
            if not chunk:
                raise ProtocolError(f"broker closed gateway {self.gateway_id}'s connection")
            self.inbuf += chunk
            if len(chunk) < 65_536:
                break
        self._parse()

    def _parse(self) -> None:
        buf, pos = self.inbuf, 0
        while pos + 2 <= len(buf):
            decoded = decode_varint(buf, pos + 1)
            if decoded is None or decoded[1] + decoded[0] > len(buf):
                break
            length, start = decoded
            kind, pos = buf[pos], start + length
            if kind == 0xE0:
                reason = buf[start] if length else 0
                raise ProtocolError(f"broker disconnected gateway {self.gateway_id}: reason 0x{reason:02x}")
            if kind != 0x40 or length < 2:
                raise ProtocolError(f"gateway {self.gateway_id}: unexpected packet 0x{kind:02x}")
            pid = int.from_bytes(buf[start:start + 2], "big")
            if pid not in self.inflight:
                raise ProtocolError(f"gateway {self.gateway_id}: PUBACK for packet id {pid} not in flight")
            self.inflight.discard(pid)
            if length >= 3 and buf[start + 2] >= 0x80:
                self.refused += 1
            else:
                self.acked += 1
        del buf[:pos]

    def close(self, clean: bool) -> None:
        try:
            if clean:
                self.sock.setblocking(True)
                self.sock.sendall(DISCONNECT)
        except OSError:
            pass
        finally:
            self.sock.close()


# -- the publisher ------------------------------------------------------------------------------------


def blast(broker_url: str, credentials: Mapping[str, str], config: FleetConfig, *,
          connect_timeout: float = 30.0, ack_timeout: float = 120.0,
          stop: threading.Event | None = None, start_at: float | None = None) -> FleetReport:
    """Publish what ``run_fleet`` would for ``config``; returns once all are acked (or
    ``ack_timeout`` passes after the last was built), reported as ``run_fleet`` does: the caller
    checks ``acked``.

    ``start_at`` (epoch seconds; needs a rate and a count): every message is built before the
    run, stamped with the time it is due (``start_at + k / rate``), and sent once that time comes.
    The latency measure's load then costs the cores only its sending, and a message that goes out
    late keeps its due time as its stamp, so the publisher's own lag counts against what is
    measured, never for it (no coordinated omission); ``FleetReport.late_s`` says how late the
    latest one was."""
    if config.confirm:
        raise ValueError("confirm mode subscribes to ingest's acks: use simulators.fleet.run_fleet")
    if start_at is not None and (config.rate <= 0 or config.count is None or config.backfill_days):
        raise ValueError("start_at needs a rate and a count (live readings)")
    address, ids = BrokerAddress.parse(broker_url), config.gateway_ids()
    missing = [g for g in ids if g not in credentials]
    if missing:
        raise ValueError(f"no credentials for {len(missing)} gateway(s), e.g. {missing[0]}")
    links: dict[str, Link] = {}
    clean = False
    try:
        for g in ids:
            links[g] = Link(g, credentials[g], address, config.window, connect_timeout,
                            f"{g}-blast-{time.time_ns() % 16**6:06x}")
        if start_at is None:
            report = _run(links, config, stop or threading.Event(), ack_timeout)
        else:
            report = _run_scheduled(links, config, _prebuilt(links, config, start_at), ack_timeout)
        clean = True
    finally:
        for link in links.values():
            link.close(clean)
    report.acked = sum(k.acked for k in links.values())
    report.refused = sum(k.refused for k in links.values())
    return report


def _exchange(links: dict[str, Link], now: float, ack_deadline: float | None) -> bool:
    """Read every socket's PUBACKs and send what its window allows; True once all is sent and
    acked after the last message (or the ack deadline has passed)."""
    for link in links.values():
        link.read()
        link.flush()
    return ack_deadline is not None and (all(k.idle for k in links.values()) or now > ack_deadline)


def _run(links: dict[str, Link], config: FleetConfig, stop: threading.Event,
         ack_timeout: float) -> FleetReport:
    """The single-threaded loop: every tick, build what is due, send, read the PUBACKs."""
    report = FleetReport(gateways=len(links), target_rate=config.rate)
    schedule = _schedule(config, make_devices(config, list(links)), stop)
    t0 = time.monotonic()
    end = t0 + config.duration_s if config.duration_s else None
    ack_deadline: float | None = None
    while True:
        now = time.monotonic()
        if ack_deadline is None:
            if config.rate > 0:
                due = int(config.rate * (now - t0)) + 1 - report.published
            else:
                due = AHEAD - sum(len(k.waiting) for k in links.values())
            if not _build(links, schedule, due, report, config.keep_ids) or (end is not None and now >= end):
                ack_deadline = now + ack_timeout
        if _exchange(links, now, ack_deadline):
            break
        left = TICK_S - (time.monotonic() - now)
        if left > 0:
            time.sleep(left)
    report.elapsed_s = time.monotonic() - t0
    return report


def _build(links: dict[str, Link], schedule: Iterator[tuple[str, Build]], due: int, report: FleetReport,
           keep_ids: bool) -> bool:
    """Build (and so stamp) up to ``due`` messages onto their gateways; False once the schedule ends."""
    for _ in range(due):
        item = next(schedule, None)
        if item is None:
            return False
        gw, build = item
        mid, payload = build()
        links[gw].waiting.append(payload)
        report.published += 1
        if keep_ids:
            report.message_ids.append(mid)
    return True


Prebuilt = list[tuple[float, str, str, bytes]]  # (due on the monotonic clock, gateway, message id, payload)


def _prebuilt(links: dict[str, Link], config: FleetConfig, start_at: float) -> Prebuilt:
    """Every message of the run, in ``_schedule``'s order, stamped with its due time: (due on this
    process's monotonic clock, gateway, message id, payload)."""
    assert config.count is not None
    devices = make_devices(config, list(links))
    offset = time.monotonic() - time.time()
    out = []
    for k in range(config.count):
        gw, dev = devices[k % len(devices)]
        due = start_at + k / config.rate
        stamp = datetime.fromtimestamp(due, UTC)
        mid, payload = build_reading(gw, dev, dev.next_time(stamp), stamp)
        out.append((due + offset, gw, mid, payload))
    return out


def _run_scheduled(links: dict[str, Link], config: FleetConfig, messages: Prebuilt,
                   ack_timeout: float) -> FleetReport:
    """Send each pre-built message once its due time has come; every tick, read the PUBACKs."""
    report = FleetReport(gateways=len(links), target_rate=config.rate)
    t0 = messages[0][0] if messages else time.monotonic()
    sent = 0
    ack_deadline: float | None = None
    while True:
        now = time.monotonic()
        while sent < len(messages) and messages[sent][0] <= now:
            due, gw, mid, payload = messages[sent]
            links[gw].waiting.append(payload)
            report.late_s = max(report.late_s, now - due)
            report.published += 1
            if config.keep_ids:
                report.message_ids.append(mid)
            sent += 1
        if ack_deadline is None and sent == len(messages):
            ack_deadline = now + ack_timeout
        if _exchange(links, now, ack_deadline):
            break
        wake = messages[sent][0] if sent < len(messages) else now + TICK_S
        left = min(TICK_S, wake - time.monotonic())
        if left > 0:
            time.sleep(left)
    report.elapsed_s = time.monotonic() - t0
    return report
