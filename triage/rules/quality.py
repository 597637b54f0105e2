"""Device and data-quality rules: irregular pulse, measurement technique, clock drift, failures.

These read the device's own status and error reports; none of them alerts on a value.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from triage import frames as fr
from triage import thresholds as th
from triage.limits import DEFAULTS, Limits
from triage.rules._common import ns, one_reading_candidates, valid


def irregular_pulse(readings: pd.DataFrame, *, now: datetime, limits: Limits = DEFAULTS) -> pd.DataFrame:
    """The cuff's irregular-heartbeat flag on a valid reading is surfaced, not ignored (DOMAIN C1)."""
    bp = valid(readings, "blood_pressure")
    sel = bp.loc[bp["st_irregular_pulse"].to_numpy(dtype=bool)]
    reason = pd.Series(
        "The cuff reported an irregular heartbeat during the measurement; consider an ECG "
        "(atrial fibrillation screening) if it recurs.",
        index=sel.index,
    )
    return one_reading_candidates(
        sel,
        rule_id="irregular_pulse",
        severity="moderate",
        reason=reason,
        value=sel["pulse_bpm"],
        unit=th.Unit.BPM.value,
    )


def _kth_within(df: pd.DataFrame, key: str, k: int, span: timedelta) -> np.ndarray:
    """Rows that are at least the k-th row of their ``key`` group within ``span`` (df sorted by key, time)."""
    n = len(df)
    hit = np.zeros(n, dtype=bool)
    if n < k:
        return hit
    keys = df[key].to_numpy()
    t = ns(df["measured_at"])
    hit[k - 1 :] = (keys[k - 1 :] == keys[: n - k + 1]) & (
        (t[k - 1 :] - t[: n - k + 1]) <= span // timedelta(microseconds=1) * 1000
    )
    return hit


def _device_key(sel: pd.DataFrame) -> pd.Series:
    """Device findings are deduplicated per device, not per patient."""
    return "device:" + sel["device_id"].astype(str)


def _recurring(
    df: pd.DataFrame,
    *,
    per_device: bool,
    k: int,
    span: timedelta,
    rule_id: str,
    severity: str,
    message: str,
) -> pd.DataFrame:
    """One candidate where an event recurs k times within ``span``; the k readings are its evidence.

    ``df`` holds only the events, sorted by device (``per_device``) or patient, then time.
    """
    hit = _kth_within(df, "device_id" if per_device else "patient_id", k, span)
    sel = df.loc[hit]
    return fr.candidates(
        rule_id=rule_id,
        patient_id=sel["patient_id"],
        severity=severity,
        reason=pd.Series(message, index=sel.index),
        reading_ids=fr.id_lists([df["reading_id"].shift(j).loc[hit] for j in range(k - 1, -1, -1)]),
        first_at=df["measured_at"].shift(k - 1).loc[hit],
        last_at=sel["measured_at"],
        subject_key=_device_key(sel) if per_device else None,
    )


def measurement_technique(
    readings: pd.DataFrame, *, now: datetime, limits: Limits = DEFAULTS
) -> pd.DataFrame:
    """>= 3 readings with body movement / loose cuff / bad position within 7 days: coach the patient."""
    cols = [f"st_{n}" for n in th.TECHNIQUE_STATUS]
    mask = (readings["kind"] == "blood_pressure") & readings[cols].any(axis=1)
    df = readings.loc[mask].reset_index(drop=True)
    k = th.TECHNIQUE_LIMIT
    return _recurring(
        df,
        per_device=False,
        k=k,
        span=th.TECHNIQUE_WINDOW,
        rule_id="measurement_technique",
        severity="info",
        message=f"{k} readings within 7 days flagged body movement, a loose cuff or a bad position: these "
        "are neither alertable nor billable. Coach the patient on cuff technique.",
    )


def clock_drift(readings: pd.DataFrame, *, now: datetime, limits: Limits = DEFAULTS) -> pd.DataFrame:
    """Device clock more than 10 min off the gateway's: device logistics (set the time via CTS)."""
    off = readings["clock_offset_s"]
    sel = readings.loc[off.abs() > th.CLOCK_DRIFT_LIMIT_S]
    reason = (
        "Device clock is "
        + fr.fmt(sel["clock_offset_s"] / 60.0, 1)
        + " min off the gateway clock (limit 10 min); times were corrected, set the device clock."
    )
    return one_reading_candidates(
        sel,
        rule_id="device_clock_drift",
        severity="info",
        reason=reason,
        value=sel["clock_offset_s"],
        unit=th.Unit.SECONDS.value,
        subject_key=_device_key(sel),
    )


def repeated_failures(readings: pd.DataFrame, *, now: datetime, limits: Limits = DEFAULTS) -> pd.DataFrame:
    """>= 3 failed measurements (device error, not HI/LO) of one device within 24 h."""
    mask = (readings["quality"] == "failed") & ~readings["measurement"].isin(
        ["out_of_range_low", "out_of_range_high"]
    )
    df = (
        readings.loc[mask]
        .sort_values(["device_id", "measured_at", "reading_id"], kind="stable")
        .reset_index(drop=True)
    )
    k = th.FAILED_MEASUREMENTS_LIMIT
    return _recurring(
        df,
        per_device=True,
        k=k,
        span=th.FAILED_MEASUREMENTS_WINDOW,
        rule_id="device_repeated_failures",
        severity="moderate",
        message=f"{k} failed measurements within 24 h on this device: check the cuff/meter, batteries "
        "and strips; replace if it keeps failing.",
    )
