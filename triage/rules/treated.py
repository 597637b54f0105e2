"""Stable-but-high patients: persistence runs judged against the patient's own treated baseline.

A patient steady at 145/92 under treatment used to get a stage-2 flag after every close (22.8
queue flags per patient-month, issue 16). The clinician already knows; what matters is worsening,
or the care plan's review falling due. So when the patient's 28-day median before the run is
itself at or above the care-plan target, the run is re-raised at once only if it is worse than
that baseline beyond noise (``worse_beyond_noise``); otherwise it becomes one flag per
``STAGE2_REVIEW_INTERVAL`` (episode dedup: once closed, not reopened inside the interval).

A new patient (fewer than ``BASELINE_MIN_READINGS`` readings before the run) has no baseline
yet: the run is raised once per ``STAGE2_WARMUP_REVIEW_INTERVAL``, not after every close, unless
it is clearly worse than the readings so far. Crisis is a separate rule and is never held back.

The review intervals are counted from the patient's own start (``patient_start``: their first
reading ever, which the loader passes in, else the first one here), not from calendar dates, and
both schedules start there: the flag a new patient gets in the first days is that review period's
flag, and the baseline being built a few days later does not raise a second one. The next
"still high, review the treatment" flag comes one care-plan interval after the patient's start.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from triage import thresholds as th
from triage.rules._common import ns

_SEC_NS = 1_000_000_000
_DAY_NS = 86_400 * _SEC_NS
_WINDOW_NS = int(th.BASELINE_WINDOW.total_seconds()) * _SEC_NS


@dataclass(frozen=True)
class TreatedBaseline:
    """Aligned with the run rows: baseline medians (NaN without enough history) and the split.

    ``stable_high``: baseline built and at stage 2; ``warmup``: baseline not built yet; both are
    raised once per their review interval (``review_key``) unless ``worsening``.
    """

    median_s: pd.Series
    median_d: pd.Series
    n: pd.Series
    stable_high: np.ndarray
    warmup: np.ndarray
    worsening: np.ndarray
    review_key: pd.Series


@dataclass(frozen=True)
class Prior:
    """Per run: median, robust SD (MAD x 1.4826) and count of the readings before it."""

    median_s: np.ndarray
    median_d: np.ndarray
    sd_s: np.ndarray
    sd_d: np.ndarray
    n: np.ndarray


def _robust_sd(x: np.ndarray, med: float) -> float:
    return float(np.median(np.abs(x - med))) * th.MAD_TO_SD


def prior_stats(bp: pd.DataFrame, first_rows: np.ndarray) -> Prior:
    """Statistics of each patient's readings in the 28 days before ``first_rows``."""
    t = ns(bp["measured_at"])
    pid = bp["patient_id"].to_numpy()
    sbp = bp["systolic_mmhg"].to_numpy(dtype="float64")
    dbp = bp["diastolic_mmhg"].to_numpy(dtype="float64")
    m = len(first_rows)
    nan = np.full(m, np.nan)
    out = Prior(nan.copy(), nan.copy(), nan.copy(), nan.copy(), np.zeros(m, dtype="int64"))
    for o, i in enumerate(first_rows):
        j = int(i)
        block = int(np.searchsorted(pid, pid[j], side="left"))  # rows are sorted by patient, then time
        start = block + int(np.searchsorted(t[block:j], t[j] - _WINDOW_NS, side="left"))
        out.n[o] = j - start
        if j > start:
            s, d = sbp[start:j], dbp[start:j]
            out.median_s[o], out.median_d[o] = np.median(s), np.median(d)
            out.sd_s[o], out.sd_d[o] = _robust_sd(s, out.median_s[o]), _robust_sd(d, out.median_d[o])
    return out


