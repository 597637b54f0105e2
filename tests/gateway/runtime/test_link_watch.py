"""Broker connection trouble: once per reason, bounded for credentials (plain values, no broker),
and the stdlib diagnosis of a TLS handshake against a real Mosquitto whose certificate names
another host."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.link_watch import LinkWatch
from gateway.runtime.reach import diagnose, tls_context
from gateway.runtime.retry import ErrorKind
from simulators.embedded_mosquitto import EmbeddedMosquitto, make_local_ca
from simulators.server_host import free_port


def _watch(reasons: list[str] | None = None) -> LinkWatch:
    answers = iter(reasons or [])
    return LinkWatch("h", 1883, "gateway gw-1", tls=False, ca_file=None, auth_timeout_s=30.0,
                     diagnose_fn=lambda *a, **k: next(answers))


def test_refused_credentials_give_up_after_the_bound(caplog: pytest.LogCaptureFixture) -> None:
    w = _watch()
    caplog.set_level(logging.ERROR)
    for t in (100.0, 101.0, 110.0, 129.0):
        w.refused(0x86, t)
        assert w.gave_up(t) is None
    w.refused(0x86, 130.0)
    fatal = w.gave_up(130.0)
    assert fatal is not None and fatal.kind is ErrorKind.AUTHENTICATION and fatal.exit_code == 3
    assert str(fatal) == ("broker h:1883 refused gateway gw-1: bad user name or password (0x86) "
                          "(gave up after 30 s, 5 attempts)")
    assert len(caplog.records) == 1  # said once, not at every retry


def test_a_busy_broker_is_retried_for_ever_and_a_success_resets() -> None:
    w = _watch()
    w.refused(0x89, 0.0)
    assert w.gave_up(10_000.0) is None
    w.refused(0x87, 10_000.0)
    w.connected()
    assert w.gave_up(1e9) is None


def test_unreachable_is_diagnosed_and_said_once_per_reason(caplog: pytest.LogCaptureFixture) -> None:
    w = _watch(["connection refused", "connection refused", "TLS certificate not accepted: x"])
    caplog.set_level(logging.ERROR)
    for _ in range(3):
        w.unreachable()
    assert [r.getMessage() for r in caplog.records] == [
        "cannot connect to broker h:1883: connection refused; retrying",
        "cannot connect to broker h:1883: TLS certificate not accepted: x; retrying",
    ]
    assert w.last_error == "cannot connect to the broker: TLS certificate not accepted: x"


@pytest.fixture
def tls_broker_for_another_host() -> Iterator[EmbeddedMosquitto]:
    b = EmbeddedMosquitto.create(tls=True)
    make_local_ca(b.state_dir / "tls", "192.0.2.1")  # the certificate names a host we do not dial
    b.start()
    try:
        yield b
    finally:
        b.destroy()


def test_diagnose_tls_against_a_real_broker(tls_broker_for_another_host: EmbeddedMosquitto) -> None:
    b = tls_broker_for_another_host
    assert b.tls_port is not None
    wrong_host = diagnose("127.0.0.1", b.tls_port, tls=True, ca_file=b.ca_file)
    assert wrong_host.startswith("TLS certificate not accepted") and "127.0.0.1" in wrong_host
    unknown_ca = diagnose("127.0.0.1", b.tls_port, tls=True, ca_file=None)
    assert unknown_ca.startswith("TLS certificate not accepted")
    right_host = diagnose("localhost", b.tls_port, tls=True, ca_file=b.ca_file)
    assert right_host.startswith("TLS handshake succeeded")
    assert diagnose("127.0.0.1", free_port(), tls=False).startswith("connection refused")
    assert diagnose("no-such-host.invalid", 1883, tls=False).startswith("host name 'no-such-host.invalid'")


def test_a_missing_ca_file_fails_at_start_up(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        tls_context(tmp_path / "missing.pem")


