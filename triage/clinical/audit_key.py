"""The audit chain's key: held by the processes that write audit rows, never by the database.

With a key, each row's link is ``HMAC-SHA256(key, prev_hash || canonical)`` instead of a plain
SHA-256, so whoever can write ``audit_log`` (a service role, a superuser, a restored backup) cannot
edit a row and recompute the chain: ``audit-verify`` with the key names the row. The key comes
from ``RPMFLOW_AUDIT_KEY`` (at least 32 characters) or ``RPMFLOW_AUDIT_KEY_FILE`` (a 0600 file),
read once on first use; :func:`use_key` sets it explicitly (tests, embedded demo). No key: rows
are written unkeyed, as before, and docs/security.md says why production must set one.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping
from pathlib import Path

KEY_ENV = "RPMFLOW_AUDIT_KEY"
KEY_FILE_ENV = "RPMFLOW_AUDIT_KEY_FILE"
MIN_KEY_CHARS = 32
KEYED = "hmac-sha256"
UNKEYED = "sha256"

_UNSET = object()
_key: bytes | object | None = _UNSET


class AuditKeyError(ValueError):
    """The configured audit key is unusable; the message names the variable."""


def key_from_env(environ: Mapping[str, str]) -> bytes | None:
    """The key named by the environment, or None when neither variable is set."""
    raw = environ.get(KEY_ENV, "")
    source = KEY_ENV
    if not raw and environ.get(KEY_FILE_ENV):
        path = Path(environ[KEY_FILE_ENV])
        try:
            raw = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise AuditKeyError(f"{KEY_FILE_ENV}: cannot read {path}: {exc.strerror}") from None
        source = KEY_FILE_ENV
    if not raw:
        return None
    if len(raw) < MIN_KEY_CHARS:
        raise AuditKeyError(f"{source}: the audit key must have at least {MIN_KEY_CHARS} characters")
    return raw.encode("utf-8")


def use_key(key: bytes | None) -> None:
    """Set the key for this process (None: write unkeyed rows)."""
    global _key
    _key = key


def current_key() -> bytes | None:
    """The process's key; read from the environment on first use."""
    global _key
    if _key is _UNSET:
        _key = key_from_env(os.environ)
    return _key if isinstance(_key, bytes) else None


def link(prev_hash: str, content: bytes, key: bytes | None) -> str:
    """One chain link: keyed when ``key`` is given, plain SHA-256 otherwise."""
    data = prev_hash.encode("ascii") + content
    if key is None:
        return hashlib.sha256(data).hexdigest()
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def alg_of(key: bytes | None) -> str:
    return UNKEYED if key is None else KEYED
