"""Weight and SpO2 rules that heart-failure and COPD programs use (issue 16).

``weight_gain``: the heart-failure self-care advice (2 lb / 0.9 kg in a day or 5 lb / 2.3 kg in a
week) measured against the lowest weighing in the window before, so a slow rise over several days
is still seen against the patient's dry-weight proxy. ``spo2_low``: two consecutive occasions
below the care-plan line (90 %, 88 % for COPD by override) within an hour, so one poorly
perfused finger does not page the nurse. ``spo2_critical``: any single valid reading under the
floor (85 %), critical and never snoozed. Pure: ``now`` is passed in, nothing reads a clock.
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from triage import frames as fr
from triage import thresholds as th
from triage.limits import DEFAULTS, Limits
from triage.rules._common import (
    apart,
    confirmed_pair_candidates,
    neighbour,
    ns,
    one_reading_candidates,
    valid,
    within,
)

WEIGHT = "weight"
SPO2 = "spo2"
KG = th.Unit.KG.value
PCT = th.Unit.PERCENT.value


def _window_min(w: pd.DataFrame, window: tuple[timedelta, timedelta]) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the lowest weight of the same patient measured ``window`` before it, and its row.

    Rows without an earlier weighing in the window get NaN and -1. Rows are sorted by patient then
    time, so each patient is one contiguous block searched on its own.
    """
    near, far = (int(x / timedelta(microseconds=1)) * 1000 for x in window)
    t = ns(w["measured_at"])
    v = w["weight_kg"].to_numpy(dtype="float64")
    pid = w["patient_id"].to_numpy()
    out = np.full(len(w), np.nan)
    at = np.full(len(w), -1, dtype="int64")
    edges = np.flatnonzero(np.r_[True, pid[1:] != pid[:-1], True])
    for a, b in itertools.pairwise(edges):
        tp = t[a:b]
        lo = np.searchsorted(tp, tp - far, side="left") + a
        hi = np.searchsorted(tp, tp - near, side="right") + a
        for i in range(a, b):
            if lo[i - a] < hi[i - a]:
                j = int(lo[i - a]) + int(np.argmin(v[lo[i - a] : hi[i - a]]))
                out[i], at[i] = v[j], j
    return out, at


def _gain(w: pd.DataFrame, limits: Limits, key: str, window: tuple[timedelta, timedelta]) -> pd.DataFrame:
    """Rows whose gain over the window's lowest weight reaches the patient's ``key`` line."""
    base, at = _window_min(w, window)
    line = pd.Series(limits.at(key, w["patient_id"]), index=w.index).to_numpy(dtype="float64")
    gain = w["weight_kg"].to_numpy(dtype="float64") - base
    hit = ~np.isnan(gain) & (gain >= line - 1e-9)
    out: pd.DataFrame = w.loc[hit].copy()
    out["base_kg"] = base[hit]
    out["base_id"] = w["reading_id"].to_numpy()[at[hit]]
    out["base_at"] = w["measured_at"].to_numpy()[at[hit]]
    out["line_kg"] = line[hit]
    return out


def _gain_over_dry(w: pd.DataFrame, limits: Limits, dry: pd.Series) -> pd.DataFrame:
    """Weighings at or above the patient's dry weight + the week line (the weighing alone is the evidence)."""
    line = pd.Series(limits.at("weight_gain_week", w["patient_id"]), index=w.index).astype("float64")
    hit = dry.notna() & (w["weight_kg"] - dry >= line - 1e-9)
    out: pd.DataFrame = w.loc[hit].copy()
    out["base_kg"] = dry.loc[hit]
    out["base_id"] = -1
    out["base_at"] = out["measured_at"]
    out["line_kg"] = line.loc[hit]
    return out


def weight_gain(readings: pd.DataFrame, *, now: datetime, limits: Limits = DEFAULTS) -> pd.DataFrame:
    """>= 0.9 kg over yesterday's lowest weighing, or >= 2.3 kg over the week's lowest (high);
    when the care team set a dry weight, the week line is measured from it instead.

    One candidate per weighing; the day rule wins when both apply (it names the sharper change).
    Both weighings are the evidence, so the nurse sees the baseline the gain is measured from.
    """
    w = valid(readings, WEIGHT)
    w = w[w["weight_kg"].notna()].reset_index(drop=True)
    if w.empty:
        return fr.empty_candidates()
    day = _gain(w, limits, "weight_gain_day", th.WEIGHT_DAY_WINDOW)
    dry = limits.dry_weight(w["patient_id"])
    week = _gain(w, limits, "weight_gain_week", th.WEIGHT_WEEK_WINDOW)
    week = week[dry.loc[week.index].isna() & ~week.index.isin(day.index)]
    from_dry = _gain_over_dry(w, limits, dry)
    from_dry = from_dry[~from_dry.index.isin(day.index)]
    parts = [
        _weight_candidates(sel, since, key, dedup)
        for sel, since, key, dedup in (
            (day, " in a day from ", "", "readings"),
            (week, " in a week from ", "", "readings"),
            (from_dry, " above the dry weight set by the care team, ", _dry_review_key(from_dry), "episode"),
        )
        if not sel.empty
    ]
    return fr.concat(parts)


