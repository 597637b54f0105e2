"""A patient's own blood-pressure level at each time of day, and how far a reading stands from it.

Morning readings run higher than evening ones (the morning surge), so against one 24-hour mean a
patient's spread is inflated by their own routine and a rise has to be larger to stand out. Here
each patient's baseline is a cosinor fit (level + a 24-hour cosine; Halberg's cosinor, as used
for ambulatory BP, e.g. Cornelissen, Theor Biol Med Model 2014) of their clipped readings in the
``TREND_BASELINE`` window ending ``TREND_WINDOW`` before the reading, evaluated at the reading's
own time of day. It needs no time zone: the clock phase is fitted per patient. A patient who
always measures at one time gets their plain mean (the harmonic terms are shrunk by a small ridge,
so a fit with no spread in time of day stays defined).

Only systolic is scored (``triage.rules.cusum``): adding diastolic, even weighted by the
patient's own residual correlation, helps only while the two pressures' noise is independent; at a
home-reading correlation of about 0.6 it is slower, most of all for an isolated systolic rise
(docs/triage.md, measured with ``bench/trend_variants.py``).

Vectorised: the fit's normal equations come from per-patient rolling sums, one 3x3 solve per row.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from triage import thresholds as th
from triage.rules._common import ns

DAY_NS = 86_400 * 1_000_000_000
IQR_TO_SD = 1.349  # the IQR of a normal distribution in SDs
HARMONIC_RIDGE = 1.0  # in readings: shrinks the time-of-day terms when the times barely vary


def rolling(d: pd.DataFrame, cols: str | list[str], window: str) -> Any:
    """Time-window rolling per patient; rows are sorted by patient, so results keep the row order."""
    return d.set_index("measured_at").groupby("patient_id", sort=False)[cols].rolling(window)


def clipped(d: pd.DataFrame, col: str, sd_floor: float) -> np.ndarray:
    """``col`` clipped to ``TREND_CLIP_SDS`` robust SDs (IQR / 1.349, at least ``sd_floor``) around
    the median of the baseline-length window ending at each reading: one crisis reading must not
    inflate a patient's SD for three weeks."""
    roll = rolling(d, col, f"{th.TREND_BASELINE.days}D")
    med = roll.median().to_numpy()
    iqr = roll.quantile(0.75).to_numpy() - roll.quantile(0.25).to_numpy()
    reach = th.TREND_CLIP_SDS * np.maximum(iqr / IQR_TO_SD, sd_floor)
    out: np.ndarray = np.clip(d[col].to_numpy(dtype="float64"), med - reach, med + reach)
    return out


def _features(d: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    theta = 2 * np.pi * (ns(d["measured_at"]) % DAY_NS) / DAY_NS
    return np.cos(theta), np.sin(theta)


def _lagged_sums(d: pd.DataFrame, terms: dict[str, np.ndarray]) -> pd.DataFrame:
    """Per row: rolling sums of ``terms`` over the baseline window that ends ``TREND_WINDOW`` before it."""
    frame = pd.DataFrame(terms).assign(
        patient_id=d["patient_id"].to_numpy(), measured_at=d["measured_at"].to_numpy()
    )
    sums = rolling(frame, list(terms), f"{th.TREND_BASELINE.days}D").sum().reset_index(drop=True)
    sums["patient_id"] = frame["patient_id"]
    sums["at"] = frame["measured_at"]
    left = pd.DataFrame(
        {
            "patient_id": frame["patient_id"],
            "at": frame["measured_at"] - pd.Timedelta(th.TREND_WINDOW),
            "row": np.arange(len(d)),
        }
    ).sort_values("at", kind="stable")
    m = pd.merge_asof(left, sums.sort_values("at", kind="stable"), on="at", by="patient_id")
    return m.sort_values("row").reset_index(drop=True).fillna({"n": 0.0})


def _normal_matrix(s: pd.DataFrame) -> np.ndarray:
    cols = [["n", "c", "s"], ["c", "cc", "cs"], ["s", "cs", "ss"]]
    a: np.ndarray = np.stack([np.stack([s[k].to_numpy() for k in row], axis=-1) for row in cols], axis=-2)
    out: np.ndarray = np.nan_to_num(a.astype("float64"))
    return out


def diurnal_residuals(d: pd.DataFrame, floors: dict[str, float]) -> pd.DataFrame:
    """Per reading and column of ``floors``: ``{col}_level`` (the cosinor fit at the reading's time
    of day), ``{col}_sd`` (the residual SD, at least the floor) and ``b_n``. NaN where the window
    holds fewer than 4 readings."""
    c, s = _features(d)
    ys = [clipped(d, col, floor) for col, floor in floors.items()]
    terms = {"n": np.ones(len(d)), "c": c, "s": s, "cc": c * c, "cs": c * s, "ss": s * s}
    for k, y in enumerate(ys):
        terms |= {f"y{k}": y, f"y{k}c": y * c, f"y{k}s": y * s, f"y{k}y{k}": y * y}
    sums = _lagged_sums(d, terms)
    n = sums["n"].to_numpy()
    ok = n >= 4
    a0 = _normal_matrix(sums)
    a0[~ok] = np.eye(3)
    a = a0 + np.diag([0.0, HARMONIC_RIDGE, HARMONIC_RIDGE])
    f = np.stack([np.ones(len(d)), c, s], axis=-1)
    dof = np.where(ok, np.maximum(n - 3, 1), np.nan)
    out = pd.DataFrame({"b_n": n.astype("int64")})
    for k, (col, floor) in enumerate(floors.items()):
        b = np.nan_to_num(
            np.stack([sums[f"y{k}"], sums[f"y{k}c"], sums[f"y{k}s"]], axis=-1).astype("float64")
        )
        beta = np.linalg.solve(a, b[..., None])[..., 0]
        rss = sums[f"y{k}y{k}"].to_numpy() - 2 * np.einsum("ij,ij->i", beta, b) + _quad(beta, a0, beta)
        out[f"{col}_level"] = np.where(ok, np.einsum("ij,ij->i", f, beta), np.nan)
        out[f"{col}_sd"] = np.maximum(np.sqrt(np.maximum(rss, 0.0) / dof), floor)
    return out


def _quad(u: np.ndarray, a: np.ndarray, v: np.ndarray) -> np.ndarray:
    q: np.ndarray = np.einsum("ij,ijk,ik->i", u, a, v)
    return q
