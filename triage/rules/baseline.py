"""Patient-relative rules: robust baseline deviation (median + MAD) and a sustained weekly trend.

Baselines are per patient and per metric, from that patient's own valid readings, so a patient
who always runs at 150 is not flagged daily while one who jumps from 120 to 165 is (DOMAIN C3/C4).
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from triage import frames as fr
from triage import thresholds as th
from triage.limits import DEFAULTS, Limits
from triage.localtime import local_days, today_in
from triage.rules._common import valid

METRICS = {
    "systolic_mmhg": ("blood_pressure", "Systolic BP", th.Unit.MMHG.value),
    "diastolic_mmhg": ("blood_pressure", "Diastolic BP", th.Unit.MMHG.value),
    "glucose_mg_dl": ("glucose", "Glucose", th.Unit.MG_DL.value),
}


def baseline_deviation(readings: pd.DataFrame, *, now: datetime, limits: Limits = DEFAULTS) -> pd.DataFrame:
    """Recent readings (last 3 days) far from the patient's 28-day median before them.

    Flags when |x - median| >= the metric's minimum delta and the robust z (MAD-scaled) >= 3.5;
    needs at least ``BASELINE_MIN_READINGS`` baseline readings, otherwise says nothing. Blood
    pressure needs two consecutive recent occasions off the same way (diagnosis uses >= 2
    readings, DOMAIN C1; single odd cuff readings were most of the stable-patient burden):
    gradual drift is the windowed CUSUM's job (``triage.rules.cusum``).
    """
    t_now = pd.Timestamp(now)
    cut = t_now - pd.Timedelta(th.BASELINE_RECENT)
    start = cut - pd.Timedelta(th.BASELINE_WINDOW)
    out = []
    for metric, (kind, label, unit) in METRICS.items():
        df = valid(readings, kind)
        df = df[df[metric].notna()]
        t = df["measured_at"]
        base = df.loc[(t >= start) & (t < cut), ["patient_id", metric]]
        recent = df.loc[(t >= cut) & (t <= t_now)]
        if base.empty or recent.empty:
            continue
        stats = _median_and_mad(base, metric)
        if stats.empty:
            continue
        out.append(_deviations(recent.join(stats, on="patient_id", how="inner"), metric, kind, label, unit))
    return fr.concat(out)


def _median_and_mad(base: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per patient with enough baseline readings: their median, count and median absolute deviation."""
    grp = base.groupby("patient_id")[metric]
    stats = pd.DataFrame({"median": grp.median(), "n": grp.size()})
    stats = stats[stats["n"] >= th.BASELINE_MIN_READINGS]
    dev = (base[metric] - base["patient_id"].map(stats["median"])).abs()
    stats["mad"] = dev.groupby(base["patient_id"]).median().reindex(stats.index)
    return stats


def _deviations(r: pd.DataFrame, metric: str, kind: str, label: str, unit: str) -> pd.DataFrame:
    """Candidates for the recent readings ``r`` (joined with their patient's stats) that deviate."""
    diff = r[metric] - r["median"]
    scale = r["mad"] * th.MAD_TO_SD
    z = np.where(scale > 0, diff / scale.where(scale > 0, 1.0), np.sign(diff) * np.inf)
    hit = (diff.abs() >= th.BASELINE_MIN_DELTA[metric]) & (np.abs(z) >= th.BASELINE_ROBUST_Z)
    prev_id = r["reading_id"].shift(1)
    if kind == "blood_pressure":  # one odd cuff reading is noise: the occasion before must agree
        same = (r["patient_id"].shift(1) == r["patient_id"]) & (np.sign(diff.shift(1)) == np.sign(diff))
        hit = hit & hit.shift(1, fill_value=False) & same
    else:
        prev_id = pd.Series(np.nan, index=r.index)
    sel = r.loc[hit]
    if sel.empty:
        return fr.empty_candidates()
    zs = pd.Series(z, index=r.index).loc[hit]
    direction = np.where(diff.loc[hit] > 0, " above", " below")
    reason = (
        label
        + " "
        + fr.fmt(sel[metric])
        + " "
        + _shown(unit)
        + " is "
        + fr.fmt(diff.loc[hit].abs())
        + pd.Series(direction, index=sel.index)
        + " this patient's 28-day median "
        + fr.fmt(sel["median"])
        + " (MAD "
        + fr.fmt(sel["mad"], 1)
        + ", robust z "
        + fr.fmt(zs.clip(-99, 99), 1)
        + ", n="
        + sel["n"].astype(str)
        + ")."
        + (" The occasion before was off the same way." if kind == "blood_pressure" else "")
    )
    return fr.candidates(
        rule_id="baseline_deviation",
        patient_id=sel["patient_id"],
        severity="moderate",
        reason=reason,
        reading_ids=fr.id_lists([prev_id.loc[hit], sel["reading_id"]]),
        first_at=r["measured_at"].shift(1).loc[hit].fillna(sel["measured_at"]),
        last_at=sel["measured_at"],
        value=sel[metric],
        baseline=sel["median"],
        unit=unit,
        episode_key=metric,
    )


