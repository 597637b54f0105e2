"""The ingest error tree: every failure is either transient (retry) or terminal (dead-letter).

    IngestError
     ├── TerminalError (mixin)          the message itself is bad: dead-letter it, never retry
     │    ├── ContractViolation(reason) bytes/topic break docs/wire-format.md
     │    │    └── MessageIdMismatch(message_id, expected, covers) the id is not the recipe
     │    │                             applied to the message's own contents (a forged or
     │    │                             pre-claimed id)
     │    ├── RowRefused(reason, sqlstate) the database refused one row (kept as a dead letter)
     │    ├── BindingRefused(code, ...)  a reading from a gateway the device is not enrolled on at
     │    │                             measured_at (kept as a dead letter, never a patient reading)
     │    └── WorkerFailed(reason)      a worker hit a bug, or workers keep dying: the receiver
     │                                  exits non-zero without acking (the broker resends)
     ├── Implausible(reason)            valid wire shape, impossible value (quarantined, never raised
     │                                  past plausibility; exists for callers that want to raise)
     └── TransientError (mixin)         the world is briefly broken: keep the batch, retry later
          ├── DatabaseUnavailable       PostgreSQL down, restarting, connection lost, deadlock
          ├── BrokerUnavailable         Mosquitto unreachable or refused the connection
          └── WorkerLost(worker, exitcode) a worker process died (its batches are resent)

The commit path chooses what to do by class, never by message text: ``ingest/db.py``'s ``commit_kind``
retries a :class:`DatabaseUnavailable` (with the shared retry helper) and nothing else.
"""

from __future__ import annotations

from gateway.runtime.fatal import Fatal
from gateway.runtime.retry import ErrorKind


class TransientError(Exception):
    """Marker: retrying the same work later can succeed."""


class TerminalError(Exception):
    """Marker: retrying the same input will fail the same way."""


class IngestError(Exception):
    """Base of every error raised by the ingest service."""


class ContractViolation(IngestError, TerminalError):
    """A message broke the wire contract; ``reason`` says precisely how."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MessageIdMismatch(ContractViolation):
    """A reading whose ``message_id`` is not what its own contents hash to (issue 14: a gateway
    must not be able to pre-claim the id of another gateway's reading)."""

    def __init__(self, message_id: str, expected: str, covers: tuple[str, ...]) -> None:
        super().__init__(f"message_id {message_id} does not match its contents ({', '.join(covers)}):"
                         f" expected {expected}")
        self.message_id = message_id
        self.expected = expected
        self.covers = covers

    def __reduce__(self) -> tuple[type[MessageIdMismatch], tuple[str, str, tuple[str, ...]]]:
        return (MessageIdMismatch, (self.message_id, self.expected, self.covers))


class RowRefused(IngestError, TerminalError):
    """PostgreSQL refused one row of a batch (constraint, encoding); the rest of the batch goes on."""

    def __init__(self, reason: str, sqlstate: str | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.sqlstate = sqlstate


class BindingRefused(IngestError, TerminalError):
    """A reading refused by the device <-> gateway binding (issue 14; ``ingest/binding.py``).

    ``code`` is what the sending gateway is told in its ack (``wrong_gateway``, ``not_enrolled``,
    ``duplicate_of_other_gateway``); ``reason`` adds, for the admin's dead-letter view only, which
    gateway the device is enrolled on."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = f"{code}: {reason}"

    def __reduce__(self) -> tuple[type[BindingRefused], tuple[str, str]]:
        return (BindingRefused, (self.code, self.reason.partition(": ")[2]))


class Implausible(IngestError, TerminalError):
    """A value no device or patient can produce; stored as ``quarantined`` with this reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class DatabaseUnavailable(IngestError, TransientError):
    """The database cannot take the batch right now (down, restarting, connection lost, deadlock).

    ``kind`` (``ingest/dberrors.py``) says how long retrying may go on: refused credentials and a
    missing database are retried only for a bounded time, everything else until it works."""

    def __init__(self, reason: str, kind: ErrorKind = ErrorKind.TRANSIENT) -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind


class BrokerUnavailable(IngestError, TransientError):
    """The broker is unreachable or refused our connection."""


class WorkerLost(IngestError, TransientError):
    """A worker process died (kill -9, OOM): its uncommitted batches are resent to a new one."""

    def __init__(self, worker: int, exitcode: int | None) -> None:
        super().__init__(f"worker {worker} died (exit code {exitcode})")
        self.worker = worker
        self.exitcode = exitcode


class WorkerFailed(IngestError, TerminalError, Fatal):
    """A worker raised something that is not bad input nor a database outage (a bug), workers
    keep dying, or the database refused us past the bound: stop without acking rather than risk
    losing messages. The console script prints the reason as one line and exits 3."""

    def __init__(self, reason: str) -> None:
        Fatal.__init__(self, reason)
        self.reason = reason
