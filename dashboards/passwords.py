"""Password hashing: argon2id at OWASP's parameters, with the older scrypt hashes still verified.

New hashes are argon2id (``argon2-cffi``; m = 19 MiB, t = 2, p = 1, the OWASP Password Storage
Cheat Sheet minimum) in the PHC string form ``$argon2id$v=19$m=19456,t=2,p=1$salt$hash``. Hashes
made before (``scrypt$n=16384,r=8,p=1$<salt b64>$<hash b64>``, below OWASP's N = 2^17) still verify,
and :func:`needs_rehash` says so, so the sign-in handler rehashes them with argon2id.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

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


ARGON2 = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)


def hash_password(password: str) -> str:
    """Return the storable argon2id hash of ``password`` with a fresh random salt."""
    if not password:
        raise ValueError("empty password")
    return ARGON2.hash(password)


def scrypt_hash(password: str, *, n: int = N, r: int = R, p: int = P) -> str:
    """The legacy scrypt form (kept to verify and test old hashes; never written by sign-in)."""
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
    if stored.startswith("$argon2"):
        try:
            return ARGON2.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False
    try:
        n, r, p, salt, key = _parse(stored)
    except PasswordFormatError:
        return False
    candidate = hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=_MAXMEM, dklen=len(key)
    )
    return hmac.compare_digest(candidate, key)


def needs_rehash(stored: str) -> bool:
    """True when the hash is scrypt (any parameters) or argon2id with other parameters than today's."""
    if not stored.startswith("$argon2id$"):
        return True
    try:
        return ARGON2.check_needs_rehash(stored)
    except InvalidHashError:
        return True


# A hash of a random password, verified against when the username is unknown, so a wrong
# username costs as much time as a wrong password.
DUMMY_HASH = hash_password(secrets.token_urlsafe(16))
