"""Extra simulated cohorts for the triage quality report (issue 16): the patients the first
population lacked, each with ground-truthed events.

* ``heart_failure``: a scale, one morning weighing a day (sd 0.3 kg). Events: decompensation
  (+1.0-1.4 kg a day for two days, then held: critical), a slow gain (+0.25 kg a day for 8 days, below the
  week line: the trend detector's job).
* ``copd``: an oximeter, two spot checks a day (93-97 %). Events: sustained desaturation (two
  checks 86-89 % ten minutes apart: critical) and one reading under the 85 % floor (critical).
* ``stable_high``: a steady 145/92 under treatment, two readings a day, no events.
* ``single_reading``: one BP reading per session; event: a sustained pulse of 128-145 on four
  readings over two days.
* ``non_adherent``: BP patients who stop measuring for 5-8 days and come back (nurse outreach).

Standard library only, deterministic for the seed. Rows carry the columns the triage frames read
(no GATT bytes: the quality report does not decode). Patient ids start above the main
population's, reading ids above ``first_reading_id``.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from simulators.population_model import InjectedEvent

COHORTS = ("heart_failure", "copd", "stable_high", "single_reading", "non_adherent")
KIND_OF = {"heart_failure": "weight", "copd": "spo2"}
DEVICE_PREFIX = {"blood_pressure": "BPX", "weight": "SCX", "spo2": "OXX"}
ZONE = "America/Chicago"  # UTC-6 (UTC-5 in summer): hours below are chosen to stay on one local day


@dataclass
class CohortPatient:
    patient_id: int
    cohort: str
    kind: str
    device_id: str
    gateway_id: str
    level: float
    readings: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Cohorts:
    patients: list[CohortPatient]
    events: list[InjectedEvent]
    start: datetime
    days: int

    def readings(self, first_reading_id: int) -> Iterator[dict[str, Any]]:
        rid = first_reading_id
        for p in self.patients:
            for row in p.readings:
                rid += 1
                yield {**row, "reading_id": rid}

    def cohort_of(self) -> dict[int, str]:
        return {p.patient_id: p.cohort for p in self.patients}


def _row(p: CohortPatient, at: datetime, rng: random.Random, **values: Any) -> dict[str, Any]:
    received = at + timedelta(seconds=rng.uniform(5, 600))
    row: dict[str, Any] = {
        "patient_id": p.patient_id,
        "device_id": p.device_id,
        "gateway_id": p.gateway_id,
        "kind": p.kind,
        "measured_at": at,
        "ingested_at": received + timedelta(seconds=rng.uniform(0.05, 1.5)),
        "quality": "valid",
        "measurement": "ok",
        "transmission": "automatic",
        "clock_offset_s": 0.0,
        "device_status": [],
        "systolic_mmhg": None,
        "diastolic_mmhg": None,
        "pulse_bpm": None,
        "glucose_mg_dl": None,
        "weight_kg": None,
        "spo2_pct": None,
        "spo2_min_pct": None,
    }
    row.update(values)
    return row


def _hour(t0: datetime, day: int, hour: float) -> datetime:
    return t0 + timedelta(days=day, hours=hour)


def _weights(p: CohortPatient, t0: datetime, days: int, rng: random.Random, out: list[InjectedEvent]) -> None:
    gain = [0.0] * days
    kind = rng.choice(["decompensation", "slow_gain", "none"])
    d0 = rng.randrange(30, days - 10)
    if kind == "decompensation":  # about 1 kg a day for two days, then held
        jump = rng.uniform(1.0, 1.4)
        gain = [jump * min(max(d - d0 + 1, 0), 2) for d in range(days)]
        at = _hour(t0, d0, 13.0)
        end = _hour(t0, d0 + 1, 14.0)
        out.append(
            InjectedEvent(p.patient_id, "hf_decompensation", at, end, True, ("weight_gain", "trend_cusum"))
        )
    elif kind == "slow_gain":
        gain = [min(max(d - d0 + 1, 0), 8) * 0.25 for d in range(days)]
        at = _hour(t0, d0, 13.0)
        end = _hour(t0, d0 + 8, 13.0)
        out.append(
            InjectedEvent(p.patient_id, "weight_gradual_rise", at, end, False, ("trend_cusum", "weight_gain"))
        )
    for d in range(days):
        if rng.random() < 0.9:
            kg = round(p.level + gain[d] + rng.gauss(0, 0.3), 1)
            p.readings.append(_row(p, _hour(t0, d, 13.0 + rng.random()), rng, weight_kg=kg))


def _spo2(p: CohortPatient, t0: datetime, days: int, rng: random.Random, out: list[InjectedEvent]) -> None:
    kind = rng.choice(["sustained", "floor", "none"])
    d0 = rng.randrange(10, days - 3)
    for d in range(days):
        for hour in (14.0, 26.0):
            if rng.random() < 0.9:
                pct = min(round(p.level + rng.gauss(0, 1.0)), 99)
                p.readings.append(_row(p, _hour(t0, d, hour + rng.random()), rng, spo2_pct=pct, pulse_bpm=78))
        if d == d0 and kind != "none":
            at = _hour(t0, d, 18.0)
            if kind == "sustained":
                for k in range(2):
                    pct = rng.randint(86, 89)
                    p.readings.append(
                        _row(p, at + timedelta(minutes=10 * k), rng, spo2_pct=pct, pulse_bpm=96)
                    )
                out.append(
                    InjectedEvent(
                        p.patient_id,
                        "desaturation_sustained",
                        at,
                        at + timedelta(minutes=10),
                        True,
                        ("spo2_low", "spo2_critical"),
                    )
                )
            else:
                p.readings.append(_row(p, at, rng, spo2_pct=rng.randint(78, 84), pulse_bpm=104))
                out.append(
                    InjectedEvent(p.patient_id, "desaturation_critical", at, at, True, ("spo2_critical",))
                )


def _bp(p: CohortPatient, t0: datetime, days: int, rng: random.Random, out: list[InjectedEvent]) -> None:
    sessions = (14.0,) if p.cohort == "single_reading" else (13.0, 26.0)
    silent: set[int] = set()
    pulse_at: dict[int, float] = {}
    if p.cohort == "non_adherent":
        d0 = rng.randrange(20, days - 10)
        silent = set(range(d0, d0 + rng.randint(5, 8)))
        start = _hour(t0, d0, 4.0)  # after the previous day's late session (up to 03:00)
        end = _hour(t0, max(silent) + 1, 13.0)  # the first session back
        out.append(
            InjectedEvent(p.patient_id, "not_measuring", start, end, False, ("patient_not_measuring",))
        )
    if p.cohort == "single_reading" and rng.random() < 0.7:
        d0 = rng.randrange(20, days - 4)
        pulse_at = {d0: 14.0, d0 + 1: 14.0, d0 + 2: 14.0}
        at = _hour(t0, d0, 14.0)
        out.append(
            InjectedEvent(
                p.patient_id, "sustained_pulse", at, at + timedelta(days=2), False, ("pulse_out_of_range",)
            )
        )
    dbp_level = 92.0 if p.cohort == "stable_high" else 80.0
    for d in range(days):
        if d in silent:
            continue
        for hour in sessions:
            forced = d in pulse_at
            if not forced and rng.random() > 0.9:
                continue
            pulse = rng.randint(128, 145) if forced else round(72 + rng.gauss(0, 4))
            at = _hour(t0, d, hour + (0.0 if forced else rng.random()))
            sbp, dbp = round(p.level + rng.gauss(0, 6)), round(dbp_level + rng.gauss(0, 4))
            p.readings.append(_row(p, at, rng, systolic_mmhg=sbp, diastolic_mmhg=dbp, pulse_bpm=pulse))
        if d in pulse_at and d == max(pulse_at):  # the fourth reading of the two-day run
            at = _hour(t0, d, 20.0)
            p.readings.append(
                _row(
                    p,
                    at,
                    rng,
                    systolic_mmhg=round(p.level),
                    diastolic_mmhg=80,
                    pulse_bpm=rng.randint(128, 145),
                )
            )


def generate(per_cohort: int, days: int, *, seed: int, start: datetime, first_patient_id: int) -> Cohorts:
    """``per_cohort`` patients in each of ``COHORTS`` over ``days`` days from ``start`` (UTC midnight)."""
    rng = random.Random(f"{seed}:cohorts")
    t0 = start.astimezone(UTC)
    patients: list[CohortPatient] = []
    events: list[InjectedEvent] = []
    pid = first_patient_id
    for cohort in COHORTS:
        for _ in range(per_cohort):
            pid += 1
            kind = KIND_OF.get(cohort, "blood_pressure")
            level = {"weight": rng.uniform(65, 110), "spo2": rng.uniform(93, 96)}.get(kind, 0.0)
            if kind == "blood_pressure":
                level = 145.0 if cohort == "stable_high" else rng.gauss(127, 5)
            p = CohortPatient(pid, cohort, kind, f"{DEVICE_PREFIX[kind]}-{pid:06d}", f"gwx-{pid:06d}", level)
            prng = random.Random(f"{seed}:cohort:{pid}")
            {"weight": _weights, "spo2": _spo2}.get(kind, _bp)(p, t0, days, prng, events)
            patients.append(p)
    return Cohorts(patients, events, t0, days)
