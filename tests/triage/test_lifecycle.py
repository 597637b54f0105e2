"""Every (state, event, role) triple: only the listed ones succeed, the rest raise typed errors."""

from __future__ import annotations

import itertools

import pytest

from triage import lifecycle
from triage.errors import IllegalTransition, MissingPayload, RoleNotAllowed, UnknownEvent, UnknownRole

STATES = ["open", "acknowledged", "escalated", "reviewed", "promoted", "dismissed", "closed"]
EVENTS = [
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
]
ROLES = ["nurse", "clinician", "admin", "system"]
ACTIVE = ["open", "acknowledged", "escalated", "reviewed"]
ALL = STATES

# Written out by hand (not derived from the module): (state, event) -> next state.
EXPECTED_MOVES: dict[tuple[str, str], str] = {
    **{(s, "annotate"): s for s in ALL},
    **{(s, "assign"): s for s in ACTIVE},
    **{(s, "log_time"): s for s in ACTIVE},
    ("promoted", "log_time"): "promoted",  # D0: minutes on a promoted flag count
    ("open", "acknowledge"): "acknowledged",
    ("open", "escalate"): "escalated",
    ("acknowledged", "escalate"): "escalated",
    ("open", "review"): "reviewed",
    ("acknowledged", "review"): "reviewed",
    ("escalated", "review"): "reviewed",
    ("reviewed", "promote"): "promoted",
    **{(s, "dismiss"): "dismissed" for s in ACTIVE},
    **{(s, "close"): "closed" for s in ACTIVE},
    ("open", "auto_clear"): "closed",
    ("acknowledged", "auto_clear"): "closed",
}
EXPECTED_ROLES: dict[str, set[str]] = {
    "nurse": {"acknowledge", "assign", "annotate", "log_time", "escalate", "close"},
    "clinician": {
        "acknowledge",
        "assign",
        "annotate",
        "log_time",
        "escalate",
        "review",
        "promote",
        "dismiss",
        "close",
    },
    "admin": {"assign", "annotate"},
    "system": {"auto_clear", "annotate"},
}


@pytest.mark.parametrize(("state", "event", "role"), list(itertools.product(STATES, EVENTS, ROLES)))
def test_every_triple(state: str, event: str, role: str) -> None:
    if event not in EXPECTED_ROLES[role]:
        with pytest.raises(RoleNotAllowed) as exc:
            lifecycle.fire(state, event, role)
        assert (exc.value.role, exc.value.event) == (role, event)
    elif (state, event) not in EXPECTED_MOVES:
        with pytest.raises(IllegalTransition) as exc2:
            lifecycle.fire(state, event, role)
        assert (exc2.value.state, exc2.value.event) == (state, event)
    else:
        assert lifecycle.fire(state, event, role) == EXPECTED_MOVES[(state, event)]


def test_nurses_never_review_or_promote() -> None:
    for state, event in itertools.product(STATES, ["review", "promote", "dismiss"]):
        with pytest.raises(RoleNotAllowed):
            lifecycle.fire(state, event, "nurse")


def test_only_path_to_promoted_starts_at_reviewed() -> None:
    into = [
        (s, e)
        for s, moves in lifecycle.TRANSITIONS.items()
        for e, n in moves.items()
        if n == "promoted" and s != "promoted"
    ]
    assert into == [("reviewed", "promote")]


def test_unknown_names_are_typed() -> None:
    with pytest.raises(UnknownEvent):
        lifecycle.fire("open", "bill", "clinician")
    with pytest.raises(UnknownRole):
        lifecycle.fire("open", "acknowledge", "billing")


@pytest.mark.parametrize(
    ("event", "disposition", "minutes", "ok"),
    [
        ("close", "acted", None, True),
        ("close", None, None, False),
        ("close", "because", None, False),
        ("dismiss", None, None, True),
        ("dismiss", "artefact", None, True),
        ("log_time", None, 12, True),
        ("log_time", None, 0, False),
        ("log_time", None, None, False),
        ("acknowledge", "acted", None, False),
        ("acknowledge", None, 5, False),
    ],
)
def test_payload(event: str, disposition: str | None, minutes: int | None, ok: bool) -> None:
    if ok:
        lifecycle.check_payload(event, disposition=disposition, minutes=minutes)
    else:
        with pytest.raises(MissingPayload):
            lifecycle.check_payload(event, disposition=disposition, minutes=minutes)


def test_confirmed_crisis_never_auto_clears() -> None:
    with pytest.raises(IllegalTransition):
        lifecycle.guard_auto_clear("open", "confirmed")
    lifecycle.guard_auto_clear("open", "cleared")
