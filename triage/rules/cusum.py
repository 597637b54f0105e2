"""Gradual change sooner (issue 16): a one-sided CUSUM of each reading against the patient's own level.

The weekly ``trend_rise`` needs three weeks of rising means, so a steady rise was flagged after
about nine days. Here every valid reading of systolic BP or weight is standardised against the
patient's own baseline (mean and SD of the 21 days that end 7 days before it, outliers clipped,
so the rise being watched is not yet in it) and added, less an allowance of half the shift worth
catching, to a sum that never goes below zero and forgets what is older than 7 days (Page's
CUSUM with a window). The flag is raised when the sum reaches the decision interval. Shift and
decision interval are per-patient thresholds (``trend_systolic_shift``, ``trend_weight_shift``,
``trend_decision``). One flag per metric and ``TREND_REFLAG_INTERVAL``: while it is open new
readings attach to it; once closed it is not reopened inside that interval (keyed by the start
of the alarm run, so one rise is one flag).

Vectorised: the windowed CUSUM is ``C_i - min(C_{j-1})`` over the window, a rolling minimum of the
running sum, so no per-reading Python loop (only the few alarm rows look up their start).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from triage import frames as fr
from triage import thresholds as th
from triage.limits import DEFAULTS, Limits
from triage.rules._common import ns, valid
from triage.rules.diurnal import clipped, diurnal_residuals, rolling

RULE_ID = "trend_cusum"
# Most one blood-pressure reading adds to the sum (in SDs): one odd cuff reading cannot reach the
# decision interval alone. Not for weight: a scale repeats to 0.1-0.2 kg, and a steady gain soon
# stands 3 SDs above the patient's usual weight.
Z_CLIP = 3.0


@dataclass(frozen=True)
class TrendMetric:
    kind: str
    label: str
    unit: str
    shown: str
    shift_key: str
    sd_floor: float  # measurement noise below which a patient's spread is not believed
    digits: int
    advice: str
    basis: str  # how the usual level was found, for the reason text


METRICS: dict[str, TrendMetric] = {
    "systolic_mmhg": TrendMetric(
        "blood_pressure",
        "Systolic BP",
        th.Unit.MMHG.value,
        "mmHg",
        th.TREND_SYSTOLIC_SHIFT.key,
        th.TREND_SD_FLOOR["systolic_mmhg"],
        0,
        "Ask about missed medication, salt, pain or new drugs; review the care plan.",
        "its level at this time of day over the 3 weeks before, SD",
    ),
    "weight_kg": TrendMetric(
        "weight",
        "Weight",
        th.Unit.KG.value,
        "kg",
        th.TREND_WEIGHT_SHIFT.key,
        th.TREND_SD_FLOOR["weight_kg"],
        1,
        "Possible slow fluid build-up: ask about breathlessness, ankle swelling, diuretic doses.",
        "mean of the 3 weeks before, SD",
    ),
}


def baselines(d: pd.DataFrame, sd_floor: float) -> pd.DataFrame:
    """Per reading: level (mean), SD and count of the patient's readings in the ``TREND_BASELINE``
    window that ends ``TREND_WINDOW`` before it (NaN / 0 when there are none).

    Mean and SD rather than median and IQR: with about 35 readings the median's standard error is
    1.25 times the mean's and an IQR-based SD is about as noisy as one from 2.7 times fewer readings
    (Kendall & Stuart), and a baseline that is off by chance is added to every reading of the sum.
    To stay robust (one crisis reading would inflate the SD for three weeks) each reading is first
    clipped to ``TREND_CLIP_SDS`` robust SDs (IQR / 1.349, at least ``sd_floor``) around the median
    of the window ending at it.
    """
    clipped_x = d[["patient_id", "measured_at"]].assign(c=clipped(d, "x", sd_floor))
    roll_c = rolling(clipped_x, "c", f"{th.TREND_BASELINE.days}D")
    stats = pd.DataFrame(
        {
            "patient_id": d["patient_id"],
            "at": d["measured_at"],
            "b_level": roll_c.mean().to_numpy(),
            "b_sd": roll_c.std().to_numpy(),
            "b_n": roll_c.count().to_numpy(),
        }
    )
    left = pd.DataFrame(
        {
            "patient_id": d["patient_id"],
            "at": d["measured_at"] - pd.Timedelta(th.TREND_WINDOW),
            "row": np.arange(len(d)),
        }
    ).sort_values("at", kind="stable")
    m = pd.merge_asof(left, stats.sort_values("at", kind="stable"), on="at", by="patient_id")
    m = m.sort_values("row").reset_index(drop=True)
    m["b_n"] = m["b_n"].fillna(0).astype("int64")
    return m[["b_level", "b_sd", "b_n"]]


def cusum(d: pd.DataFrame, increments: np.ndarray) -> np.ndarray:
    """Windowed one-sided CUSUM per row: ``max(0, C_i - min C_{j-1})`` over j in ``(t_i - window, t_i]``."""
    inc = pd.Series(increments, index=d.index)
    c = inc.groupby(d["patient_id"]).cumsum()
    prev = (c - inc).to_frame("p").assign(patient_id=d["patient_id"], measured_at=d["measured_at"])
    low = rolling(prev, "p", f"{th.TREND_WINDOW.days}D").min().to_numpy()
    out: np.ndarray = np.maximum(0.0, c.to_numpy() - low)
    return out


def _excursion_starts(d: pd.DataFrame, increments: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """For each alarm row, the first row of the excursion (where the windowed sum last stood at 0)."""
    pid = d["patient_id"].to_numpy()
    t = ns(d["measured_at"])
    window = int(th.TREND_WINDOW.total_seconds()) * 1_000_000_000
    out = np.empty(len(rows), dtype="int64")
    for k, i in enumerate(rows):
        lo = int(i)
        while lo > 0 and pid[lo - 1] == pid[i] and t[lo - 1] > t[i] - window:
            lo -= 1
        tail = np.cumsum(increments[lo : i + 1][::-1])[::-1]  # sum from each j to i
        out[k] = lo + int(np.argmax(tail))
    return out


def trend_cusum(readings: pd.DataFrame, *, now: datetime, limits: Limits = DEFAULTS) -> pd.DataFrame:
    """Readings at which the patient's windowed CUSUM of a metric reaches the decision interval."""
    out = []
    for metric, m in METRICS.items():
        d = valid(readings, m.kind)
        d = d[d[metric].notna()].reset_index(drop=True)
        if len(d) <= th.BASELINE_MIN_READINGS:
            continue
        d = d.assign(x=d[metric].astype("float64"))
        d, z = blood_pressure_scores(d) if metric == "systolic_mmhg" else _plain_scores(d, m)
        if d.empty:
            continue
        shift = np.broadcast_to(np.asarray(limits.at(m.shift_key, d["patient_id"]), dtype="float64"), len(d))
        decision = np.broadcast_to(
            np.asarray(limits.at(th.TREND_DECISION.key, d["patient_id"]), dtype="float64"), len(d)
        )
        sd = d["b_sd"].to_numpy(dtype="float64")
        inc = z - shift / 2 / sd
        s = cusum(d, inc)
        rows = np.flatnonzero(s >= decision - 1e-9)
        if len(rows):
            out.append(_candidates(d, metric, m, rows, _excursion_starts(d, inc, rows), s, sd, decision))
    return fr.concat(out)


