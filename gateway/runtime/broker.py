"""MQTT v5 reason codes (CONNACK, PUBACK, SUBACK) classified for :mod:`gateway.runtime.retry`.

Pure: plain integers in, an :class:`~gateway.runtime.retry.ErrorKind` out, so the gateway and
ingest (both paho clients) decide the same way and the table is tested without a broker. paho 2.x
reports MQTT 3.1.1 CONNACK return codes as the equivalent v5 reason codes (1 → 0x84 … 5 → 0x87).
"""

from __future__ import annotations

from gateway.runtime.retry import ErrorKind

NAMES: dict[int, str] = {
    0x80: "unspecified error", 0x81: "malformed packet", 0x82: "protocol error",
    0x83: "implementation specific error", 0x84: "unsupported protocol version",
    0x85: "client identifier not valid", 0x86: "bad user name or password", 0x87: "not authorized",
    0x88: "server unavailable", 0x89: "server busy", 0x8A: "banned", 0x8C: "bad authentication method",
    0x90: "topic name invalid", 0x95: "packet too large", 0x97: "quota exceeded",
    0x99: "payload format invalid", 0x9A: "retain not supported", 0x9B: "QoS not supported",
    0x9C: "use another server", 0x9D: "server moved", 0x9F: "connection rate exceeded",
}

_AUTHENTICATION = frozenset({0x86, 0x87, 0x8A, 0x8C})
_PERMANENT = frozenset({0x81, 0x82, 0x84, 0x85, 0x90, 0x95, 0x99, 0x9A, 0x9B})
# A PUBACK that refuses the message itself: sending the same bytes again gets the same answer.
PUBACK_TERMINAL = frozenset({0x90, 0x95, 0x99})
NOT_AUTHORIZED = 0x87


def describe(code: int) -> str:
    return f"{NAMES.get(code, 'reason code')} (0x{code:02X})"


def connack_kind(code: int) -> ErrorKind | None:
    """What a refused connection means; ``None`` for success (< 0x80)."""
    if code < 0x80:
        return None
    if code in _AUTHENTICATION:
        return ErrorKind.AUTHENTICATION
    if code in _PERMANENT:
        return ErrorKind.PERMANENT
    return ErrorKind.TRANSIENT


def puback_kind(code: int) -> ErrorKind | None:
    """What a refused publish means; ``None`` when it was accepted (< 0x80, incl. 0x10 "no
    matching subscribers"). 0x87 is the ACL refusing the *topic*: permanent until an operator
    changes the ACL, so it is logged as such and the message is never counted as delivered."""
    if code < 0x80:
        return None
    if code == NOT_AUTHORIZED or code in PUBACK_TERMINAL:
        return ErrorKind.PERMANENT
    return ErrorKind.TRANSIENT


def suback_refused(codes: list[int]) -> bool:
    """A SUBACK grants QoS 0..2 per filter; 0x80 and up refuse that filter."""
    return any(c >= 0x80 for c in codes)
