"""Password hashing with stdlib scrypt: per-user salt, parameters stored beside the hash.

Stored form: ``scrypt$n=16384,r=8,p=1$<salt b64>$<hash b64>``. Keeping the cost parameters in the
string lets us raise them later and still verify old hashes (then rehash at sign-in).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SCHEME = "scrypt"
N = 2**14
R = 8
P = 1
SALT_BYTES = 16
KEY_BYTES = 32
_MAXMEM = 64 * 1024 * 1024


class PasswordFormatError(ValueError):
    """A stored hash is not in the ``scrypt$params$salt$hash`` form."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str, *, n: int = N, r: int = R, p: int = P) -> str:
    """Return the storable hash of ``password`` with a fresh random salt."""
    if not password:
        raise ValueError("empty password")
    salt = secrets.token_bytes(SALT_BYTES)
    key = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=_MAXMEM, dklen=KEY_BYTES)
    return f"{SCHEME}$n={n},r={r},p={p}${_b64(salt)}${_b64(key)}"


def _parse(stored: str) -> tuple[int, int, int, bytes, bytes]:
    parts = stored.split("$")
    if len(parts) != 4 or parts[0] != SCHEME:
        raise PasswordFormatError("not an scrypt hash")
    try:
        params = dict(item.split("=", 1) for item in parts[1].split(","))
        n, r, p = int(params["n"]), int(params["r"]), int(params["p"])
        salt = base64.b64decode(parts[2], validate=True)
        key = base64.b64decode(parts[3], validate=True)
    except (KeyError, ValueError) as exc:
        raise PasswordFormatError(f"malformed scrypt hash: {exc}") from None
    return n, r, p, salt, key


def verify_password(password: str, stored: str) -> bool:
    """True when ``password`` matches; comparison is constant-time. Malformed hashes never match."""
    try:
        n, r, p, salt, key = _parse(stored)
    except PasswordFormatError:
        return False
    candidate = hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=_MAXMEM, dklen=len(key)
    )
    return hmac.compare_digest(candidate, key)


def needs_rehash(stored: str) -> bool:
    """True when the hash was made with other parameters than today's."""
    try:
        n, r, p, _, _ = _parse(stored)
    except PasswordFormatError:
        return True
    return (n, r, p) != (N, R, P)


# A hash of a random password, verified against when the username is unknown, so a wrong
# username costs as much time as a wrong password.
DUMMY_HASH = hash_password(secrets.token_urlsafe(16))
