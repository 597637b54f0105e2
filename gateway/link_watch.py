"""The broker connection's trouble, said once per reason and bounded where waiting cannot help.

Owned by the publisher's pump thread (no locks). Reason codes are classified by
:mod:`gateway.runtime.broker`: a broker refusing our credentials (or the connection for good) is
retried for ``auth_timeout_s`` and then :meth:`LinkWatch.gave_up` returns the one-line
:class:`~gateway.runtime.retry.GaveUp` that stops the service (exit 3); a broker that is busy or
down is retried for ever. A connection that fails before any CONNACK (refused, unreachable, TLS)
is diagnosed (:mod:`gateway.runtime.reach`) because paho retries it silently.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from gateway.errors import BrokerUnavailable
from gateway.runtime import broker
from gateway.runtime.reach import diagnose
from gateway.runtime.retry import ErrorKind, GaveUp

Diagnose = Callable[..., str]


class LinkWatch:
    def __init__(self, host: str, port: int, gateway_id: str, *, tls: bool, ca_file: Path | None,
                 auth_timeout_s: float, diagnose_fn: Diagnose = diagnose,
                 logger: str = "gateway.publisher") -> None:
        self._log = logging.getLogger(logger)
        self.host = host
        self.port = port
        self.gateway_id = gateway_id
        self.tls = tls
        self.ca_file = ca_file
        self.auth_timeout_s = auth_timeout_s
        self.last_error: str | None = None
        self._diagnose = diagnose_fn
        self._refused: tuple[float, int, int] | None = None  # (since, last reason code, attempts)
        self._said: str | None = None

    def connected(self) -> None:
        self._refused = None
        self._said = None

    def refused(self, code: int, now: float) -> None:
        """A CONNACK with reason ``code`` ≥ 0x80."""
        kind = broker.connack_kind(code) or ErrorKind.TRANSIENT
        since, _, attempts = self._refused or (now, code, 0)
        self._refused = (since, code, attempts + 1)
        err = BrokerUnavailable(f"broker {self.host}:{self.port} refused {self.gateway_id}: "
                                f"{broker.describe(code)}")
        self.last_error = str(err)
        bound = f"; exiting after {self.auth_timeout_s:g} s" if kind is not ErrorKind.TRANSIENT else ""
        self._say(f"{err} ({kind.value}{bound})")

    def gave_up(self, now: float) -> GaveUp | None:
        """The error that ends the service, once credentials were refused for the whole bound."""
        if self._refused is None:
            return None
        since, code, attempts = self._refused
        kind = broker.connack_kind(code) or ErrorKind.TRANSIENT
        if kind is ErrorKind.TRANSIENT or now - since < self.auth_timeout_s:
            return None
        return GaveUp(f"broker {self.host}:{self.port} refused {self.gateway_id}", kind,
                      broker.describe(code), attempts=attempts, elapsed_s=now - since)

    def unreachable(self) -> None:
        """paho could not connect at all: find out why."""
        reason = self._diagnose(self.host, self.port, tls=self.tls, ca_file=self.ca_file)
        self.last_error = f"cannot connect to the broker: {reason}"
        tls = " (TLS)" if self.tls else ""
        self._say(f"cannot connect to broker {self.host}:{self.port}{tls}: {reason}; retrying")

    def _say(self, line: str) -> None:
        if line != self._said:
            self._said = line
            self._log.error("%s", line)
