"""ICD-10-CM code format checks (pure) and the handful of diagnoses RPM programs order most.

Only the *shape* is checked (letter, two alphanumerics, optional dot and up to four more): the
full code set is licensed data that changes every October, so a valid-looking unknown code is
accepted and a malformed one is refused. Codes are normalised to upper case with the dot.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_PATTERN = re.compile(r"^[A-Z][0-9][0-9A-Z](?:\.[0-9A-Z]{1,4})?$")
_UNDOTTED = re.compile(r"^([A-Z][0-9][0-9A-Z])([0-9A-Z]{1,4})$")

COMMON_RPM_CODES: dict[str, str] = {
    "I10": "Essential (primary) hypertension",
    "I11.9": "Hypertensive heart disease without heart failure",
    "I13.10": "Hypertensive heart and chronic kidney disease without heart failure",
    "I50.9": "Heart failure, unspecified",
    "I48.91": "Unspecified atrial fibrillation",
    "R03.0": "Elevated blood-pressure reading, without diagnosis of hypertension",
    "E11.9": "Type 2 diabetes mellitus without complications",
    "E11.65": "Type 2 diabetes mellitus with hyperglycemia",
    "E11.649": "Type 2 diabetes mellitus with hypoglycemia without coma",
    "E10.9": "Type 1 diabetes mellitus without complications",
    "E16.2": "Hypoglycemia, unspecified",
    "R73.9": "Hyperglycemia, unspecified",
    "O24.410": "Gestational diabetes mellitus in pregnancy, diet controlled",
    "N18.3": "Chronic kidney disease, stage 3 (moderate)",
    "E66.9": "Obesity, unspecified",
}


class InvalidICD10(ValueError):
    """A code that does not have the ICD-10-CM shape (terminal: fix the input)."""

    def __init__(self, code: str) -> None:
        super().__init__(f"not an ICD-10-CM code: {code!r} (expected e.g. I10, E11.65, R03.0)")
        self.code = code


def normalise(code: str) -> str:
    """Upper-case, strip, and insert the dot after the category when it was left out (E1165)."""
    c = code.strip().upper()
    m = _UNDOTTED.match(c)
    if m:
        c = f"{m.group(1)}.{m.group(2)}"
    if not _PATTERN.match(c):
        raise InvalidICD10(code)
    return c


def is_valid(code: str) -> bool:
    try:
        normalise(code)
    except InvalidICD10:
        return False
    return True


def validate_codes(codes: Iterable[str]) -> list[str]:
    """Normalise every code (order kept, duplicates dropped); refuse an empty list."""
    out: list[str] = []
    for code in codes:
        n = normalise(code)
        if n not in out:
            out.append(n)
    if not out:
        raise InvalidICD10("")
    return out


def describe(code: str) -> str | None:
    """Description of a common RPM code, None for codes outside the small built-in list."""
    return COMMON_RPM_CODES.get(normalise(code))
