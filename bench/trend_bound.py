"""How fast can a gradual BP rise be found at a given false-alarm rate? The detector against an oracle.

Runs only ``trend_cusum`` on ``simulators.population`` (no cohorts, no other rules: seconds, not
minutes) and prints, per seed, its trend flags per stable patient-month (distinct flag episodes of
patients with no injected event) and the median days from each ``bp_gradual_rise`` to its first
upward systolic trend candidate.

Then the bound: an oracle that knows each rise's onset and its shape (a linear ramp) and sums the
detector's own per-reading score ``z`` (systolic residuals from the time-of-day level) matched to
that ramp, ``S = sum(w z) / sqrt(sum(w^2))`` with ``w`` the days since the onset, raising a flag the
first time ``S`` reaches ``H`` within 14 days. Its false alarms come from the same statistic on
stable patients started at days 30, 44, 58 and 72 (14-day windows, as one trend flag per 14 days).
Printed per ``H``: false flags per stable patient-month, median days to flag, share found by day 5.
Compare the detector's row with the oracle's at the same rate.

Bench-only population variants (the default population is untouched): ``--bp-noise-rho R`` draws
each cuff reading's diastolic noise with correlation ``R`` to its systolic noise (home readings:
about 0.5-0.7; the simulator draws them independently), ``--isolated-systolic`` leaves diastolic
flat during a gradual rise. Both keep the random stream, so everything else is the same population.

Usage: ``.venv/bin/python bench/trend_bound.py [--patients 300] [--seeds 7,1,2,3]
[--bp-noise-rho 0.6] [--isolated-systolic]``
"""

from __future__ import annotations

import argparse
import math
import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

import simulators.population_readings as readings
from simulators.population import generate
from simulators.population_model import RISE_DAYS, RISE_SBP, InjectedEvent
from triage.frames import prepare_readings
from triage.rules._common import ns, valid
from triage.rules.cusum import blood_pressure_scores, trend_cusum

HORIZON_DAYS = 14.0
DAY_NS = 86_400e9


class CorrelatedCuff(random.Random):
    """The simulator's generator, but a cuff reading's diastolic noise (its draw of SD 4 right after
    the systolic one of SD 6) correlated ``rho`` with the systolic noise; one normal draw each, as before."""

    def __init__(self, rng: random.Random, rho: float) -> None:
        super().__init__()
        self.setstate(rng.getstate())
        self.rho = rho
        self.last: float | None = None

    def gauss(self, mu: float = 0.0, sigma: float = 1.0) -> float:
        e, self.last = self.last, None
        if sigma == 6:
            e = self.last = super().gauss(0.0, 1.0)
            return mu + 6 * e
        if sigma == 4 and e is not None:
            return mu + 4 * (self.rho * e + math.sqrt(1 - self.rho**2) * super().gauss(0.0, 1.0))
        return super().gauss(mu, sigma)


def vary_bp(rho: float, isolated_systolic: bool) -> None:
    """Patch the simulator's cuff routine for this process only (see the module's usage)."""
    routine = readings._bp_routine

    def varied(prof: Any, t0: Any, day: int, on: bool, drift: float, rng: random.Random) -> Iterator[Any]:
        cuff = CorrelatedCuff(rng, rho)
        started = prof.rise_start is not None and day >= prof.rise_start
        rise = min(day - prof.rise_start, RISE_DAYS) / RISE_DAYS * RISE_SBP if started else 0.0
        for row in routine(prof, t0, day, on, drift, cuff):
            if isolated_systolic and rise:
                row["diastolic_mmhg"] = round(row["diastolic_mmhg"] - rise / 2.5)
            yield row
        rng.setstate(cuff.getstate())

    readings._bp_routine = varied  # type: ignore[assignment]


def population(
    n: int, days: int, seed: int
) -> tuple[pd.DataFrame, list[InjectedEvent], list[int], pd.Timestamp]:
    pop = generate(n, days, seed=seed)
    raw = pd.DataFrame(list(pop.readings())).drop(columns=["payload", "original", "raw_hex"])
    with_events = {e.patient_id for e in pop.events}
    stable = [p.patient_id for p in pop.profiles if p.patient_id not in with_events]
    return prepare_readings(raw), pop.events, stable, pd.Timestamp(pop.start)


