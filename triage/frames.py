"""The shapes rules read and write: the readings frame and the candidate-flag frame.

Rules receive readings sorted by (patient_id, measured_at, reading_id) with boolean status columns
already derived (``prepare_readings``), so the hot path never touches Python lists per row.
Every rule returns a frame with exactly ``CANDIDATE_COLUMNS``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from triage.valid_reading import problem_status_names

STATUS_NAMES = (
    "irregular_pulse",
    "body_movement",
    "cuff_too_loose",
    "improper_measurement_position",
)
STATUS_COLUMNS = tuple(f"st_{n}" for n in STATUS_NAMES)
# One boolean per reading: the device reported a measurement problem for its kind (the shared
# definition in triage.valid_reading: not a measuring day, not a billing day).
PROBLEM_COLUMN = "st_problem"

READING_COLUMNS = (
    "reading_id",
    "patient_id",
    "device_id",
    "gateway_id",
    "kind",
    "measured_at",
    "ingested_at",
    "quality",
    "measurement",
    "transmission",
    "systolic_mmhg",
    "diastolic_mmhg",
    "pulse_bpm",
    "glucose_mg_dl",
    "clock_offset_s",
    "weight_kg",
    "spo2_pct",
    "spo2_min_pct",
    *STATUS_COLUMNS,
)

CANDIDATE_COLUMNS = (
    "rule_id",
    "subject_key",
    "patient_id",
    "severity",
    "reason",
    "episode_key",
    "reading_ids",
    "first_reading_at",
    "last_reading_at",
    "value",
    "baseline",
    "unit",
    "confirmation",
    "dedup",
)
NUMBER_COLUMNS = (
    "systolic_mmhg",
    "diastolic_mmhg",
    "pulse_bpm",
    "glucose_mg_dl",
    "clock_offset_s",
    "weight_kg",
    "spo2_pct",
    "spo2_min_pct",
)
SEVERITY_RANK = {"critical": 0, "high": 1, "moderate": 2, "info": 3}
SUPPRESSION_COLUMNS = (
    "rule_id",
    "subject_key",
    "patient_id",
    "severity",
    "episode_key",
    "reading_ids",
    "source",
    "reason",
)


def prepare_readings(raw: pd.DataFrame) -> pd.DataFrame:
    """Sorted copy with UTC times, numeric values and ``st_*`` booleans from ``device_status``."""
    df = raw.copy()
    if df.empty:
        df = df.reindex(columns=list(dict.fromkeys([*READING_COLUMNS[:15], *df.columns])))
    for col in ("measured_at", "ingested_at"):
        if col in df.columns:
            df[col] = pd.to_datetime(df[col], utc=True)
    for col in NUMBER_COLUMNS:
        df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64") if col in df else np.nan
    if "device_status" in df.columns:
        status = df["device_status"].map(lambda s: frozenset(s) if s is not None else frozenset())
        for name, col in zip(STATUS_NAMES, STATUS_COLUMNS, strict=True):
            df[col] = status.map(lambda s, n=name: n in s).astype(bool)
        kinds = df["kind"] if "kind" in df.columns else pd.Series([None] * len(df), index=df.index)
        df[PROBLEM_COLUMN] = [
            bool(s & problem_status_names(k)) if isinstance(k, str) else False
            for s, k in zip(status, kinds, strict=True)
        ]
        df = df.drop(columns=["device_status"])
    for col in STATUS_COLUMNS:
        if col not in df.columns:
            df[col] = False
    if PROBLEM_COLUMN not in df.columns:  # frames built from st_* columns: the blood-pressure bits
        bp = [f"st_{n}" for n in sorted(problem_status_names("blood_pressure")) if f"st_{n}" in df.columns]
        df[PROBLEM_COLUMN] = df[bp].any(axis=1) if bp else False
    df[PROBLEM_COLUMN] = df[PROBLEM_COLUMN].fillna(False).astype(bool)
    for col, default in (("quality", "valid"), ("measurement", "ok"), ("transmission", "automatic")):
        if col not in df.columns:
            df[col] = default
    if "ingested_at" not in df.columns:
        df["ingested_at"] = df["measured_at"]
    df["reading_id"] = df["reading_id"].astype("int64")
    df = df[df["patient_id"].notna()]
    df["patient_id"] = df["patient_id"].astype("int64")
    return df.sort_values(["patient_id", "measured_at", "reading_id"], kind="stable").reset_index(drop=True)


def empty_candidates() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=_dtype(c)) for c in CANDIDATE_COLUMNS})


def empty_suppressions() -> pd.DataFrame:
    return pd.DataFrame(
        {c: pd.Series(dtype="Int64" if c == "patient_id" else object) for c in SUPPRESSION_COLUMNS}
    )


def suppressions(cands: pd.DataFrame, *, source: str, reason: pd.Series | str) -> pd.DataFrame:
    """Suppression rows for these candidates (kept, with the reason, in ``triage_suppressions``)."""
    if cands.empty:
        return empty_suppressions()
    out = cands.loc[
        :, ["rule_id", "subject_key", "patient_id", "severity", "episode_key", "reading_ids"]
    ].copy()
    out["source"] = source
    out["reason"] = reason.to_numpy() if isinstance(reason, pd.Series) else reason
    return out.reset_index(drop=True).loc[:, list(SUPPRESSION_COLUMNS)]


def _dtype(col: str) -> str:
    if col in ("first_reading_at", "last_reading_at"):
        return "datetime64[ns, UTC]"
    if col in ("value", "baseline"):
        return "float64"
    if col == "patient_id":
        return "Int64"
    return "object"


def candidates(
    *,
    rule_id: str,
    patient_id: pd.Series,
    severity: str | pd.Series,
    reason: pd.Series,
    reading_ids: pd.Series,
    first_at: pd.Series,
    last_at: pd.Series,
    value: pd.Series | float = np.nan,
    baseline: pd.Series | float = np.nan,
    unit: str = "",
    episode_key: str | pd.Series = "",
    confirmation: str | pd.Series = "",
    dedup: str = "readings",
    subject_key: pd.Series | None = None,
) -> pd.DataFrame:
    """Assemble a candidate frame from aligned Series (one row per candidate flag)."""
    n = len(patient_id)
    if n == 0:
        return empty_candidates()
    pid = patient_id.reset_index(drop=True)
    out = pd.DataFrame(
        {
            "rule_id": rule_id,
            "subject_key": ("patient:" + pid.astype("int64").astype(str))
            if subject_key is None
            else subject_key.reset_index(drop=True),
            "patient_id": pid.astype("Int64"),
            "severity": _aligned(severity, n),
            "reason": reason.reset_index(drop=True).astype(object),
            "episode_key": _aligned(episode_key, n),
            "reading_ids": reading_ids.reset_index(drop=True).astype(object),
            "first_reading_at": pd.to_datetime(first_at.reset_index(drop=True), utc=True).astype(
                "datetime64[ns, UTC]"
            ),
            "last_reading_at": pd.to_datetime(last_at.reset_index(drop=True), utc=True).astype(
                "datetime64[ns, UTC]"
            ),
            "value": _aligned(value, n, float),
            "baseline": _aligned(baseline, n, float),
            "unit": unit,
            "confirmation": _aligned(confirmation, n),
            "dedup": dedup,
        }
    )
    return out.loc[:, list(CANDIDATE_COLUMNS)]


def _aligned(v: Any, n: int, kind: type = object) -> Any:
    if isinstance(v, pd.Series):
        s = v.reset_index(drop=True)
        return s.astype("float64") if kind is float else s.astype(object)
    return np.full(n, v, dtype="float64") if kind is float else np.full(n, v, dtype=object)


def single_ids(ids: pd.Series) -> pd.Series:
    """Reading-id lists for one-reading candidates."""
    return pd.Series([[int(x)] for x in ids.to_numpy()], dtype=object)


def id_lists(columns: Iterable[pd.Series]) -> pd.Series:
    """Row-wise lists from aligned id columns (NaN/-1 entries dropped)."""
    arr = np.column_stack([np.asarray(c.fillna(-1).to_numpy(), dtype="int64") for c in columns])
    return pd.Series([[int(x) for x in row if x >= 0] for row in arr], dtype=object)


def concat(frames: Iterable[pd.DataFrame]) -> pd.DataFrame:
    parts = [f for f in frames if len(f)]
    if not parts:
        return empty_candidates()
    return pd.concat(parts, ignore_index=True)


def concat_suppressions(frames: Iterable[pd.DataFrame]) -> pd.DataFrame:
    parts = [f for f in frames if len(f)]
    if not parts:
        return empty_suppressions()
    return pd.concat(parts, ignore_index=True)


def fmt(values: pd.Series, digits: int = 0) -> pd.Series:
    """Vectorised number formatting for reasons ('182', '54.5')."""
    v = values.astype("float64").round(digits)
    if digits == 0:
        return v.map("{:.0f}".format).astype(object)
    return v.map(("{:." + str(digits) + "f}").format).astype(object)


def as_records(df: pd.DataFrame) -> list[Mapping[str, Any]]:
    return [{str(k): v for k, v in r.items()} for r in df.to_dict(orient="records")]
