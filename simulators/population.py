"""A deterministic synthetic patient population with injected, ground-truthed clinical events.

Standard library only (``random``, ``zoneinfo``; ids and schema from ``gateway.contract``): it
feeds the database, the demo, the fleet generator and the triage quality bench. The same seed
always gives the same patients, readings and events. Readings are dicts shaped like rows of the
``readings`` table (plus ``reading_id``), with ``raw_hex`` a real GATT encoding (0x2A35 blood
pressure, 0x2A18 glucose) of the values.

Patients: hypertensive, diabetic (type 1 / type 2) or both; baselines per patient; a morning
surge in blood pressure; meal effects on glucose; measurement noise; adherence that varies by
patient, with missed days, trips away and drop-outs. Injected events (``InjectedEvent``): crisis
readings with their re-measure (confirmed or cleared), level-1/level-2 hypoglycaemia (some as a
meter LO), hyperglycaemia runs, a gradual blood-pressure rise, device faults (failed
measurements, clock drift, irregular pulse) and drop-outs.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from simulators.population_model import CONDITIONS, RISE_DAYS, STATES, ZONES, InjectedEvent, Profile, at_local
from simulators.population_readings import patient_readings


@dataclass
class Population:
    patients: list[dict[str, Any]]
    devices: list[dict[str, Any]]
    assignments: list[dict[str, Any]]
    gateways: list[str]
    profiles: list[Profile]
    events: list[InjectedEvent]
    start: datetime
    days: int
    seed: int

    def readings(self) -> Iterator[dict[str, Any]]:
        """All readings in patient order, deterministic for the seed."""
        rid = 0
        for prof in self.profiles:
            rng = random.Random(f"{self.seed}:readings:{prof.patient_id}")
            for row in patient_readings(prof, self, rng):
                rid += 1
                row["reading_id"] = rid
                yield row


def generate(n_patients: int, days: int, *, seed: int = 1, start: date | None = None) -> Population:
    """Profiles, events and device/gateway records for ``n_patients`` over ``days`` days."""
    rng = random.Random(seed)
    first = start or date(2026, 1, 5)
    t0 = datetime(first.year, first.month, first.day, tzinfo=UTC)
    profiles, patients, devices, assignments, events = [], [], [], [], []
    for i in range(1, n_patients + 1):
        cond = rng.choices([c for c, _ in CONDITIONS], [w for _, w in CONDITIONS])[0]
        tz = rng.choice(ZONES)
        dt1 = cond == "diabetes_t1"
        prof = Profile(
            patient_id=i,
            condition=cond,
            timezone=tz,
            sbp=min(max(rng.gauss(127, 6), 108), 136),
            dbp=min(max(rng.gauss(79, 4), 66), 85),
            pulse=rng.gauss(70, 7),
            glucose=rng.gauss(155, 12) if dt1 else rng.gauss(130, 12),
            glucose_sd=26 if dt1 else 16,
            adherence=rng.uniform(0.7, 0.98),
            bp_device=None,
            glucose_device=None,
            gateway_id=f"gw-{i:06d}",
        )
        if prof.has_bp:
            prof.bp_device = f"BP-{i:06d}"
        if prof.diabetic:
            prof.glucose_device = f"GL-{i:06d}"
        for _ in range(rng.randint(0, 2)):  # trips away: 2-5 days without readings
            d0 = rng.randrange(days)
            prof.away.update(range(d0, d0 + rng.randint(2, 5)))
        profiles.append(prof)
        enrolled = t0 - timedelta(days=rng.randint(0, 20))
        patients.append(
            {
                "patient_id": i,
                "mrn": f"SIM{i:07d}",
                "display_name": f"Patient {i:05d}",
                "state": STATES[tz],
                "timezone": tz,
                "birth_year": rng.randint(1940, 1990),
                "created_at": enrolled,
            }
        )
        for dev, kind in ((prof.bp_device, "blood_pressure"), (prof.glucose_device, "glucose")):
            if dev:
                devices.append(
                    {
                        "device_id": dev,
                        "kind": kind,
                        "manufacturer": "SIM",
                        "model": f"SIM-{kind}",
                        "serial": dev,
                        "firmware": "1.0",
                        "last_gateway_id": prof.gateway_id,
                    }
                )
                assignments.append(
                    {"device_id": dev, "patient_id": i, "valid_from": enrolled, "assigned_by": "simulator"}
                )
        events.extend(_inject(prof, rng, t0, days))
    return Population(
        patients, devices, assignments, [p.gateway_id for p in profiles], profiles, events, t0, days, seed
    )


def _inject(prof: Profile, rng: random.Random, t0: datetime, days: int) -> list[InjectedEvent]:
    """Choose this patient's events; the readings generator looks them up by (day, kind)."""
    out: list[InjectedEvent] = []
    pid = prof.patient_id

    def when(lo: int = 5) -> tuple[int, datetime]:
        hi = max(days - 3, 2)
        d = rng.randrange(min(lo, hi - 1), hi)
        return d, at_local(prof, t0, d, 13.0 + rng.random() * 4)

    if prof.has_bp and rng.random() < 0.04:
        d, t = when()
        confirmed = rng.random() < 0.7
        out.append(
            InjectedEvent(
                pid,
                "bp_crisis_confirmed" if confirmed else "bp_crisis_cleared",
                t,
                t + timedelta(minutes=3),
                True,
                ("bp_crisis",),
            )
        )
    if prof.has_bp and rng.random() < 0.05:
        # The rise must complete inside the simulated data (RISE_DAYS after a 30-day history), or
        # the ground truth would claim a +24 mmHg rise the readings never show. Its ground truth
        # ends when the rise ends (the plateau that follows persists until the end of the data).
        hi = days - RISE_DAYS
        d = rng.randrange(min(30, hi - 1), hi) if hi > 1 else 0
        t = at_local(prof, t0, d, 13.0 + rng.random() * 4)
        if hi > 1:
            prof.rise_start = d
            out.append(
                InjectedEvent(
                    pid,
                    "bp_gradual_rise",
                    t,
                    t0 + timedelta(days=d + RISE_DAYS),
                    False,
                    ("trend_cusum", "trend_rise", "bp_stage2_sustained", "baseline_deviation"),
                )
            )
    if prof.diabetic and rng.random() < 0.04:
        d, t = when()
        lo = rng.random() < 0.2
        out.append(
            InjectedEvent(
                pid,
                "meter_lo" if lo else "hypo_level2",
                t,
                t,
                True,
                ("glucose_meter_lo",) if lo else ("glucose_hypo_l2",),
            )
        )
    if prof.diabetic and rng.random() < 0.05:
        d, t = when()
        out.append(InjectedEvent(pid, "hypo_level1", t, t, False, ("glucose_hypo_l1",)))
    if prof.diabetic and rng.random() < 0.04:
        d, t = when()
        out.append(
            InjectedEvent(
                pid,
                "hyperglycaemia_run",
                t,
                t + timedelta(hours=30),
                False,
                ("glucose_hyper_l2", "glucose_ketone_check"),
            )
        )
    if rng.random() < 0.05:
        d, t = when()
        fault = rng.choice(
            ["failed_measurements", "clock_drift", "irregular_pulse"]
            if prof.has_bp
            else ["failed_measurements", "clock_drift"]
        )
        rules = {
            "failed_measurements": ("device_repeated_failures",),
            "clock_drift": ("device_clock_drift",),
            "irregular_pulse": ("irregular_pulse",),
        }[fault]
        out.append(InjectedEvent(pid, fault, t, t + timedelta(days=2), False, rules))
    if rng.random() < 0.04:
        d = rng.randrange(min(20, days // 2), max(days - 5, days // 2 + 1))
        prof.dropout_day = d
        t = at_local(prof, t0, d, 0.0)
        out.append(
            InjectedEvent(
                pid,
                "dropout",
                t,
                t0 + timedelta(days=days),
                False,
                ("patient_not_measuring", "adherence_period"),
            )
        )
        if prof.rise_start is not None and d < prof.rise_start + RISE_DAYS:
            # The patient stops measuring before the rise is over: no reading can show it, so
            # it is not an event of this population (and the readings carry no rise).
            prof.rise_start = None
            out = [e for e in out if e.event != "bp_gradual_rise"]
    return out
