"""The second factor's storage: enrolment, code checks with replay protection, recovery codes, the
password-passed challenge, and an admin's reset. SQL only; the TOTP arithmetic is in
:mod:`dashboards.totp`.

Every check that accepts a code also records it in the same statement (``last_step`` moves forward,
a recovery code gets ``used_at``), so two requests racing with one code cannot both pass.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from dashboards import totp
from dashboards.db import Conn, fetch_one
from dashboards.sessions import digest

CHALLENGE_SECONDS = 300  # the password step is good for this long
CHALLENGE_ATTEMPTS = 5  # wrong codes on one challenge before the password must be typed again


class MfaAlreadyEnrolled(Exception):
    """Enrolment was asked for a user whose factor is confirmed (an admin must reset it first)."""


@dataclass(frozen=True)
class Challenge:
    """A sign-in whose password was right and whose second factor is still owed."""

    challenge_hash: str
    user_id: int
    username: str
    attempts: int


def enrolled(conn: Conn, user_id: int) -> bool:
    row = fetch_one(conn, "SELECT confirmed_at IS NOT NULL AS ok FROM user_mfa WHERE user_id = %s",
                    (user_id,))
    return bool(row and row["ok"])


def enrol_confirmed(conn: Conn, user_id: int, secret: str) -> None:
    """A factor already confirmed with the caller's secret (the demo's published ones); a user who
    has a factor keeps it."""
    conn.execute("INSERT INTO user_mfa (user_id, totp_secret, confirmed_at) VALUES (%s, %s, now())"
                 " ON CONFLICT (user_id) DO NOTHING", (user_id, secret))


def pending_secret(conn: Conn, user_id: int) -> str:
    """The secret being enrolled (made on first ask, kept until confirmed so a reload shows the same)."""
    row = fetch_one(conn, "SELECT totp_secret, confirmed_at FROM user_mfa WHERE user_id = %s", (user_id,))
    if row is not None:
        if row["confirmed_at"] is not None:
            raise MfaAlreadyEnrolled(f"user {user_id} already has a confirmed second factor")
        return str(row["totp_secret"])
    secret = totp.new_secret()
    conn.execute("INSERT INTO user_mfa (user_id, totp_secret) VALUES (%s, %s)", (user_id, secret))
    return secret


def confirm(conn: Conn, user_id: int, code: str, *, now: datetime | None = None) -> list[str] | None:
    """Confirm enrolment with a code from the app; the new recovery codes (shown once), or None."""
    row = fetch_one(conn, "SELECT totp_secret, last_step FROM user_mfa"
                          " WHERE user_id = %s AND confirmed_at IS NULL", (user_id,))
    if row is None:
        return None
    step = totp.matching_step(row["totp_secret"], code.strip(), now=now or datetime.now(UTC),
                              after_step=int(row["last_step"]))
    if step is None:
        return None
    conn.execute("UPDATE user_mfa SET confirmed_at = now(), last_step = %s WHERE user_id = %s",
                 (step, user_id))
    return replace_recovery_codes(conn, user_id)


def replace_recovery_codes(conn: Conn, user_id: int) -> list[str]:
    """Ten fresh codes; the old ones stop working."""
    codes = totp.new_recovery_codes()
    conn.execute("DELETE FROM mfa_recovery_codes WHERE user_id = %s", (user_id,))
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO mfa_recovery_codes (user_id, code_hash) VALUES (%s, %s)",
                        [(user_id, totp.recovery_digest(c)) for c in codes])
    return codes


def accept_totp(conn: Conn, user_id: int, code: str, *, now: datetime | None = None) -> bool:
    """True when ``code`` is valid now and newer than the last accepted one; records its step."""
    row = fetch_one(conn, "SELECT totp_secret, last_step FROM user_mfa"
                          " WHERE user_id = %s AND confirmed_at IS NOT NULL", (user_id,))
    if row is None:
        return False
    step = totp.matching_step(row["totp_secret"], code, now=now or datetime.now(UTC),
                              after_step=int(row["last_step"]))
    if step is None:
        return False
    cur = conn.execute("UPDATE user_mfa SET last_step = %s WHERE user_id = %s AND last_step < %s",
                       (step, user_id, step))
    return cur.rowcount == 1


def use_recovery_code(conn: Conn, user_id: int, code: str) -> int | None:
    """Consume a recovery code; the number still unused afterwards, or None when it was not valid."""
    canonical = totp.normalise_recovery(code)
    if canonical is None:
        return None
    cur = conn.execute("UPDATE mfa_recovery_codes SET used_at = now()"
                       " WHERE user_id = %s AND code_hash = %s AND used_at IS NULL",
                       (user_id, totp.recovery_digest(canonical)))
    if cur.rowcount != 1:
        return None
    return recovery_codes_left(conn, user_id)


def recovery_codes_left(conn: Conn, user_id: int) -> int:
    row = fetch_one(conn, "SELECT count(*) AS n FROM mfa_recovery_codes"
                          " WHERE user_id = %s AND used_at IS NULL", (user_id,))
    return int(row["n"]) if row else 0


def reset(conn: Conn, user_id: int) -> bool:
    """Remove a user's factor and recovery codes and end their sessions; True when one existed."""
    conn.execute("DELETE FROM mfa_recovery_codes WHERE user_id = %s", (user_id,))
    cur = conn.execute("DELETE FROM user_mfa WHERE user_id = %s", (user_id,))
    conn.execute("UPDATE dashboard_sessions SET ended_at = now(), end_reason = 'second factor reset'"
                 " WHERE user_id = %s AND ended_at IS NULL", (user_id,))
    return cur.rowcount == 1


def start_challenge(conn: Conn, user_id: int) -> str:
    """Open a second-factor challenge; returns the cookie value (only its SHA-256 is stored)."""
    challenge_id = secrets.token_urlsafe(32)
    conn.execute("INSERT INTO mfa_challenges (challenge_hash, user_id, expires_at)"
                 " VALUES (%s, %s, now() + make_interval(secs => %s))",
                 (digest(challenge_id), user_id, CHALLENGE_SECONDS))
    return challenge_id


def open_challenge(conn: Conn, challenge_id: str) -> Challenge | None:
    """The live challenge behind a cookie value: unexpired, unused, attempts left, user active."""
    row = fetch_one(
        conn,
        "SELECT c.challenge_hash, c.user_id, u.username, c.attempts FROM mfa_challenges c"
        " JOIN users u USING (user_id) WHERE c.challenge_hash = %s AND c.used_at IS NULL"
        " AND c.expires_at > now() AND c.attempts < %s AND u.active",
        (digest(challenge_id), CHALLENGE_ATTEMPTS),
    )
    if row is None:
        return None
    return Challenge(str(row["challenge_hash"]), int(row["user_id"]), str(row["username"]),
                     int(row["attempts"]))


def fail_challenge(conn: Conn, challenge: Challenge) -> int:
    """Count a wrong code; returns the attempts left on this challenge."""
    conn.execute("UPDATE mfa_challenges SET attempts = attempts + 1 WHERE challenge_hash = %s",
                 (challenge.challenge_hash,))
    return max(0, CHALLENGE_ATTEMPTS - challenge.attempts - 1)


def finish_challenge(conn: Conn, challenge: Challenge) -> bool:
    """Mark the challenge used; False when another request used it first."""
    cur = conn.execute("UPDATE mfa_challenges SET used_at = now()"
                       " WHERE challenge_hash = %s AND used_at IS NULL", (challenge.challenge_hash,))
    return cur.rowcount == 1
