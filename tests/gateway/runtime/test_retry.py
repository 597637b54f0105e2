"""Back-off with full jitter and the retry decision, with plain numbers (no clock, no sleep)."""

from __future__ import annotations

import threading

import pytest

from gateway.runtime.retry import (
    Backoff,
    ErrorKind,
    GaveUp,
    RetryPolicy,
    RetryState,
    Stopped,
    retry_call,
)


def test_ceiling_doubles_up_to_the_cap() -> None:
    b = Backoff(base_s=0.5, cap_s=5.0)
    assert [b.ceiling(n) for n in range(6)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    assert b.ceiling(10_000) == 5.0


@pytest.mark.parametrize("r", [0.0, 0.3, 0.999])
def test_full_jitter_is_uniform_below_the_ceiling(r: float) -> None:
    b = Backoff(base_s=1.0, cap_s=30.0)
    assert b.delay(3, lambda: r) == pytest.approx(8.0 * r)


def test_transient_failures_retry_for_ever_by_default() -> None:
    state = RetryState(RetryPolicy(Backoff(1.0, 4.0)), started=0.0)
    delays = [state.after_failure(ErrorKind.TRANSIENT, now=t * 100.0, rand=lambda: 1.0) for t in range(50)]
    assert delays[:4] == [1.0, 2.0, 4.0, 4.0]
    assert all(d == 4.0 for d in delays[3:])


def test_permanent_failures_give_up_at_once() -> None:
    assert RetryState(RetryPolicy(), started=0.0).after_failure(ErrorKind.PERMANENT, now=0.0) is None


def test_authentication_failures_are_bounded_from_the_first_refusal() -> None:
    state = RetryState(RetryPolicy(Backoff(1.0, 10.0), auth_timeout_s=30.0), started=0.0)
    assert state.after_failure(ErrorKind.TRANSIENT, now=0.0, rand=lambda: 1.0) == 1.0
    assert state.after_failure(ErrorKind.AUTHENTICATION, now=100.0, rand=lambda: 1.0) == 2.0
    # never sleeps past the bound
    assert state.after_failure(ErrorKind.AUTHENTICATION, now=125.0, rand=lambda: 1.0) == 4.0
    assert state.after_failure(ErrorKind.AUTHENTICATION, now=128.0, rand=lambda: 1.0) == 2.0
    assert state.after_failure(ErrorKind.AUTHENTICATION, now=130.0) is None
    state.succeeded()
    assert state.after_failure(ErrorKind.AUTHENTICATION, now=500.0, rand=lambda: 1.0) == 1.0


def test_deadline_and_give_up_after_bound_transient_retries() -> None:
    state = RetryState(RetryPolicy(Backoff(1.0, 10.0), give_up_after_s=5.0), started=10.0)
    assert state.after_failure(ErrorKind.TRANSIENT, now=14.5, rand=lambda: 1.0) == 0.5
    assert state.after_failure(ErrorKind.TRANSIENT, now=15.0) is None
    late = RetryState(RetryPolicy(), started=0.0, deadline=3.0)
    assert late.after_failure(ErrorKind.TRANSIENT, now=3.0) is None


class Flaky:
    def __init__(self, errors: list[Exception]) -> None:
        self.errors = errors
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def _kind(exc: BaseException) -> ErrorKind | None:
    if isinstance(exc, ConnectionError):
        return ErrorKind.TRANSIENT
    if isinstance(exc, PermissionError):
        return ErrorKind.AUTHENTICATION
    if isinstance(exc, LookupError):
        return ErrorKind.PERMANENT
    return None


FAST = RetryPolicy(Backoff(0.001, 0.002), auth_timeout_s=0.05)


def test_retry_call_returns_after_transient_failures() -> None:
    fn = Flaky([ConnectionError("down"), ConnectionError("down")])
    seen: list[ErrorKind] = []
    assert retry_call(fn, what="db", classify=_kind, policy=FAST,
                      on_retry=lambda e, k, d: seen.append(k)) == "ok"
    assert fn.calls == 3 and seen == [ErrorKind.TRANSIENT] * 2


def test_retry_call_gives_up_on_refused_credentials_after_the_bound() -> None:
    fn = Flaky([PermissionError("password authentication failed")] * 10_000)
    with pytest.raises(GaveUp) as info:
        retry_call(fn, what="connect to PostgreSQL at db:5432", classify=_kind, policy=FAST)
    assert info.value.kind is ErrorKind.AUTHENTICATION and info.value.exit_code == 3
    assert str(info.value).startswith(
        "connect to PostgreSQL at db:5432: password authentication failed (gave up")
    assert fn.calls > 1


def test_retry_call_permanent_and_unclassified_errors() -> None:
    with pytest.raises(GaveUp, match=r"^db: no such database$"):
        retry_call(Flaky([LookupError("no such database")]), what="db", classify=_kind, policy=FAST)
    with pytest.raises(ValueError, match="bug"):
        retry_call(Flaky([ValueError("bug")]), what="db", classify=_kind, policy=FAST)


def test_a_stop_request_ends_the_wait() -> None:
    stop = threading.Event()
    stop.set()
    with pytest.raises(Stopped):
        retry_call(Flaky([ConnectionError("down")]), what="db", classify=_kind, stop=stop,
                   policy=RetryPolicy(Backoff(60.0, 60.0)))


def test_a_deadline_callable_is_asked_after_each_failure() -> None:
    asked: list[int] = []

    def deadline() -> float | None:
        asked.append(1)
        return None if len(asked) < 3 else 0.0  # a drain deadline that starts on the third failure

    fn = Flaky([ConnectionError("down")] * 10)
    with pytest.raises(GaveUp) as info:
        retry_call(fn, what="commit", classify=_kind, policy=FAST, deadline=deadline)
    assert fn.calls == 3 and info.value.kind is ErrorKind.TRANSIENT