# Systolic BP is watched by the windowed CUSUM (triage.rules.cusum), which finds a steady rise
# days sooner; the weekly comparison stays for diastolic BP and glucose.
WEEKLY_TREND_METRICS = {k: v for k, v in METRICS.items() if k != "systolic_mmhg"}


def trend(readings: pd.DataFrame, *, now: datetime, patients: pd.DataFrame) -> pd.DataFrame:
    """Sustained rise of the 7-day average: week 0 >= week 1 >= week 2 and week 0 - week 2 >= the rise.

    Weeks are patient-local days [today-6, today], [today-13, today-7], [today-20, today-14]; each
    needs >= 4 measuring days. One flag per patient, metric and ISO week (dedup by episode).
    """
    tz = patients.set_index("patient_id")["timezone"]
    out = []
    for metric, (kind, label, unit) in WEEKLY_TREND_METRICS.items():
        df = valid(readings, kind)
        df = df[df[metric].notna() & df["patient_id"].isin(tz.index)]
        if df.empty:
            continue
        zones = df["patient_id"].map(tz)
        day = local_days(df["measured_at"], zones)
        week = ((today_in(zones, now) - day).dt.days // 7).rename("week")
        keep = (week >= 0) & (week <= 2)
        wide = _weekly(
            df.loc[keep, ["patient_id", metric, "reading_id"]].assign(day=day[keep], week=week[keep]), metric
        )
        if any(w not in wide["mean"].columns for w in (0, 1, 2)):
            continue
        m, d = wide["mean"], wide["days"].fillna(0)
        ok = (
            (d[0] >= th.TREND_MIN_DAYS_PER_WEEK)
            & (d[1] >= th.TREND_MIN_DAYS_PER_WEEK)
            & (d[2] >= th.TREND_MIN_DAYS_PER_WEEK)
        )
        hit = ok & (m[0] >= m[1]) & (m[1] >= m[2]) & (m[0] - m[2] >= th.TREND_MIN_RISE[metric])
        if not hit.any():
            continue
        this_week = df.loc[keep & (week == 0)]
        out.append(_weekly_candidates(wide.loc[hit], this_week, metric, label, unit, now))
    return fr.concat(out)


def _weekly(rows: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per patient (rows) and week (columns): mean of daily means, measuring days, last reading id."""
    daily = (
        rows.groupby(["patient_id", "week", "day"])
        .agg(v=(metric, "mean"), last_id=("reading_id", "max"))
        .reset_index()
    )
    wk = daily.groupby(["patient_id", "week"]).agg(
        mean=("v", "mean"), days=("v", "size"), last_id=("last_id", "max")
    )
    return pd.DataFrame(wk.unstack("week"))


def _weekly_candidates(
    sel: pd.DataFrame, this_week: pd.DataFrame, metric: str, label: str, unit: str, now: datetime
) -> pd.DataFrame:
    m = sel["mean"]
    rise = m[0] - m[2]
    reason = (
        label
        + " 7-day average rose from "
        + fr.fmt(m[2])
        + " to "
        + fr.fmt(m[1])
        + " to "
        + fr.fmt(m[0])
        + " "
        + _shown(unit)
        + " over three weeks (+"
        + fr.fmt(rise)
        + "). Review adherence to medication and the care plan."
    )
    iso = pd.Timestamp(now).isocalendar()
    span = this_week.groupby("patient_id")["measured_at"].agg(["min", "max"]).reindex(sel.index)
    return fr.candidates(
        rule_id="trend_rise",
        patient_id=pd.Series(sel.index, index=sel.index),
        severity="moderate",
        reason=reason,
        reading_ids=fr.single_ids(sel["last_id"][0].astype("int64")),
        first_at=span["min"],
        last_at=span["max"],
        value=m[0],
        baseline=m[2],
        unit=unit,
        episode_key=f"{metric}:{iso.year}-W{iso.week:02d}",
        dedup="episode",
    )


def _shown(unit: str) -> str:
    return "mmHg" if unit == th.Unit.MMHG.value else unit