def _plain_scores(d: pd.DataFrame, m: TrendMetric) -> tuple[pd.DataFrame, np.ndarray]:
    """Weight: each reading in the patient's own SDs from the mean of their baseline window."""
    d = pd.concat([d, baselines(d, m.sd_floor)], axis=1)
    d = d[d["b_n"] >= th.BASELINE_MIN_READINGS].reset_index(drop=True)
    d["b_sd"] = np.maximum(d["b_sd"].to_numpy(dtype="float64"), m.sd_floor)
    z: np.ndarray = (d["x"].to_numpy() - d["b_level"].to_numpy()) / d["b_sd"].to_numpy()
    return d, z


def blood_pressure_scores(d: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """Blood pressure: systolic residuals from the patient's own time-of-day level (``triage.rules.diurnal``).

    Systolic alone, not combined with diastolic: a combination only gains while the two pressures'
    noise is independent (as in the simulator); at a home-reading correlation of 0.6 it is slower
    for a rise in both and much slower for an isolated systolic rise (docs/triage.md).
    """
    b = diurnal_residuals(d, {"systolic_mmhg": th.TREND_SD_FLOOR["systolic_mmhg"]})
    d = d.assign(b_level=b["systolic_mmhg_level"], b_sd=b["systolic_mmhg_sd"], b_n=b["b_n"])
    z = np.minimum((d["x"].to_numpy() - d["b_level"].to_numpy()) / d["b_sd"].to_numpy(), Z_CLIP)
    keep = (d["b_n"] >= th.BASELINE_MIN_READINGS).to_numpy()
    return d[keep].reset_index(drop=True), z[keep]


def _episode_buckets(d: pd.DataFrame, rows: np.ndarray, starts: np.ndarray) -> pd.Index:
    """The episode of each alarm row: the re-flag interval holding the start of its alarm run.

    Consecutive alarm rows of a patient are one run and share the start of the run's first row,
    so one rise is one flag even when the interval boundary falls inside it; a row's CUSUM only
    depends on the 35 days before it, so every pass derives the same key.
    """
    pid = d["patient_id"].to_numpy()[rows]
    new_run = np.r_[True, (np.diff(rows) != 1) | (pid[1:] != pid[:-1])]
    run_start = starts[np.flatnonzero(new_run)][np.cumsum(new_run) - 1]
    interval = int(th.TREND_REFLAG_INTERVAL.total_seconds()) * 1_000_000_000
    t = ns(d["measured_at"])[run_start]
    days: pd.Index = pd.DatetimeIndex(pd.to_datetime(t // interval * interval, utc=True)).strftime("%Y-%m-%d")
    return days


def _candidates(
    d: pd.DataFrame,
    metric: str,
    m: TrendMetric,
    rows: np.ndarray,
    starts: np.ndarray,
    s: np.ndarray,
    sd: np.ndarray,
    decision: np.ndarray,
) -> pd.DataFrame:
    ids = d["reading_id"].to_numpy()
    x = d["x"].to_numpy()
    means = np.array([x[a : b + 1].mean() for a, b in zip(starts, rows, strict=True)])
    counts = pd.Series(rows - starts + 1)
    sel = d.iloc[rows].reset_index(drop=True)
    first_at = d["measured_at"].iloc[starts].reset_index(drop=True)
    mean_s, base_s = pd.Series(means), sel["b_level"]
    bucket = _episode_buckets(d, rows, starts)
    reason = (
        m.label
        + " rising: "
        + fr.fmt(sel["x"], m.digits)
        + f" {m.shown} now, mean "
        + fr.fmt(mean_s, m.digits)
        + " over "
        + counts.astype(str)
        + " readings since "
        + first_at.dt.strftime("%Y-%m-%d")
        + " against this patient's usual "
        + fr.fmt(base_s, m.digits)
        + f" {m.shown} ({m.basis} "
        + fr.fmt(pd.Series(sd[rows]), 1)
        + "; CUSUM "
        + fr.fmt(pd.Series(s[rows]), 1)
        + " reached "
        + fr.fmt(pd.Series(decision[rows]), 1)
        + "). "
        + m.advice
    )
    return fr.candidates(
        rule_id=RULE_ID,
        patient_id=sel["patient_id"],
        severity="moderate",
        reason=reason,
        reading_ids=pd.Series([[int(v) for v in ids[a : b + 1]] for a, b in zip(starts, rows, strict=True)]),
        first_at=first_at,
        last_at=sel["measured_at"],
        value=mean_s,
        baseline=base_s,
        unit=m.unit,
        episode_key=pd.Series([f"{metric}:{b}" for b in bucket]),
        dedup="episode",
    )
