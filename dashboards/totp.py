"""The second factor's pure logic: TOTP codes (RFC 6238, via ``pyotp``) and one-time recovery codes.

No clock and no database here: the time is passed in, and replay protection is expressed as the
last accepted time step, which the caller stores. A code is accepted for the current 30-second
step or one step either side (clock drift between phone and server), and only for a step later
than the last one accepted for that user: the same code cannot be used twice, nor an older one.

Recovery codes are 80 random bits shown once as ``xxxx-xxxx-xxxx-xxxx`` (base32); only their
SHA-256 is stored. A fast hash is enough for that much entropy (unlike passwords).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from datetime import datetime
from typing import Final

import pyotp

ISSUER: Final = "rpmflow"
DRIFT_STEPS: Final = 1  # accept one step (30 s) either side of the server's clock
RECOVERY_CODES: Final = 10
_RECOVERY_SHAPE = re.compile(r"^[a-z2-7]{4}(-?[a-z2-7]{4}){3}$")
_DIGITS = re.compile(r"^[0-9]{6}$")


def new_secret() -> str:
    """A fresh 160-bit base32 secret (RFC 4226's recommended length)."""
    return pyotp.random_base32(32)


def provisioning_uri(secret: str, username: str) -> str:
    """The ``otpauth://`` URI an authenticator app imports (typed or pasted; no QR needed)."""
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=ISSUER)


def grouped(secret: str) -> str:
    """The secret in groups of four, easier to type into a phone."""
    return " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))


def looks_like_totp(code: str) -> bool:
    return bool(_DIGITS.match(code))


def matching_step(secret: str, code: str, *, now: datetime, after_step: int) -> int | None:
    """The time step ``code`` belongs to when it is valid at ``now`` and later than ``after_step``;
    None otherwise (wrong, expired, or a replay of an accepted step)."""
    if not looks_like_totp(code):
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if step > after_step and hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def new_recovery_codes(count: int = RECOVERY_CODES) -> list[str]:
    """Codes to show the user once; store :func:`recovery_digest` of each."""
    codes = []
    for _ in range(count):
        raw = base64.b32encode(secrets.token_bytes(10)).decode("ascii").lower()
        codes.append("-".join(raw[i:i + 4] for i in range(0, 16, 4)))
    return codes


def normalise_recovery(code: str) -> str | None:
    """The canonical form of a typed recovery code (case, spaces and dashes forgiven), or None."""
    cleaned = code.strip().lower().replace(" ", "")
    if not _RECOVERY_SHAPE.match(cleaned):
        return None
    bare = cleaned.replace("-", "")
    return "-".join(bare[i:i + 4] for i in range(0, 16, 4))


def recovery_digest(code: str) -> str:
    return hashlib.sha256(code.encode("ascii")).hexdigest()
