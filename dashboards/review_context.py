"""What a clinician needs beside the flag to review it: the period's chart, baseline and averages, the
patient's other open flags, the notes, the time and contacts already logged, and the month's billing.

A review on the triggering reading alone misses that the patient has run at 150 for weeks, or that
the nurse already spent 14 minutes and called twice. :func:`averages` is pure (the baseline is the
same median over the same 28-day window the ``baseline_deviation`` rule uses); :func:`load` reads.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from dashboards import queries
from dashboards.db import Conn
from dashboards.patient_charts import chart_context
from dashboards.units import MG_DL
from triage import lifecycle
from triage import thresholds as th
from triage.billing import facts_store
from triage.billing.compute import compute_month
from triage.clinical import assignments

PERIOD = timedelta(days=30)
METRICS = (("systolic_mmhg", "Systolic", "mmHg"), ("diastolic_mmhg", "Diastolic", "mmHg"),
           ("glucose_mg_dl", "Glucose", "mg/dL"))


def _mean(values: list[float]) -> float | None:
    return round(statistics.fmean(values), 1) if values else None


def averages(readings: Iterable[Mapping[str, Any]], *, at: datetime, now: datetime) -> list[dict[str, Any]]:
    """Per metric: the baseline (median of the 28 days before ``at`` minus 3 days, as the baseline rule
    reads it), the 7-day and 30-day means up to ``now``, and how many valid readings each rests on."""
    valid = [r for r in readings if r.get("quality") == "valid"]
    base_end = at - th.BASELINE_RECENT
    base_start = base_end - th.BASELINE_WINDOW
    out = []
    for key, label, unit in METRICS:
        pts = [(r["measured_at"], float(r[key])) for r in valid if r.get(key) is not None]
        if not pts:
            continue
        base = [v for t, v in pts if base_start <= t < base_end]
        week = [v for t, v in pts if now - timedelta(days=7) <= t <= now]
        month = [v for t, v in pts if now - PERIOD <= t <= now]
        out.append({"metric": key, "label": label, "unit": unit,
                    "baseline": round(statistics.median(base), 1) if base else None, "baseline_n": len(base),
                    "avg_7d": _mean(week), "n_7d": len(week), "avg_30d": _mean(month), "n_30d": len(month)})
    return out


def load(conn: Conn, flag: Mapping[str, Any], *, now: datetime, tz: ZoneInfo,
         glucose_unit: str = MG_DL) -> dict[str, Any]:
    """Everything :mod:`dashboards.routes.review` shows beside the flag (no audit: the caller writes it)."""
    pid = flag.get("patient_id")
    if pid is None:
        return {"has_patient": False}
    flag_id = int(flag["flag_id"])
    at = flag.get("first_reading_at") or flag.get("last_reading_at") or flag["opened_at"]
    since = min(at - th.BASELINE_RECENT - th.BASELINE_WINDOW, now - PERIOD)
    readings = queries.readings(conn, int(pid), since)
    flagged = queries.flagged_reading_ids(conn, int(pid))
    for r in readings:
        r["flagged"] = int(r["reading_id"]) in flagged
    others = [f for f in queries.patient_flags(conn, int(pid))
              if f["state"] in lifecycle.ACTIVE_STATES and int(f["flag_id"]) != flag_id]
    notes = [e for e in queries.flag_events(conn, [flag_id, *(int(f["flag_id"]) for f in others)])
             if e["note"]]
    local_today = now.astimezone(tz).date()
    month_start = datetime(local_today.year, local_today.month, 1, tzinfo=tz)
    logs = facts_store.flag_logs(conn, int(pid), min(month_start, now - PERIOD))
    on_flag = [t for t in logs["time_logs"] if int(t["flag_id"]) == flag_id]
    month = compute_month(conn, local_today.year, local_today.month, patient_id=int(pid), as_of=local_today)
    period = {"patient": {"patient_id": pid}, "days": 30, "since": now - PERIOD, "now": now,
              "readings": [r for r in readings if r["measured_at"] >= now - PERIOD],
              "daily": queries.daily_stats(conn, int(pid), now - PERIOD),
              "devices": assignments.patient_devices(conn, int(pid))}
    return {
        "has_patient": True,
        "review_charts": chart_context(conn, period, glucose_unit)["charts"],
        "averages": averages(readings, at=at, now=now),
        "other_flags": others, "notes": notes, **logs,
        "logged_on_flag": sum(int(t["minutes"]) for t in on_flag),
        "logged_by_role": {role: sum(int(t["minutes"]) for t in on_flag if t["role"] == role)
                           for role in sorted({str(t["role"]) for t in on_flag})},
        "month": month[0] if month else None, "month_label": f"{local_today:%B %Y}",
    }
