"""The patient page's charts: the patient's own targets, averages, time in range, filled views.

The 7-day view plots every reading; the 30- and 90-day views plot one point per day (the daily
mean from ``readings_daily``) with the flagged readings ringed on top, so a month stays legible
and no reading limit truncates it. Averages and glucose bands are computed in SQL over every valid
reading of the period. The x axis starts at the first data in the window (not an empty month
with the data crushed at the right edge); the caption says so.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from markupsafe import Markup

from dashboards import chart_stats as cs
from dashboards.charts import Point, Series, Threshold, line_chart, stacked_bar
from dashboards.db import Conn, fetch_all
from dashboards.units import MG_DL, MMOL_L, mmol_per_l
from triage import readings_store

# Colours: 4.5:1 or better on white for text (the labels use the series colour).
SYSTOLIC, DIASTOLIC, GLUCOSE, WEIGHT, SPO2 = "#6d28d9", "#0e7490", "#047857", "#1d4ed8", "#0e7490"
CRISIS, STAGE2, LOW = "#b91c1c", "#b45309", "#1d4ed8"

BP_KEYS = ("bp_crisis_systolic", "bp_stage2_systolic", "bp_stage2_diastolic", "bp_hypotension_systolic")
GLUCOSE_KEYS = ("glucose_hyper_l2", "glucose_hypo_l1", "glucose_hypo_l2")
SPO2_KEYS = ("spo2_low", "spo2_critical")


def overrides(conn: Conn, patient_id: int) -> dict[str, float]:
    rows = fetch_all(
        conn,
        "SELECT threshold_key, value_canonical FROM triage_threshold_overrides"
        " WHERE patient_id = %s AND revoked_at IS NULL",
        (patient_id,),
    )
    return {r["threshold_key"]: float(r["value_canonical"]) for r in rows}


def period_stats(conn: Conn, patient_id: int, since: datetime) -> dict[str, dict[str, Any]]:
    """Per kind over every valid reading since ``since``: count, days, means, glucose bands."""
    return readings_store.period_stats(conn, patient_id, since, very_low=cs.VERY_LOW_BELOW, low=cs.LOW_BELOW,
                                       high=cs.HIGH_ABOVE, very_high=cs.VERY_HIGH_ABOVE)


def _avg(stats: dict[str, dict[str, Any]], kind: str, col: str) -> float | None:
    v = stats.get(kind, {}).get(col)
    return None if v is None else float(v)


def _points(rows: list[dict[str, Any]], key: str, *, flagged_only: bool = False) -> list[Point]:
    return [
        Point(r["measured_at"], float(r[key]), bool(r["flagged"]), r["quality"])
        for r in rows
        if r[key] is not None and r["quality"] != "failed" and (r["flagged"] or not flagged_only)
    ]


def _daily(daily: list[dict[str, Any]], kind: str, col: str) -> list[Point]:
    return [
        Point(d["day"] + timedelta(hours=12), float(d[col]))
        for d in daily
        if d["kind"] == kind and d[col] is not None
    ]


@dataclass(frozen=True)
class Line:
    """One plotted quantity: its name, colour, readings column, daily-mean column and average."""

    name: str
    color: str
    column: str
    daily_column: str | None  # None: not in readings_daily, every reading is plotted
    average: str


@dataclass(frozen=True)
class ChartSpec:
    element_id: str
    title: str
    unit: str
    kind: str
    lines: tuple[Line, ...]
    thresholds: tuple[tuple[str, str, str], ...]  # (threshold key, label, colour)
    always: bool = False  # drawn (empty) even when the patient has no such device


SPECS = (
    ChartSpec(
        "bp-chart",
        "Blood pressure",
        "mmHg",
        "blood_pressure",
        (
            Line("systolic", SYSTOLIC, "systolic_mmhg", "systolic_avg", "systolic"),
            Line("diastolic", DIASTOLIC, "diastolic_mmhg", "diastolic_avg", "diastolic"),
        ),
        (
            ("bp_crisis_systolic", "crisis SBP", CRISIS),
            ("bp_stage2_systolic", "stage 2 SBP", STAGE2),
            ("bp_stage2_diastolic", "stage 2 DBP", STAGE2),
            ("bp_hypotension_systolic", "low SBP", LOW),
        ),
        always=True,
    ),
    ChartSpec(
        "glucose-chart",
        "Glucose",
        "mg/dL",
        "glucose",
        (Line("glucose", GLUCOSE, "glucose_mg_dl", "glucose_avg", "glucose"),),
        (
            ("glucose_hyper_l2", "very high", CRISIS),
            ("glucose_hypo_l1", "low", STAGE2),
            ("glucose_hypo_l2", "very low", CRISIS),
        ),
        always=True,
    ),
    ChartSpec(
        "weight-chart", "Weight", "kg", "weight",
        (Line("weight", WEIGHT, "weight_kg", "weight_avg", "weight"),), (),
    ),
    ChartSpec(
        "spo2-chart",
        "SpO2",
        "%",
        "spo2",
        (Line("SpO2", SPO2, "spo2_pct", "spo2_avg", "spo2"),),
        (("spo2_low", "low", STAGE2), ("spo2_critical", "critical", CRISIS)),
    ),
)


def _series(
    line: Line,
    kind: str,
    rows: list[dict[str, Any]],
    daily: list[dict[str, Any]] | None,
    average: float | None,
) -> list[Series]:
    """Every reading (7 days), or daily means plus the flagged readings ringed (30/90 days)."""
    if daily is None or line.daily_column is None:
        return [Series(line.name, line.color, _points(rows, line.column), average=average)]
    return [
        Series(
            f"{line.name} (daily mean)", line.color, _daily(daily, kind, line.daily_column), average=average
        ),
        Series(f"flagged {line.name}", line.color, _points(rows, line.column, flagged_only=True), line=False),
    ]


def _lines(t: dict[str, cs.Target], spec: tuple[tuple[str, str, str], ...]) -> list[Threshold]:
    return [
        Threshold(t[k].value, f"{label}{'*' if t[k].overridden else ''}", color) for k, label, color in spec
    ]


def _start(since: datetime, rows: list[dict[str, Any]]) -> datetime:
    """The window's start, or the day of its first reading when the data begins later."""
    first = min((r["measured_at"] for r in rows), default=None)
    if first is None:
        return since
    return max(since, datetime.combine(first.date(), datetime.min.time(), first.tzinfo))


