"""Server-side sessions and API tokens.

The browser holds only a random session id; the database holds its SHA-256, the user, the
per-session CSRF token and the last time it was used. A session idle longer than
``session_idle_minutes`` (automatic logoff) or older than ``session_max_hours`` is ended on sight.
API tokens are random too, stored hashed, and sent as ``Authorization: Bearer``.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Literal

from dashboards.db import Conn, fetch_all, fetch_one

TOKEN_PREFIX = "rpmf_"  # noqa: S105 - a public marker, not a secret


@dataclass(frozen=True)
class Principal:
    """Who is making this request, and how they proved it."""

    user_id: int
    username: str
    display_name: str
    role: str
    is_physician_or_qhp: bool
    via: Literal["session", "token"]
    csrf_token: str = ""
    session_hash: str = ""
    token_id: int | None = None  # the API token used (audited by name on every use)
    token_name: str = ""
    scope: str = "write"  # a 'read' token may only GET
    mfa_enrolled: bool = False  # a confirmed second factor (dashboards/mfa.py)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def start_session(conn: Conn, user_id: int, *, source_ip: str | None, user_agent: str | None) -> str:
    """Create a session and return the cookie value (never stored as such)."""
    session_id = secrets.token_urlsafe(32)
    conn.execute(
        "INSERT INTO dashboard_sessions (session_hash, user_id, csrf_token, source_ip, user_agent)"
        " VALUES (%s, %s, %s, %s, %s)",
        (digest(session_id), user_id, secrets.token_urlsafe(32), source_ip, (user_agent or "")[:300]),
    )
    return session_id


def resolve_session(
    conn: Conn, session_id: str, *, idle_minutes: float, max_hours: float, touch: bool = True
) -> Principal | None:
    """The live session's principal, or None. Expired sessions are marked ended."""
    h = digest(session_id)
    row = fetch_one(
        conn,
        "SELECT s.csrf_token, s.ended_at,"
        " s.last_seen_at < now() - make_interval(secs => %s) AS idle,"
        " s.created_at < now() - make_interval(secs => %s) AS too_old,"
        " u.user_id, u.username, u.display_name, u.role, u.is_physician_or_qhp, u.active,"
        " m.confirmed_at IS NOT NULL AS mfa_enrolled"
        " FROM dashboard_sessions s JOIN users u USING (user_id)"
        " LEFT JOIN user_mfa m ON m.user_id = u.user_id WHERE s.session_hash = %s",
        (idle_minutes * 60.0, max_hours * 3600.0, h),
    )
    if row is None or row["ended_at"] is not None:
        return None
    if row["idle"] or row["too_old"] or not row["active"]:
        reason = "idle timeout" if row["idle"] else "maximum age" if row["too_old"] else "user deactivated"
        conn.execute(
            "UPDATE dashboard_sessions SET ended_at = now(), end_reason = %s WHERE session_hash = %s",
            (reason, h),
        )
        return None
    if touch:
        conn.execute("UPDATE dashboard_sessions SET last_seen_at = now() WHERE session_hash = %s", (h,))
    return Principal(
        user_id=row["user_id"],
        username=row["username"],
        display_name=row["display_name"],
        role=row["role"],
        is_physician_or_qhp=row["is_physician_or_qhp"],
        via="session",
        csrf_token=row["csrf_token"],
        session_hash=h,
        mfa_enrolled=bool(row["mfa_enrolled"]),
    )


def end_session(conn: Conn, session_id: str, reason: str = "signed out") -> None:
    conn.execute(
        "UPDATE dashboard_sessions SET ended_at = now(), end_reason = %s"
        " WHERE session_hash = %s AND ended_at IS NULL",
        (reason, digest(session_id)),
    )


def session_alive(conn: Conn, session_hash: str, *, idle_minutes: float) -> bool:
    """For long-lived streams: is the session still valid? Does not count as activity."""
    row = fetch_one(
        conn,
        "SELECT 1 AS ok FROM dashboard_sessions WHERE session_hash = %s AND ended_at IS NULL"
        " AND last_seen_at >= now() - make_interval(secs => %s)",
        (session_hash, idle_minutes * 60.0),
    )
    return row is not None


TOKEN_SCOPES = ("read", "write")
MAX_TOKEN_DAYS = 365


def create_token(conn: Conn, user_id: int, name: str, *, days: int = 90,
                 scope: str = "write") -> tuple[int, str]:
    """Make an API token valid ``days`` days; the secret is returned once and only its hash is kept."""
    if scope not in TOKEN_SCOPES or not 1 <= days <= MAX_TOKEN_DAYS:
        raise ValueError(f"scope must be one of {TOKEN_SCOPES} and days 1..{MAX_TOKEN_DAYS}")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = fetch_one(
        conn,
        "INSERT INTO api_tokens (user_id, name, token_prefix, token_hash, expires_at, scope)"
        " VALUES (%s, %s, %s, %s, now() + make_interval(days => %s), %s) RETURNING token_id",
        (user_id, name[:100] or "token", token[:12], digest(token), days, scope),
    )
    assert row is not None
    return int(row["token_id"]), token


def token_refusal(conn: Conn, token: str) -> tuple[int | None, str, str]:
    """(token id, name, reason) for a token that did not resolve: expired, revoked, or unknown."""
    row = fetch_one(
        conn,
        "SELECT t.token_id, t.name, t.revoked_at IS NOT NULL AS revoked, t.expires_at <= now() AS expired,"
        " u.active FROM api_tokens t JOIN users u USING (user_id) WHERE t.token_hash = %s",
        (digest(token),),
    )
    if row is None:
        return None, "", "unknown token"
    reason = "revoked" if row["revoked"] else "expired" if row["expired"] else "user deactivated"
    return int(row["token_id"]), str(row["name"]), reason


def resolve_token(conn: Conn, token: str) -> Principal | None:
    row = fetch_one(
        conn,
        "UPDATE api_tokens t SET last_used_at = now() FROM users u"
        " WHERE t.token_hash = %s AND t.revoked_at IS NULL AND t.expires_at > now()"
        " AND u.user_id = t.user_id AND u.active"
        " RETURNING u.user_id, u.username, u.display_name, u.role, u.is_physician_or_qhp,"
        " t.token_id, t.name AS token_name, t.scope",
        (digest(token),),
    )
    if row is None:
        return None
    return Principal(
        user_id=row["user_id"],
        username=row["username"],
        display_name=row["display_name"],
        role=row["role"],
        is_physician_or_qhp=row["is_physician_or_qhp"],
        via="token",
        token_id=int(row["token_id"]),
        token_name=str(row["token_name"]),
        scope=str(row["scope"]),
    )


def list_tokens(conn: Conn, user_id: int) -> list[dict[str, object]]:
    return fetch_all(
        conn,
        "SELECT token_id, name, token_prefix, scope, created_at, expires_at, last_used_at, revoked_at"
        " FROM api_tokens"
        " WHERE user_id = %s ORDER BY created_at DESC",
        (user_id,),
    )


def revoke_token(conn: Conn, user_id: int, token_id: int) -> bool:
    cur = conn.execute(
        "UPDATE api_tokens SET revoked_at = now()"
        " WHERE token_id = %s AND user_id = %s AND revoked_at IS NULL",
        (token_id, user_id),
    )
    return cur.rowcount == 1
