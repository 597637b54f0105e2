"""Anchor the audit chain's head outside the database (an append-only file), and check it.

Why: a key stops anyone re-computing edited rows, but someone with database access could still
delete the newest rows and move ``audit_chain_head`` back (the head lives in the same database).
Each anchor line records (seq, hash) of the head at a moment, MACed with the audit key; the file is
opened append-only, 0600, on a different machine or volume in production. ``audit-verify
--anchor-file`` then requires every anchored row to still exist with the same hash.

Line format (one JSON object per line): ``{"at": ISO-8601, "seq": N, "hash": HEX, "mac": HEX}``;
``mac`` = HMAC-SHA256(key, "seq:hash") (empty without a key: the file then only detects truncation).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from gateway.runtime import settings as rs
from gateway.runtime.fatal import exit_on_fatal
from triage.clinical import audit_key
from triage.clinical.audit import ChainProblem, ChainReport, hash_at
from triage.database import connect
from triage.settings import DatabaseSettings


def _mac(key: bytes | None, seq: int, digest: str) -> str:
    if key is None:
        return ""
    return hmac.new(key, f"{seq}:{digest}".encode("ascii"), hashlib.sha256).hexdigest()


def _lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                obj = {"bad_line": n}
            out.append(obj if isinstance(obj, dict) else {"bad_line": n})
    return out


def anchor(conn: psycopg.Connection[Any], path: Path | str, key: bytes | None) -> tuple[int, str] | None:
    """Append the current head to ``path`` (0600, append-only); None when it is already anchored."""
    row = conn.execute("SELECT last_seq, last_hash FROM audit_chain_head WHERE id = 1").fetchone()
    if row is None:
        raise RuntimeError("audit_chain_head row is missing")
    seq, digest = int(row[0]), str(row[1])
    p = Path(path)
    existing = _lines(p)
    if existing and existing[-1].get("seq") == seq and existing[-1].get("hash") == digest:
        return None
    line = json.dumps({"at": datetime.now(UTC).isoformat(), "seq": seq, "hash": digest,
                       "mac": _mac(key, seq, digest)}, separators=(",", ":"))
    fd = os.open(p, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (line + "\n").encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    return seq, digest


def check_anchors(conn: psycopg.Connection[Any], path: Path | str, key: bytes | None,
                  report: ChainReport) -> list[ChainProblem]:
    """Problems when an anchored head is gone, different, or its line was forged."""
    problems: list[ChainProblem] = []
    for a in _lines(Path(path)):
        if "bad_line" in a or not isinstance(a.get("seq"), int) or not isinstance(a.get("hash"), str):
            problems.append(ChainProblem(0, "anchor_forged", f"anchor file line {a.get('bad_line', '?')}"
                                         " is not an anchor"))
            continue
        seq, digest = int(a["seq"]), str(a["hash"])
        if key is not None and not hmac.compare_digest(str(a.get("mac", "")), _mac(key, seq, digest)):
            problems.append(ChainProblem(seq, "anchor_forged", f"anchor for seq {seq}: MAC does not match"))
            continue
        if seq == 0:
            continue
        if seq > report.head_seq:
            problems.append(ChainProblem(seq, "truncated", f"anchored seq {seq} is past the chain's head"
                                         f" {report.head_seq}: newer rows were deleted"))
            continue
        if hash_at(conn, seq) != digest:
            problems.append(ChainProblem(seq, "anchor_mismatch", f"row {seq} no longer has its anchored hash"
                                         " (rewritten or deleted)"))
    return problems


def audit_anchor_main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """``rpmflow-triage audit-anchor --file PATH``: append the chain head (run from cron or a timer)."""
    return exit_on_fatal("rpmflow-triage", lambda: _anchor(argv, os.environ if environ is None else environ))


def _anchor(argv: Sequence[str] | None, environ: Mapping[str, str]) -> int:
    parser = argparse.ArgumentParser(prog="rpmflow-triage audit-anchor",
                                     description=audit_anchor_main.__doc__)
    rs.add_flags(parser, DatabaseSettings)
    parser.add_argument("--file", required=True,
                        help="append-only anchor file (keep it off the database host)")
    args = parser.parse_args(argv)
    settings = rs.load(DatabaseSettings, environ, args)
    try:
        key = audit_key.current_key()
        with connect(settings.database_url) as conn:
            done = anchor(conn, args.file, key)
    except (audit_key.AuditKeyError, OSError, psycopg.Error) as exc:
        print(f"rpmflow-triage audit-anchor: {str(exc).strip().splitlines()[0]}", file=sys.stderr)
        return 2
    print("head already anchored" if done is None else f"anchored seq {done[0]} {done[1]}")
    return 0
