"""Vectorised helpers shared by the rules: subsets, near-duplicate collapse, neighbour lookups.

Readings arrive sorted by (patient_id, measured_at, reading_id), so "the previous reading of the
same patient" is a plain ``shift`` plus an equality test on ``patient_id``: much faster than
``groupby().shift()`` over millions of rows.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd

from triage import frames as fr

DUPLICATE_GAP = timedelta(seconds=30)  # closer than this: the same measurement seen twice, not a re-measure


TECHNIQUE_COLUMNS = ["st_body_movement", "st_cuff_too_loose", "st_improper_measurement_position"]


def valid(readings: pd.DataFrame, kind: str, *, occasions: bool = False) -> pd.DataFrame:
    """Valid readings of one kind: the only rows whose values may alert.

    Movement / cuff-fit / position errors make a value neither alertable nor billable (DOMAIN C5),
    even when the ingest kept the reading as valid. A reading seen twice (same values within
    ``DUPLICATE_GAP``) is one reading. With ``occasions`` (persistence rules: stage 2, pulse and
    ketone confirmation) any reading closer than the gap to the one before is not a new occasion
    either; value rules keep it, since a time-window dedup must never eat a real reading.
    """
    mask = (readings["kind"] == kind) & (readings["quality"] == "valid")
    if kind == "blood_pressure":
        mask &= ~readings[TECHNIQUE_COLUMNS].any(axis=1)
    elif fr.PROBLEM_COLUMN in readings.columns:  # weight / SpO2: the device's own problem bits
        mask &= ~readings[fr.PROBLEM_COLUMN]
    return collapse_duplicates(readings.loc[mask], same_values=not occasions)


VALUE_COLUMNS = (
    "systolic_mmhg",
    "diastolic_mmhg",
    "pulse_bpm",
    "glucose_mg_dl",
    "weight_kg",
    "spo2_pct",
    "measurement",
)


def collapse_duplicates(
    df: pd.DataFrame, gap: timedelta = DUPLICATE_GAP, *, same_values: bool = True
) -> pd.DataFrame:
    """Drop rows that follow a row of the same patient within ``gap`` (kept: the first).

    With ``same_values`` only rows repeating the previous row's values are dropped (the same
    measurement delivered twice); a different value inside the gap is a real reading.
    """
    if len(df) < 2:
        return df.reset_index(drop=True)
    pid = df["patient_id"].to_numpy()
    t = ns(df["measured_at"])
    dup = np.zeros(len(df), dtype=bool)
    dup[1:] = (pid[1:] == pid[:-1]) & ((t[1:] - t[:-1]) < gap // timedelta(microseconds=1) * 1000)
    if same_values and dup.any():
        for col in VALUE_COLUMNS:
            if col in df.columns:
                v = df[col].to_numpy()
                same = (v[1:] == v[:-1]) | (pd.isna(v[1:]) & pd.isna(v[:-1]))
                dup[1:] &= same
    return df.loc[~dup].reset_index(drop=True)


def apart(df: pd.DataFrame, k: int, gap: timedelta = DUPLICATE_GAP) -> np.ndarray:
    """Row ``i`` and row ``i+k`` are at least ``gap`` apart (a separate occasion, e.g. a re-measure)."""
    other_t = df["measured_at"].shift(-k)
    return ((other_t - df["measured_at"]).abs() >= pd.Timedelta(gap)).to_numpy(dtype=bool)


def ns(times: pd.Series) -> np.ndarray:
    """Nanoseconds since the epoch as int64 (tz-aware ``to_numpy()`` would build Timestamp objects)."""
    return np.asarray(times.dt.as_unit("ns").array.asi8)


def neighbour(df: pd.DataFrame, col: str, k: int) -> tuple[pd.Series, np.ndarray]:
    """``col`` shifted by ``k`` rows, and where that row belongs to the same patient."""
    shifted = df[col].shift(k)
    same = (df["patient_id"].shift(k) == df["patient_id"]).to_numpy(dtype=bool)
    return shifted, same


def within(df: pd.DataFrame, k: int, span: timedelta) -> np.ndarray:
    """Row ``i`` and row ``i+k`` (k may be negative) are the same patient and at most ``span`` apart."""
    other_t, same = neighbour(df, "measured_at", -k)
    delta = (other_t - df["measured_at"]).abs() if k else pd.Series(pd.Timedelta(0), index=df.index)
    return same & (delta <= pd.Timedelta(span)).to_numpy(dtype=bool)


def minutes_between(a: pd.Series, b: pd.Series) -> pd.Series:
    return ((b - a).dt.total_seconds() / 60.0).round(1)


def one_reading_candidates(
    sel: pd.DataFrame,
    *,
    rule_id: str,
    severity: str | pd.Series,
    reason: pd.Series,
    value: pd.Series | float = np.nan,
    baseline: pd.Series | float = np.nan,
    unit: str = "",
    episode_key: str = "",
    subject_key: pd.Series | None = None,
) -> pd.DataFrame:
    """One candidate per selected reading, that reading alone its evidence (first = last = it)."""
    return fr.candidates(
        rule_id=rule_id,
        patient_id=sel["patient_id"],
        severity=severity,
        reason=reason,
        reading_ids=fr.single_ids(sel["reading_id"]),
        first_at=sel["measured_at"],
        last_at=sel["measured_at"],
        value=value,
        baseline=baseline,
        unit=unit,
        episode_key=episode_key,
        subject_key=subject_key,
    )


def confirmed_pair_candidates(
    df: pd.DataFrame,
    hit: np.ndarray,
    *,
    rule_id: str,
    severity: str,
    reason: pd.Series,
    value_col: str,
    unit: str,
) -> pd.DataFrame:
    """One candidate per hit row confirmed by the row before it: both readings are the evidence."""
    sel = df.loc[hit]
    return fr.candidates(
        rule_id=rule_id,
        patient_id=sel["patient_id"],
        severity=severity,
        reason=reason,
        reading_ids=fr.id_lists([df["reading_id"].shift(1).loc[hit], sel["reading_id"]]),
        first_at=df["measured_at"].shift(1).loc[hit],
        last_at=sel["measured_at"],
        value=sel[value_col],
        unit=unit,
    )
