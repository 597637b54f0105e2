"""End-to-end confirmations for the fleet's virtual gateways, as a real gateway keeps them.

A PUBACK only says the broker has a message. A broker restart forgets ``$share`` subscriptions
(Mosquitto 2.0.11) and its in-memory queue, so a message it PUBACKed may never reach ingest. A
real gateway therefore keeps each reading until ingest's ``rpmflow.ack.v1`` names it, and sends
it again after a deadline (``gateway/publisher.py``). :class:`Confirmations` is that bookkeeping
for a virtual gateway: thread-safe (paho's thread confirms, the fleet's thread sends and expires).
"""

from __future__ import annotations

import logging
import threading
import time

from gateway.acks import parse_ack
from gateway.errors import MalformedAck

log = logging.getLogger(__name__)


class Confirmations:
    """Message id → (payload, deadline) of every reading sent and not yet confirmed by ingest."""

    def __init__(self, gateway_id: str, timeout_s: float) -> None:
        self.gateway_id = gateway_id
        self.timeout_s = timeout_s
        self._lock = threading.Condition()
        self._open: dict[str, tuple[bytes, float]] = {}
        self.confirmed = 0
        self.resent = 0
        self.malformed = 0

    def sent(self, message_id: str, payload: bytes, now: float | None = None) -> None:
        with self._lock:
            self._open[message_id] = (payload, (now or time.monotonic()) + self.timeout_s)

    def on_ack(self, payload: bytes) -> None:
        """An ack arrived on our acks topic: forget what it names (an odd ack is logged, ignored)."""
        try:
            ids = parse_ack(payload, self.gateway_id).done  # stored or refused: both final
        except MalformedAck as exc:
            with self._lock:
                self.malformed += 1
            log.warning("gateway %s: ignoring a malformed ack: %s", self.gateway_id, exc)
            return
        with self._lock:
            for mid in ids:
                if self._open.pop(mid, None) is not None:
                    self.confirmed += 1
            if not self._open:
                self._lock.notify_all()

    def expired(self, now: float | None = None) -> list[tuple[str, bytes]]:
        """The unconfirmed readings whose deadline passed, each given a new deadline (to resend)."""
        t = now or time.monotonic()
        out: list[tuple[str, bytes]] = []
        with self._lock:
            for mid, (payload, deadline) in self._open.items():
                if deadline <= t:
                    out.append((mid, payload))
            for mid, payload in out:
                self._open[mid] = (payload, t + self.timeout_s)
            self.resent += len(out)
        return out

    @property
    def open(self) -> int:
        with self._lock:
            return len(self._open)

    def wait_empty(self, timeout: float) -> bool:
        with self._lock:
            return self._lock.wait_for(lambda: not self._open, timeout)
