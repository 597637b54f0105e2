"""MQTT v5 reason codes → error kinds (literal codes from the MQTT 5 specification, 3.2.2.2)."""

from __future__ import annotations

import pytest

from gateway.runtime.broker import connack_kind, describe, puback_kind, suback_refused
from gateway.runtime.retry import ErrorKind

T, P, A = ErrorKind.TRANSIENT, ErrorKind.PERMANENT, ErrorKind.AUTHENTICATION


@pytest.mark.parametrize(("code", "kind"), [
    (0x00, None), (0x80, T), (0x81, P), (0x82, P), (0x83, T), (0x84, P), (0x85, P), (0x86, A), (0x87, A),
    (0x88, T), (0x89, T), (0x8A, A), (0x8C, A), (0x95, P), (0x97, T), (0x9C, T), (0x9F, T),
])
def test_connack(code: int, kind: ErrorKind | None) -> None:
    assert connack_kind(code) is kind


@pytest.mark.parametrize(("code", "kind"), [
    (0x00, None), (0x10, None), (0x80, T), (0x83, T), (0x87, P), (0x90, P), (0x95, P), (0x97, T), (0x99, P),
])
def test_puback(code: int, kind: ErrorKind | None) -> None:
    assert puback_kind(code) is kind


def test_suback_and_names() -> None:
    assert not suback_refused([0, 1, 2])
    assert suback_refused([1, 0x87])
    assert describe(0x87) == "not authorized (0x87)"
    assert describe(0xFE) == "reason code (0xFE)"
