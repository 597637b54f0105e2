"""Typed errors of the triage component.

    TriageError
    ├── TransientTriageError          (retry: database restarting, lock busy)
    │   └── DatabaseUnavailable(detail)
    └── TerminalTriageError           (refuse: the request itself is wrong)
        ├── LifecycleError
        │   ├── IllegalTransition(state, event)
        │   ├── RoleNotAllowed(role, event)
        │   ├── UnknownEvent(event) / UnknownRole(role)
        │   └── MissingPayload(event, field, reason)
        ├── FlagNotFound(flag_id)
        ├── UnsafeOverride(key, value, unit, reason)
    (settings: gateway.runtime.settings.SettingError, also named InvalidSetting here)

Callers choose by class (``isinstance(exc, Transient)``), never by message text.
"""

from __future__ import annotations

from gateway.runtime.retry import ErrorKind
from gateway.runtime.settings import SettingError


class Transient(Exception):
    """Marker: the same call may succeed later."""


class Terminal(Exception):
    """Marker: retrying the same call cannot succeed."""


class TriageError(Exception):
    pass


class TransientTriageError(TriageError, Transient):
    pass


class TerminalTriageError(TriageError, Terminal):
    pass


class DatabaseUnavailable(TransientTriageError):
    """``kind`` (ingest/dberrors.py) tells refused credentials apart from an outage."""

    def __init__(self, detail: str, kind: ErrorKind = ErrorKind.TRANSIENT) -> None:
        super().__init__(f"database unavailable: {detail}")
        self.detail = detail
        self.kind = kind


class LifecycleError(TerminalTriageError):
    pass


class IllegalTransition(LifecycleError):
    def __init__(self, state: str, event: str) -> None:
        super().__init__(f"event {event!r} is not allowed in state {state!r}")
        self.state = state
        self.event = event


class RoleNotAllowed(LifecycleError):
    def __init__(self, role: str, event: str) -> None:
        super().__init__(f"role {role!r} may not fire {event!r}")
        self.role = role
        self.event = event


class UnknownEvent(LifecycleError):
    def __init__(self, event: str) -> None:
        super().__init__(f"unknown flag event {event!r}")
        self.event = event


class UnknownRole(LifecycleError):
    def __init__(self, role: str) -> None:
        super().__init__(f"unknown role {role!r}")
        self.role = role


class MissingPayload(LifecycleError):
    def __init__(self, event: str, field: str, reason: str) -> None:
        super().__init__(f"{event}: {field} {reason}")
        self.event = event
        self.field = field
        self.reason = reason


class FlagNotFound(TerminalTriageError):
    def __init__(self, flag_id: int) -> None:
        super().__init__(f"no flag {flag_id}")
        self.flag_id = flag_id


class UnsafeOverride(TerminalTriageError):
    def __init__(self, key: str, value: float, unit: str, reason: str) -> None:
        super().__init__(f"override {key}={value} {unit} refused: {reason}")
        self.key = key
        self.value = value
        self.unit = unit
        self.reason = reason


# Settings errors are the shared runtime's (one style for every service; gateway/runtime/settings.py).
InvalidSetting = SettingError