def _dry_review_key(from_dry: pd.DataFrame) -> pd.Series:
    """Above the dry weight persists until the fluid is off: one flag per patient and review week
    (episode), not one per weighing after each close."""
    review = th.WEIGHT_DRY_REVIEW_INTERVAL // timedelta(microseconds=1) * 1000
    return pd.Series(
        "dry:" + pd.DatetimeIndex(
            pd.to_datetime(ns(from_dry["measured_at"]) // review * review, utc=True)
        ).strftime("%Y-%m-%d"),
        index=from_dry.index,
    )  # fmt: skip


def _weight_candidates(sel: pd.DataFrame, since: str, key: pd.Series | str, dedup: str) -> pd.DataFrame:
    """``weight_gain`` candidates for gains measured from ``base_kg`` (``since`` names that baseline)."""
    gain = sel["weight_kg"] - sel["base_kg"]
    reason = (
        "Weight "
        + fr.fmt(sel["weight_kg"], 1)
        + " kg, up "
        + fr.fmt(gain, 1)
        + " kg ("
        + fr.fmt(gain / th.KG_PER_LB, 1)
        + " lb)"
        + since
        + fr.fmt(sel["base_kg"], 1)
        + " kg (line "
        + fr.fmt(sel["line_kg"], 1)
        + " kg). Possible fluid retention: ask about breathlessness, ankle swelling, diuretic doses."
    )
    return fr.candidates(
        rule_id="weight_gain",
        patient_id=sel["patient_id"],
        severity="high",
        reason=reason,
        reading_ids=fr.id_lists([sel["base_id"], sel["reading_id"]]),
        first_at=pd.Series(pd.to_datetime(sel["base_at"], utc=True), index=sel.index),
        last_at=sel["measured_at"],
        value=gain,
        baseline=sel["base_kg"],
        unit=KG,
        episode_key=key,
        dedup=dedup,
    )


def _spo2_text(df: pd.DataFrame) -> pd.Series:
    text = fr.fmt(df["spo2_pct"]) + " %"
    summary = df["spo2_min_pct"].notna()
    return text.where(~summary, text + " (minute median, min " + fr.fmt(df["spo2_min_pct"]) + " %)")


def spo2_low(readings: pd.DataFrame, *, now: datetime, limits: Limits = DEFAULTS) -> pd.DataFrame:
    """SpO2 below the care-plan line on two consecutive occasions within an hour (high)."""
    s = valid(readings, SPO2, occasions=True)
    s = s[s["spo2_pct"].notna()].reset_index(drop=True)
    if len(s) < 2:
        return fr.empty_candidates()
    line = limits.at("spo2_low", s["patient_id"])
    low = (s["spo2_pct"] < line).to_numpy(dtype=bool)
    prev_low = np.zeros(len(s), dtype=bool)
    prev_low[1:] = low[:-1]
    hit = low & prev_low & within(s, -1, th.SPO2_SUSTAINED_WINDOW) & apart(s, -1)
    sel = s.loc[hit]
    prev, _ = neighbour(s, "spo2_pct", 1)
    line_s = pd.Series(line, index=s.index).loc[hit]
    reason = (
        "SpO2 "
        + fr.fmt(prev.loc[hit])
        + " then "
        + _spo2_text(sel)
        + ", below "
        + fr.fmt(line_s)
        + " % on two readings within an hour. Ask about breathlessness; check the care plan's oxygen advice."
    )
    out: pd.DataFrame = confirmed_pair_candidates(
        s, hit, rule_id="spo2_low", severity="high", reason=reason, value_col="spo2_pct", unit=PCT
    )
    return out


def spo2_critical(readings: pd.DataFrame, *, now: datetime, limits: Limits = DEFAULTS) -> pd.DataFrame:
    """Any valid SpO2 under the critical floor (85 %): critical at once, never snoozed."""
    s = valid(readings, SPO2)
    s = s[s["spo2_pct"].notna()]
    if s.empty:
        return fr.empty_candidates()
    floor = pd.Series(limits.at("spo2_critical", s["patient_id"]), index=s.index)
    sel = s.loc[s["spo2_pct"] < floor]
    reason = (
        "SpO2 "
        + _spo2_text(sel)
        + " below the critical floor "
        + fr.fmt(floor.loc[sel.index])
        + " %. Contact the patient now; severe breathlessness, confusion or blue lips: call 911."
    )
    return one_reading_candidates(
        sel, rule_id="spo2_critical", severity="critical", reason=reason, value=sel["spo2_pct"], unit=PCT
    )
