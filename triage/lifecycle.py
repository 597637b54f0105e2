"""The flag lifecycle: one transition table, one role table, nothing else decides a transition.

Everything that changes a flag's state lives in this module (the h11 ``_state.py`` idea). The SQL
layer (``triage.flags_store.apply_event``) locks the row, asks :func:`fire` for the next state and
records what it was told. ``promote`` is fired only by ``triage.clinical.promotion`` (helper-5), after the
clinical/licensure gate; the role table alone already keeps nurses away from review and promotion.

    open ──acknowledge──▶ acknowledged ──escalate──▶ escalated
      │  \\                  │                          │
      │   └──────────────review (clinician)─────────────┴──▶ reviewed ──promote──▶ promoted
      ├── close (disposition) / dismiss (clinician) ──▶ closed / dismissed
      └── auto_clear (system: crisis cleared by the re-measurement) ──▶ closed
"""

from __future__ import annotations

from typing import Final

from triage.errors import IllegalTransition, MissingPayload, RoleNotAllowed, UnknownEvent, UnknownRole

OPEN: Final = "open"
ACKNOWLEDGED: Final = "acknowledged"
ESCALATED: Final = "escalated"
REVIEWED: Final = "reviewed"
PROMOTED: Final = "promoted"
DISMISSED: Final = "dismissed"
CLOSED: Final = "closed"

STATES: Final = (OPEN, ACKNOWLEDGED, ESCALATED, REVIEWED, PROMOTED, DISMISSED, CLOSED)
# States covered by the partial unique index flags_one_open_episode (0001_core.sql).
ACTIVE_STATES: Final = (OPEN, ACKNOWLEDGED, ESCALATED, REVIEWED)
TERMINAL_STATES: Final = (PROMOTED, DISMISSED, CLOSED)

EVENTS: Final = (
    "acknowledge",
    "assign",
    "annotate",
    "log_time",
    "escalate",
    "review",
    "promote",
    "dismiss",
    "close",
    "auto_clear",
)
ROLES: Final = ("nurse", "clinician", "admin", "system")

# Nurse dispositions: every closed flag carries one, and rule PPV is computed from them (DOMAIN H7).
DISPOSITIONS: Final = ("acted", "no_action_needed", "artefact", "duplicate")
AUTO_CLEARED: Final = "auto_cleared"  # the disposition auto_clear records

_KEEP = {"annotate", "assign", "log_time"}


def _keeping(states: tuple[str, ...], events: set[str]) -> dict[str, dict[str, str]]:
    return {s: dict.fromkeys(events, s) for s in states}


def _build() -> dict[str, dict[str, str]]:
    table: dict[str, dict[str, str]] = {s: {} for s in STATES}
    for s, moves in _keeping(ACTIVE_STATES, _KEEP).items():
        table[s].update(moves)
    for s in TERMINAL_STATES:  # late documentation is allowed; nothing else moves a finished flag
        table[s]["annotate"] = s
    # D0: minutes spent managing a promoted flag count toward the month they were spent in.
    table[PROMOTED]["log_time"] = PROMOTED
    table[OPEN].update(
        acknowledge=ACKNOWLEDGED,
        escalate=ESCALATED,
        review=REVIEWED,
        dismiss=DISMISSED,
        close=CLOSED,
        auto_clear=CLOSED,
    )
    table[ACKNOWLEDGED].update(
        escalate=ESCALATED, review=REVIEWED, dismiss=DISMISSED, close=CLOSED, auto_clear=CLOSED
    )
    table[ESCALATED].update(review=REVIEWED, dismiss=DISMISSED, close=CLOSED)
    table[REVIEWED].update(promote=PROMOTED, dismiss=DISMISSED, close=CLOSED)
    return table


# {state: {event: next_state}}: the one transition table.
TRANSITIONS: Final[dict[str, dict[str, str]]] = _build()

# {role: events it may fire}: nurses never review, promote or dismiss.
ROLE_EVENTS: Final[dict[str, frozenset[str]]] = {
    "nurse": frozenset({"acknowledge", "assign", "annotate", "log_time", "escalate", "close"}),
    "clinician": frozenset(
        {"acknowledge", "assign", "annotate", "log_time", "escalate", "review", "promote", "dismiss", "close"}
    ),
    "admin": frozenset({"assign", "annotate"}),
    "system": frozenset({"auto_clear", "annotate"}),
}


def fire(state: str, event: str, role: str) -> str:
    """The state after ``event`` fired by ``role`` in ``state``, or a typed refusal.

    The role is checked first: a nurse asking to promote learns that nurses never promote,
    whatever the flag's state.
    """
    if event not in EVENTS:
        raise UnknownEvent(event)
    if role not in ROLE_EVENTS:
        raise UnknownRole(role)
    if event not in ROLE_EVENTS[role]:
        raise RoleNotAllowed(role, event)
    try:
        return TRANSITIONS[state][event]
    except KeyError:
        raise IllegalTransition(state, event) from None


def guard_auto_clear(state: str, confirmation: str | None, symptom_outcome: str | None = None) -> None:
    """A person, not a lower reading, closes a crisis that was confirmed or came with symptoms.

    DOMAIN H8: a confirmed ≥ 180/120 is on the safety floor. C1: symptoms of target-organ damage
    make it an emergency whatever the re-measurement says, so any recorded symptom check keeps
    the flag open for a nurse or clinician to close.
    """
    if confirmation == "confirmed" or symptom_outcome:
        raise IllegalTransition(state, "auto_clear")


def check_payload(event: str, *, disposition: str | None, minutes: int | None) -> None:
    """What an event must carry: a close names its disposition, a time log its minutes."""
    if event == "close" and disposition not in DISPOSITIONS:
        raise MissingPayload(event, "disposition", f"must be one of {', '.join(DISPOSITIONS)}")
    if event == "dismiss" and disposition is not None and disposition not in DISPOSITIONS:
        raise MissingPayload(event, "disposition", f"must be one of {', '.join(DISPOSITIONS)}")
    if event == "log_time" and (minutes is None or not 0 < minutes <= 24 * 60):
        raise MissingPayload(event, "minutes", "must be between 1 and 1440")
    if event not in ("close", "dismiss") and disposition is not None:
        raise MissingPayload(event, "disposition", "is only recorded by close or dismiss")
    if event != "log_time" and minutes is not None:
        raise MissingPayload(event, "minutes", "are only recorded by log_time")


def allowed_events(state: str, role: str) -> list[str]:
    """Events a role may fire now (for the dashboard's buttons)."""
    return [e for e in EVENTS if e in TRANSITIONS.get(state, {}) and e in ROLE_EVENTS.get(role, ())]
