"""Password policy: length first (NIST SP 800-63B), then a short local list of common choices.

Pure. A password must have at least :data:`MIN_LENGTH` characters and must not be, ignoring case
and surrounding spaces, one of the well-known long passwords below (or the username itself). The
list is ours and deliberately small: the length rule does most of the work, and a breach-corpus
check is an operator's add-on (docs/security.md).
"""

from __future__ import annotations

from typing import Final

MIN_LENGTH: Final = 12

COMMON: Final = frozenset({
    "123456789012", "1234567890123", "12345678901234", "111111111111", "000000000000",
    "password1234", "password12345", "password123!", "passw0rd1234", "p@ssw0rd1234", "p@ssword1234",
    "qwertyuiop12", "qwertyuiopas", "qwerty123456", "1q2w3e4r5t6y", "1qaz2wsx3edc", "zaq12wsxcde3",
    "abcdefghijkl", "abc123456789", "iloveyou1234", "letmein12345", "welcome12345", "welcome@1234",
    "changeme1234", "administrator", "admin1234567", "trustno1trustno1", "sunshine1234",
    "football1234", "baseball1234", "monkey123456", "dragon123456", "princess1234",
    "hospital1234", "nurse1234567", "doctor123456", "clinician123", "patient12345",
    "correcthorsebatterystaple",
})


def problem(password: str, username: str = "") -> str | None:
    """Why ``password`` is refused, or None when it is acceptable."""
    if len(password) < MIN_LENGTH:
        return f"password must have at least {MIN_LENGTH} characters"
    folded = password.strip().lower()
    if folded in COMMON:
        return "password is on the list of common passwords: choose another"
    if username and folded == username.strip().lower():
        return "password must not be the username"
    return None
