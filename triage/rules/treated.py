"""Stable-but-high patients: persistence runs judged against the patient's own treated baseline.

A patient steady at 145/92 under treatment used to get a stage-2 flag after every close (22.8
queue flags per patient-month, issue 16). The clinician already knows; what matters is worsening,
or the care plan's review falling due. So when the patient's 28-day median before the run is
itself at or above the care-plan target, the run is re-raised at once only if its mean is worse
than that baseline by ``STAGE2_WORSENING``; otherwise it becomes one flag per
``STAGE2_REVIEW_INTERVAL`` (episode dedup: once closed, not reopened inside the interval).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from triage import thresholds as th
from triage.rules._common import ns

_WINDOW_NS = int(th.BASELINE_WINDOW.total_seconds()) * 1_000_000_000
_REVIEW_NS = int(th.STAGE2_REVIEW_INTERVAL.total_seconds()) * 1_000_000_000


@dataclass(frozen=True)
class TreatedBaseline:
    """Aligned with the run rows: baseline medians (NaN without enough history) and the split."""

    median_s: pd.Series
    median_d: pd.Series
    n: pd.Series
    stable_high: np.ndarray
    worsening: np.ndarray
    review_key: pd.Series


def prior_medians(bp: pd.DataFrame, first_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SBP/DBP medians and counts of each patient's readings in the 28 days before ``first_rows``."""
    t = ns(bp["measured_at"])
    pid = bp["patient_id"].to_numpy()
    sbp = bp["systolic_mmhg"].to_numpy(dtype="float64")
    dbp = bp["diastolic_mmhg"].to_numpy(dtype="float64")
    ms = np.full(len(first_rows), np.nan)
    md = np.full(len(first_rows), np.nan)
    n = np.zeros(len(first_rows), dtype="int64")
    for out_i, i in enumerate(first_rows):
        j = int(i)
        block = int(np.searchsorted(pid, pid[j], side="left"))  # rows are sorted by patient, then time
        start = block + int(np.searchsorted(t[block:j], t[j] - _WINDOW_NS, side="left"))
        idx = np.arange(start, j)
        n[out_i] = len(idx)
        if len(idx):
            ms[out_i], md[out_i] = np.median(sbp[idx]), np.median(dbp[idx])
    return ms, md, n


def split(
    bp: pd.DataFrame,
    run: np.ndarray,
    k: int,
    mean_s: pd.Series,
    mean_d: pd.Series,
    s2: pd.Series,
    d2: pd.Series,
) -> TreatedBaseline:
    """Which runs belong to a stable-high patient, and which of those are worsening."""
    rows = np.flatnonzero(run)
    first = rows - (k - 1)
    ms, md, n = prior_medians(bp, first)
    idx = mean_s.index
    enough = n >= th.BASELINE_MIN_READINGS
    high = enough & ((ms >= s2.to_numpy(dtype="float64")) | (md >= d2.to_numpy(dtype="float64")))
    worse = (mean_s.to_numpy(dtype="float64") >= ms + th.STAGE2_WORSENING["systolic_mmhg"]) | (
        mean_d.to_numpy(dtype="float64") >= md + th.STAGE2_WORSENING["diastolic_mmhg"]
    )
    start_ns = ns(bp["measured_at"])[first] // _REVIEW_NS * _REVIEW_NS
    key = pd.Series(
        ["review:" + d for d in pd.to_datetime(start_ns, utc=True).strftime("%Y-%m-%d")],
        index=idx,
        dtype=object,
    )
    return TreatedBaseline(
        pd.Series(ms, index=idx), pd.Series(md, index=idx), pd.Series(n, index=idx), high, high & worse, key
    )