def worse_beyond_noise(
    mean: np.ndarray, median: np.ndarray, sd: np.ndarray, floor: float, k: int
) -> np.ndarray:
    """The run mean exceeds the median by ``floor`` and by ``STAGE2_WORSENING_Z`` SDs of a k-mean.

    A 3-reading mean of a patient with SD 6 mmHg wanders +/- 3.5 mmHg; a 5 mmHg margin was
    crossed by noise alone. Without a usable SD (NaN) the floor alone applies.
    """
    noise = np.nan_to_num(th.STAGE2_WORSENING_Z * sd / np.sqrt(k), nan=0.0)
    res: np.ndarray = mean >= median + np.maximum(floor, noise)
    return res


def patient_start(bp: pd.DataFrame, starts: pd.Series | None = None) -> np.ndarray:
    """Per row, in ns: the patient's own start, from which the review intervals are counted.

    ``starts`` (patient_id -> the patient's first reading ever, ``readings_store.first_readings``) where it
    has the patient, else the patient's first reading in ``bp``. The jobs see a 35-day
    window, so they pass ``starts``: a first reading that slides with the window would open a new
    review period every day.
    """
    first = ns(bp.groupby("patient_id")["measured_at"].transform("min"))
    if starts is None or len(starts) == 0:
        return first
    given = bp["patient_id"].map(pd.to_datetime(starts, utc=True))
    known = given.notna().to_numpy(dtype=bool)
    out = first.copy()
    out[known] = ns(given[known])
    return out


def review_keys(start_ns: np.ndarray, anchor_ns: np.ndarray, warm: np.ndarray) -> list[str]:
    """``review:<start of the patient's review period holding the run's first reading>``.

    Periods are counted from the patient's start (``anchor_ns``): 7-day ones while the baseline
    builds (``warm``), 30-day care-plan ones after. Both schedules' first period starts at the
    patient's start, so it is one episode whichever part of it the runs fall in.
    """
    step = np.where(
        warm,
        int(th.STAGE2_WARMUP_REVIEW_INTERVAL.total_seconds()) * _SEC_NS,
        int(th.STAGE2_REVIEW_INTERVAL.total_seconds()) * _SEC_NS,
    )
    period = anchor_ns + (start_ns - anchor_ns) // step * step
    days = pd.to_datetime(period, utc=True).strftime("%Y-%m-%d")
    return ["review:" + d for d in days]


def split(
    bp: pd.DataFrame,
    run: np.ndarray,
    k: int,
    mean_s: pd.Series,
    mean_d: pd.Series,
    s2: pd.Series,
    d2: pd.Series,
    starts: pd.Series | None = None,
) -> TreatedBaseline:
    """Which runs belong to a stable-high or new patient, and which of those are worsening.

    ``starts``: patient_id -> the patient's first reading (see ``patient_start``)."""
    rows = np.flatnonzero(run)
    first = rows - (k - 1)
    p = prior_stats(bp, first)
    idx = mean_s.index
    enough = p.n >= th.BASELINE_MIN_READINGS
    high = enough & (
        (p.median_s >= s2.to_numpy(dtype="float64")) | (p.median_d >= d2.to_numpy(dtype="float64"))
    )
    warm = ~enough
    t = ns(bp["measured_at"])
    two_days = t[rows] // _DAY_NS != t[first] // _DAY_NS
    worse_s = worse_beyond_noise(
        mean_s.to_numpy(dtype="float64"), p.median_s, p.sd_s, th.STAGE2_WORSENING["systolic_mmhg"], k
    )
    worse_d = worse_beyond_noise(
        mean_d.to_numpy(dtype="float64"), p.median_d, p.sd_d, th.STAGE2_WORSENING["diastolic_mmhg"], k
    )
    worse = (worse_s | worse_d) & two_days & (p.n >= th.STAGE2_WARMUP_MIN_READINGS)
    return TreatedBaseline(
        pd.Series(p.median_s, index=idx),
        pd.Series(p.median_d, index=idx),
        pd.Series(p.n, index=idx),
        high,
        warm,
        (high | warm) & worse,
        pd.Series(review_keys(t[first], patient_start(bp, starts)[first], warm), index=idx, dtype=object),
    )
