"""One-line "what happened, what is next" messages after an action (post → redirect → page).

The redirect carries only a short code (``?done=acknowledge``); the page turns it into words from
this fixed table, so nothing a user typed is ever echoed back and an unknown code shows nothing.
Pure.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import urlsplit, urlunsplit

from triage.clinical.crisis import OUTCOME_LABELS

PARAM: Final = "done"

MESSAGES: Final[dict[str, str]] = {
    "acknowledge": "Flag acknowledged. Next: contact the patient or escalate to the clinician.",
    "assign": "The flag is yours now. Next: work it from its page.",
    "escalate": "Escalated to the clinician. Next: the clinician reviews it.",
    "annotate": "Note added to the flag's history.",
    "log_time": "Minutes logged; they count toward the month once the flag is promoted.",
    "close": "Flag closed with its disposition. Nothing more to do on it.",
    "symptoms": "Symptom check recorded.",
    "contact": "Contact with the patient recorded.",
    "review": "Review recorded. Next: promote it to a billable event if the month allows.",
    "promote": "Promoted to a billable event. Nothing more to do on it.",
    "preferences": "Display settings saved.",
    **{o: f"Recorded: {label.lower()}." for o, label in OUTCOME_LABELS.items()},
}


def message(code: str | None, next_step: str | None = None) -> str | None:
    """The words for ``code``, with the page's own next step when it knows better; None when unknown."""
    text = MESSAGES.get(code or "")
    if text is None:
        return None
    if next_step:
        text = f"{text.split(' Next:')[0]} Next: {next_step}"
    return text


def with_code(path: str, code: str) -> str:
    """``path`` (a local path, maybe with a query and fragment) with ``done=code`` added."""
    parts = urlsplit(path)
    kept = "&".join(p for p in parts.query.split("&") if p and not p.startswith(f"{PARAM}="))
    query = f"{kept}&{PARAM}={code}" if kept else f"{PARAM}={code}"
    return urlunsplit(("", "", parts.path, query, parts.fragment))