# The consensus band edges as mmol/L users read them (Battelino et al. 2019 give both units).
MMOL_BAND_LABELS = {
    "very_high": "Very high (> 13.9)",
    "high": "High (10.1-13.9)",
    "in_range": "In range (3.9-10.0)",
    "low": "Low (3.0-3.8)",
    "very_low": "Very low (< 3.0)",
}


def _in_unit(
    series: list[Series], thresholds: list[Threshold], unit: str
) -> tuple[list[Series], list[Threshold]]:
    """The glucose chart in mmol/L: every plotted value, average and target line converted alike."""
    if unit != MMOL_L:
        return series, thresholds
    return (
        [
            replace(
                s,
                points=[replace(p, value=mmol_per_l(p.value)) for p in s.points],
                average=None if s.average is None else mmol_per_l(s.average),
            )
            for s in series
        ],
        [replace(t, value=mmol_per_l(t.value)) for t in thresholds],
    )


def chart_context(conn: Conn, data: dict[str, Any], glucose_unit: str = MG_DL) -> dict[str, Any]:
    """Everything the charts section of the patient page renders (glucose in the user's unit)."""
    pid, days = int(data["patient"]["patient_id"]), int(data["days"])
    stats = period_stats(conn, pid, data["since"])
    keys = tuple(k for spec in SPECS for k, _, _ in spec.thresholds)
    t = cs.targets(keys, overrides(conn, pid))
    rows: list[dict[str, Any]] = data["readings"]
    daily = data["daily"] if days > 7 else None
    kinds = {d["kind"] for d in data["devices"]} | {r["kind"] for r in rows}
    start = _start(data["since"], rows)
    charts: list[tuple[str, Markup]] = []
    for spec in SPECS:
        if not (spec.always or spec.kind in kinds):
            continue
        mine = [r for r in rows if r["kind"] == spec.kind]
        series = [
            s
            for ln in spec.lines
            for s in _series(ln, spec.kind, mine, daily, _avg(stats, spec.kind, ln.average))
        ]
        lines = _lines(t, spec.thresholds)
        unit = spec.unit
        if spec.kind == "glucose":
            series, lines = _in_unit(series, lines, glucose_unit)
            unit = glucose_unit
        charts.append(
            (
                spec.element_id,
                line_chart(title=spec.title, unit=unit, series=series, thresholds=lines, start=start,
                           end=data["now"]),
            )
        )
    g = stats.get("glucose")
    tir = (
        None
        if g is None
        else cs.time_in_range(
            very_low=int(g["very_low"]),
            low=int(g["low"]),
            in_range=int(g["in_range"]),
            high=int(g["high"]),
            very_high=int(g["very_high"]),
            mean_mg_dl=float(g["glucose"]),
            days=int(g["days"]),
        )
    )
    bar = None if tir is None else stacked_bar([(b.share, b.color, b.label) for b in tir.bands])
    labels = MMOL_BAND_LABELS if glucose_unit == MMOL_L else {}
    return {"targets": t, "stats": stats, "chart_start": start, "charts": charts, "tir": tir, "tir_bar": bar,
            "tir_labels": labels}
