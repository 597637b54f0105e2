"""One retry helper for every service: exponential back-off with full jitter, chosen by error kind.

Each failure is classified by the caller's ``classify`` function (one per kind of server: the
broker's in :mod:`gateway.runtime.broker`, the database's in ``ingest/dberrors.py``) into an
:class:`ErrorKind`:

* ``TRANSIENT``: the server is down, restarting or busy: retry with back-off, by default forever
  (a service must ride out a restart), or until the caller's deadline;
* ``AUTHENTICATION``: the server refuses who we are: retry for a bounded time only
  (``auth_timeout_s``, so a password rotated a moment late still works), then give up;
* ``PERMANENT``: retrying cannot help (a missing database, a malformed URL): give up at once.

Giving up raises :class:`GaveUp`, a :class:`~gateway.runtime.fatal.Fatal`: the console script
prints one line and exits non-zero. The delay is *full jitter* (a uniform draw between 0 and the
exponential ceiling), so a fleet of gateways or ingest workers does not reconnect in lock-step
after a broker or database restart.

:class:`RetryState` is the pure decision (no clock, no sleep, no randomness of its own: ``now``
and ``rand`` are passed in) and is tested with plain numbers; :func:`retry_call` is the one loop
that sleeps, on a ``threading.Event`` so a stop request interrupts the wait.
"""

from __future__ import annotations

import enum
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from gateway.runtime.fatal import EXIT_UNAVAILABLE, Fatal, one_line

T = TypeVar("T")
log = logging.getLogger(__name__)

AUTH_TIMEOUT_S = 30.0  # default bound on retrying refused credentials


class ErrorKind(enum.Enum):
    TRANSIENT = "transient"
    PERMANENT = "permanent"
    AUTHENTICATION = "authentication"


@dataclass(frozen=True)
class Backoff:
    """Exponential ceiling ``min(cap_s, base_s * 2**attempt)`` with full jitter below it."""

    base_s: float = 0.5
    cap_s: float = 30.0

    def ceiling(self, attempt: int) -> float:
        return min(self.cap_s, self.base_s * 2.0 ** min(max(attempt, 0), 60))

    def delay(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based): uniform in [0, ceiling)."""
        return self.ceiling(attempt) * rand()


@dataclass(frozen=True)
class RetryPolicy:
    backoff: Backoff = Backoff()
    auth_timeout_s: float = AUTH_TIMEOUT_S  # refused credentials: give up after this long
    give_up_after_s: float | None = None  # transient failures: None = retry for ever


def startup_policy(auth_timeout_s: float, startup_timeout_s: float) -> RetryPolicy:
    """Reaching a server at start-up: bounded for every kind (a wrong host or port looks like a
    server that is down; after ``startup_timeout_s`` the operator gets one line)."""
    return RetryPolicy(Backoff(0.5, 10.0), auth_timeout_s=auth_timeout_s, give_up_after_s=startup_timeout_s)


class GaveUp(Fatal):
    """Retrying stopped: a permanent error, credentials refused past the bound, or a deadline."""

    exit_code = EXIT_UNAVAILABLE

    def __init__(self, what: str, kind: ErrorKind, error: BaseException | str, *, attempts: int,
                 elapsed_s: float) -> None:
        self.what = what
        self.kind = kind
        self.attempts = attempts
        self.elapsed_s = elapsed_s
        detail = one_line(str(error))
        if kind is ErrorKind.PERMANENT:
            text = f"{what}: {detail}"
        else:
            text = f"{what}: {detail} (gave up after {elapsed_s:.0f} s, {attempts} attempts)"
        super().__init__(text)


class Stopped(Exception):
    """A stop was requested while waiting to retry."""


class RetryState:
    """The decision after each failure: wait this long, or give up (``None``)."""

    def __init__(self, policy: RetryPolicy, started: float, deadline: float | None = None) -> None:
        self.policy = policy
        self.started = started
        self.deadline = deadline
        self.attempts = 0
        self._auth_since: float | None = None

    def after_failure(self, kind: ErrorKind, now: float,
                      rand: Callable[[], float] = random.random) -> float | None:
        self.attempts += 1
        if kind is ErrorKind.PERMANENT:
            return None
        limit = self.deadline
        if kind is ErrorKind.AUTHENTICATION:
            if self._auth_since is None:
                self._auth_since = now
            limit = _earliest(limit, self._auth_since + self.policy.auth_timeout_s)
        elif self.policy.give_up_after_s is not None:
            limit = _earliest(limit, self.started + self.policy.give_up_after_s)
        if limit is not None and now >= limit:
            return None
        delay = self.policy.backoff.delay(self.attempts - 1, rand)
        return delay if limit is None else min(delay, limit - now)

    def succeeded(self) -> None:
        self.attempts = 0
        self._auth_since = None


def _earliest(a: float | None, b: float) -> float:
    return b if a is None else min(a, b)


def retry_call(fn: Callable[[], T], *, what: str, classify: Callable[[BaseException], ErrorKind | None],
               policy: RetryPolicy = RetryPolicy(), stop: threading.Event | None = None,
               deadline: float | Callable[[], float | None] | None = None,
               clock: Callable[[], float] = time.monotonic,
               rand: Callable[[], float] = random.random,
               on_retry: Callable[[BaseException, ErrorKind, float], None] | None = None) -> T:
    """Call ``fn`` until it returns. An exception ``classify`` maps to ``None`` propagates as is;
    otherwise wait and retry as :class:`RetryState` decides, or raise :class:`GaveUp`. A set
    ``stop`` ends the wait with :class:`Stopped`. ``deadline`` is on ``clock``'s scale; a callable
    is asked after each failure (a drain that starts a deadline only once a stop is requested)."""
    state = RetryState(policy, clock())
    stop = stop or threading.Event()
    while True:
        try:
            return fn()
        except Exception as exc:
            kind = classify(exc)
            if kind is None:
                raise
            state.deadline = deadline() if callable(deadline) else deadline
            delay = state.after_failure(kind, clock(), rand)
            if delay is None:
                elapsed = clock() - state.started
                raise GaveUp(what, kind, exc, attempts=state.attempts, elapsed_s=elapsed) from exc
            if on_retry is not None:
                on_retry(exc, kind, delay)
            else:
                log.warning("%s failed (%s: %s); retrying in %.1f s", what, kind.value,
                            one_line(str(exc)), delay)
        if stop.wait(delay):
            raise Stopped(what)
