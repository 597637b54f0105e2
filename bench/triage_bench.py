"""Triage throughput: a full pass over ~10 M readings and an incremental pass over 1,000 new ones.

Builds 100,000 patients x 30 days in memory (numpy, vectorised: every patient has a cuff twice a
day, half also a meter three times a day, with noise and a sprinkle of crises/hypos/device
faults), then times the same pure functions the jobs call:

* full pass: ``evaluate_readings`` (all value rules) + ``evaluate_daily`` (trend, adherence)
  over every row;
* incremental pass: the patients of 1,000 new readings are sliced out of the sorted frame (the
  job's load step, done here in memory), evaluated, and candidates kept only where they involve a
  new reading (what ``IncrementalJob`` does before it upserts).

Usage: ``.venv/bin/python bench/triage_bench.py [--patients 100000] [--days 30]``
Targets (2 cores): full < 60 s, incremental < 1 s.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from triage.frames import PROBLEM_COLUMN, STATUS_COLUMNS
from triage.rules import evaluate_daily, evaluate_readings

ZONES = ["America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles"]


def build(n_patients: int, days: int, seed: int = 3) -> tuple[pd.DataFrame, pd.DataFrame, datetime]:
    rng = np.random.default_rng(seed)
    start = np.datetime64("2026-02-01T00:00", "s")
    now = datetime(2026, 2, 1, tzinfo=UTC) + pd.Timedelta(days=days)
    pid = np.arange(1, n_patients + 1)
    base_sbp = rng.normal(127, 6, n_patients)
    base_g = rng.normal(135, 12, n_patients)
    diabetic = rng.random(n_patients) < 0.5

    def block(kind: str, per_day: int, who: np.ndarray, hours: list[float]) -> pd.DataFrame:
        n = len(who) * days * per_day
        p = np.repeat(who, days * per_day)
        day = np.tile(np.repeat(np.arange(days), per_day), len(who))
        slot = np.tile(np.array(hours), len(who) * days)
        secs = day * 86400 + (slot + rng.random(n)) * 3600
        keep = rng.random(n) < 0.85  # adherence
        df = pd.DataFrame({"patient_id": p[keep], "measured_at": start + secs[keep].astype("timedelta64[s]")})
        m = len(df)
        df["kind"] = kind
        if kind == "blood_pressure":
            sbp = base_sbp[df["patient_id"].to_numpy() - 1] + rng.normal(0, 6, m)
            crisis = rng.random(m) < 2e-4
            sbp[crisis] = 190
            df["systolic_mmhg"] = sbp.round()
            df["diastolic_mmhg"] = (sbp * 0.62 + rng.normal(0, 4, m)).round()
            df["pulse_bpm"] = rng.normal(70, 6, m).round()
            df["glucose_mg_dl"] = np.nan
            df["device_id"] = "BP-" + df["patient_id"].astype(str)
        else:
            g = base_g[df["patient_id"].to_numpy() - 1] + rng.normal(0, 18, m)
            g[rng.random(m) < 3e-4] = 48
            df["systolic_mmhg"] = np.nan
            df["diastolic_mmhg"] = np.nan
            df["pulse_bpm"] = np.nan
            df["glucose_mg_dl"] = g.round()
            df["device_id"] = "GL-" + df["patient_id"].astype(str)
        return df

    df = pd.concat(
        [block("blood_pressure", 2, pid, [7.0, 20.0]), block("glucose", 3, pid[diabetic], [7.0, 12.5, 19.0])],
        ignore_index=True,
    )
    df["measured_at"] = df["measured_at"].dt.tz_localize("UTC").astype("datetime64[ns, UTC]")
    df = df.sort_values(["patient_id", "measured_at"], kind="stable").reset_index(drop=True)
    n = len(df)
    df["reading_id"] = np.arange(1, n + 1, dtype="int64")
    df["gateway_id"] = "gw"
    df["ingested_at"] = df["measured_at"]
    fail = rng.random(n) < 5e-4
    df["quality"] = np.where(fail, "failed", "valid")
    df["measurement"] = np.where(fail, "failed", "ok")
    df["transmission"] = "automatic"
    df["clock_offset_s"] = 0.0
    for col in ("weight_kg", "spo2_pct", "spo2_min_pct"):  # no scales or oximeters in this population
        df[col] = np.nan
    for col in STATUS_COLUMNS:
        df[col] = False
    df["st_irregular_pulse"] = (df["kind"] == "blood_pressure") & (rng.random(n) < 2e-4)
    df[PROBLEM_COLUMN] = False  # no measurement-problem status in this population
    for col in ("kind", "quality", "measurement", "transmission", "gateway_id", "device_id"):
        df[col] = df[col].astype("category")
    patients = pd.DataFrame(
        {
            "patient_id": pid,
            "timezone": rng.choice(ZONES, n_patients),
            "enrolled_at": pd.Timestamp("2026-01-20", tz="UTC"),
        }
    )
    return df, patients, now


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    ap.add_argument("--patients", type=int, default=100_000)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--new", type=int, default=1_000)
    args = ap.parse_args()
    t = time.perf_counter()
    df, patients, now = build(args.patients, args.days)
    built = time.perf_counter() - t
    print(
        f"built {len(df):,} readings for {args.patients:,} patients x {args.days} days in {built:.1f} s "
        f"({df.memory_usage(deep=True).sum() / 1e9:.2f} GB)"
    )

    t = time.perf_counter()
    values = evaluate_readings(df, now=now)
    t_values = time.perf_counter() - t
    t = time.perf_counter()
    daily = evaluate_daily(df, now=now, patients=patients)
    t_daily = time.perf_counter() - t
    full = t_values + t_daily

    # Incremental: 1,000 new readings (the latest ones of random patients).
    rng = np.random.default_rng(11)
    last_of = df.groupby("patient_id", observed=True)["reading_id"].max()
    new_ids = set(rng.choice(last_of.to_numpy(), size=min(args.new, len(last_of)), replace=False).tolist())
    t = time.perf_counter()
    pids = df.loc[df["reading_id"].isin(new_ids), "patient_id"].unique()
    pid_arr = df["patient_id"].to_numpy()
    lo = np.searchsorted(pid_arr, np.sort(pids), side="left")
    hi = np.searchsorted(pid_arr, np.sort(pids), side="right")
    rows = np.concatenate([np.arange(a, b) for a, b in zip(lo, hi, strict=True)])
    window = df.iloc[rows]
    inc = evaluate_readings(window, now=now)
    kept = inc.candidates[inc.candidates["reading_ids"].map(lambda xs: any(x in new_ids for x in xs))]
    t_inc = time.perf_counter() - t

    print()
    print("| pass | rows | seconds | rows/s | candidates | target |")
    print("|---|---:|---:|---:|---:|---|")
    print(
        f"| full: value rules | {len(df):,} | {t_values:.2f} | {len(df) / t_values:,.0f} | "
        f"{len(values.candidates):,} | |"
    )
    print(
        f"| full: daily rules (trend, adherence) | {len(df):,} | {t_daily:.2f} | {len(df) / t_daily:,.0f} | "
        f"{len(daily.candidates):,} | |"
    )
    print(
        f"| **full pass** | {len(df):,} | **{full:.2f}** | {len(df) / full:,.0f} | "
        f"{len(values.candidates) + len(daily.candidates):,} | < 60 s |"
    )
    print(
        f"| **incremental** ({len(new_ids):,} new readings, {len(pids):,} patients) | {len(window):,} | "
        f"**{t_inc:.3f}** | {len(window) / t_inc:,.0f} | {len(kept):,} | < 1 s |"
    )
    print()
    print("candidates by rule (full pass):")
    allc = pd.concat([values.candidates, daily.candidates])
    for rule, n in allc["rule_id"].value_counts().items():
        print(f"  {rule:28s} {n:,}")


if __name__ == "__main__":
    main()
