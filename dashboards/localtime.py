"""Times as the patient lives them: local wall time with its zone on screen, UTC on hover and in exports.

A nurse calling a patient at 07:10 in Phoenix needs "07:10 MST", not "14:10 UTC"; the UTC instant
stays one hover away (``title``) and in the machine-readable ``datetime`` attribute. The zone is the
patient's IANA zone (``patients.timezone``), else the clinic's (``RPMFLOW_DASHBOARD_CLINIC_TZ``).
Pure: no clock, no database.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from markupsafe import Markup, escape


def zone(name: str | None, fallback: str = "UTC") -> ZoneInfo:
    """The IANA zone ``name``; the fallback when it is missing or not a zone (never raises for data)."""
    for candidate in (name, fallback, "UTC"):
        if not candidate:
            continue
        try:
            return ZoneInfo(candidate)
        except (ZoneInfoNotFoundError, ValueError):
            continue
    return ZoneInfo("UTC")


def utc_text(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def local_text(at: datetime, tz: ZoneInfo, *, date: bool = True) -> str:
    """``2026-03-10 09:05 EDT``: wall time in ``tz`` with the zone's abbreviation for that instant."""
    local = at.astimezone(tz)
    return local.strftime("%Y-%m-%d %H:%M %Z" if date else "%H:%M %Z")


def time_html(at: datetime, tz: ZoneInfo, *, date: bool = True) -> Markup:
    """``<time>`` with local text, the UTC instant in ``datetime`` and, for people, in ``title``."""
    iso = at.astimezone(UTC).isoformat()
    return Markup('<time datetime="{}" title="{}">{}</time>').format(
        iso, utc_text(at), escape(local_text(at, tz, date=date)))


def ago_text(value: Any, now: datetime) -> str:
    """'3 min ago'-style age at ``now`` of a datetime or a number of seconds; '–' for none."""
    if value is None:
        return "–"
    seconds = int((now - value).total_seconds()) if isinstance(value, datetime) else int(value)
    if seconds < 0:
        return "in the future"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"
