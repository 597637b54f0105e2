"""Sign-in throttling per account and per source address, with the ``limits`` library.

Each failed sign-in is a hit on a ladder of moving windows (5 per minute, 10 per 10 minutes,
20 per hour, 40 per day for an account; four times that for an address, which many staff may share
behind a NAT). While any rung is full, sign-in for that key is refused without checking the
password (429, "try again in N s"), so the wait grows roughly tenfold per rung: exponential
back-off built from the library's windows, not a home-made counter. A success does not erase
failures (an attacker cannot reset the ladder by knowing one password).

Where the counters live is the ``storage`` given: the app passes
:class:`~dashboards.throttle_store.PostgresThrottleStorage`, so every dashboard process counts the
same hits (docs/security.md); the default ``MemoryStorage`` is for unit tests. Lockouts are
counted in the same storage, so "repeated lockouts" also hold across processes. Pure of HTTP.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Final

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage, MovingWindowSupport, Storage
from limits.strategies import MovingWindowRateLimiter

ACCOUNT_LADDER: Final = ("5/minute", "10/10 minutes", "20/hour", "40/day")
ADDRESS_LADDER: Final = ("20/minute", "40/10 minutes", "80/hour", "160/day")
REPEATED_LOCKOUTS: Final = 3  # lockouts of one account within a day that page the admins
_DAY_S: Final = 86400
_NO_LIMIT: Final = 1_000_000  # lockouts are counted, never refused


@dataclass(frozen=True)
class Lockout:
    """Why sign-in is refused now, and for how long at least."""

    scope: str  # 'account' | 'address'
    key: str
    retry_after_s: int
    window: str


@dataclass
class SignInThrottle:
    """Thread-safe: FastAPI runs sign-in handlers on a thread pool."""

    account_ladder: tuple[str, ...] = ACCOUNT_LADDER
    address_ladder: tuple[str, ...] = ADDRESS_LADDER
    storage: Storage | None = None  # a moving-window storage; None: this process's memory
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        store = self.storage if self.storage is not None else MemoryStorage()
        assert isinstance(store, MovingWindowSupport), "the throttle needs moving windows"
        self._store: MovingWindowSupport = store
        self._limiter = MovingWindowRateLimiter(store)

    def _items(self, scope: str) -> list[RateLimitItem]:
        return [parse(s) for s in (self.account_ladder if scope == "account" else self.address_ladder)]

    def locked(self, username: str, address: str | None) -> Lockout | None:
        """The first full rung for this account or address, or None when a try is allowed."""
        for scope, key in (("account", username.lower()), ("address", address or "?")):
            for item in self._items(scope):
                if not self._limiter.test(item, scope, key):
                    reset = self._limiter.get_window_stats(item, scope, key).reset_time
                    return Lockout(scope, key, max(1, int(reset - time.time()) + 1), str(item))
        return None

    def failed(self, username: str, address: str | None) -> Lockout | None:
        """Count a failure; returns the lockout it starts (None when the ladder still has room)."""
        with self._lock:
            for item in self._items("account"):
                self._limiter.hit(item, "account", username.lower())
            for item in self._items("address"):
                self._limiter.hit(item, "address", address or "?")
            lock = self.locked(username, address)
            if lock is not None and lock.scope == "account":
                self._store.acquire_entry(f"lockouts/{lock.key}", _NO_LIMIT, _DAY_S)
            return lock

    def lockouts_today(self, username: str) -> int:
        return self._store.get_moving_window(f"lockouts/{username.lower()}", _NO_LIMIT, _DAY_S)[1]