def detector(
    r: pd.DataFrame, events: list[InjectedEvent], stable: list[int], months: float
) -> tuple[float, float]:
    """Trend flags per stable patient-month and the median days to flag a BP rise."""
    c = trend_cusum(r, now=r["measured_at"].max().to_pydatetime())
    c = c[c["episode_key"].str.startswith("systolic_mmhg:") | c["episode_key"].str.startswith("weight_kg:")]
    rate = (
        len(c[c["patient_id"].isin(stable)].drop_duplicates(["patient_id", "episode_key"]))
        / len(stable)
        / months
    )
    days = []
    for e in events:
        if e.event != "bp_gradual_rise":
            continue
        start = pd.Timestamp(e.start)
        f = c[
            (c["patient_id"] == e.patient_id)
            & (c["last_reading_at"] >= start - pd.Timedelta(hours=1))
            & (c["last_reading_at"] <= pd.Timestamp(e.end) + pd.Timedelta(days=7))
            & (c["value"] > c["baseline"])
            & c["episode_key"].str.startswith("systolic_mmhg:")
        ]
        days.append((f["last_reading_at"].min() - start).total_seconds() / 86400 if len(f) else np.inf)
    return rate, float(np.median(days))


def scores(r: pd.DataFrame) -> dict[int, pd.DataFrame]:
    """Per patient: reading time (days) and the detector's own BP score, where it has a baseline."""
    d = valid(r, "blood_pressure")
    d = d[d["systolic_mmhg"].notna()].reset_index(drop=True)
    d, z = blood_pressure_scores(d.assign(x=d["systolic_mmhg"].astype("float64")))
    out = pd.DataFrame({"pid": d["patient_id"].to_numpy(), "t": ns(d["measured_at"]) / DAY_NS, "z": z})
    return {int(str(p)): g for p, g in out.groupby("pid")}


def ramp_path(g: pd.DataFrame, onset: float) -> tuple[np.ndarray, np.ndarray]:
    """Days since ``onset`` and the ramp-matched statistic at each reading of the horizon."""
    g = g[(g["t"] > onset) & (g["t"] <= onset + HORIZON_DAYS)]
    w = g["t"].to_numpy() - onset
    s: np.ndarray = np.cumsum(w * g["z"].to_numpy()) / np.sqrt(np.cumsum(w * w))
    return w, s


def main() -> None:
    ap = argparse.ArgumentParser(description="gradual BP rise: detector against an oracle")
    ap.add_argument("--patients", type=int, default=300)
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--seeds", default="7,1,2,3")
    ap.add_argument("--bp-noise-rho", type=float, default=0.0)
    ap.add_argument("--isolated-systolic", action="store_true")
    args = ap.parse_args()
    if args.bp_noise_rho or args.isolated_systolic:
        vary_bp(args.bp_noise_rho, args.isolated_systolic)
    months = args.days / 30.0
    null, rises = [], []
    print("| seed | trend flags / stable patient-month | bp_gradual_rise median days | rises |")
    print("|---:|---:|---:|---:|")
    for seed in (int(s) for s in args.seeds.split(",")):
        r, events, stable, start = population(args.patients, args.days, seed)
        rate, median = detector(r, events, stable, months)
        bp = [e for e in events if e.event == "bp_gradual_rise"]
        print(f"| {seed} | {rate:.3f} | {median:.2f} | {len(bp)} |")
        by = scores(r)
        t0 = start.value / DAY_NS
        null += [ramp_path(by[p], t0 + day) for p in stable if p in by for day in (30, 44, 58, 72)]
        rises += [
            ramp_path(by[e.patient_id], pd.Timestamp(e.start).value / DAY_NS)
            for e in bp
            if e.patient_id in by
        ]
    print()
    print("| oracle H | false flags / stable patient-month | median days to flag | found by day 5 |")
    print("|---:|---:|---:|---:|")
    null_months = len(null) * HORIZON_DAYS / 30.0
    for h in np.arange(1.8, 3.55, 0.1):
        fa = sum(bool((s >= h).any()) for _, s in null) / null_months
        found = [w[np.argmax(s >= h)] if (s >= h).any() else np.inf for w, s in rises]
        print(f"| {h:.1f} | {fa:.3f} | {np.median(found):.2f} | {np.mean(np.array(found) <= 5):.0%} |")


if __name__ == "__main__":
    main()
