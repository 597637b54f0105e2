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
    for i in range(1, n_patients + 1):  # one rng for all: the draws' order is the population
        prof = _profile(i, rng, days)
        profiles.append(prof)
        enrolled = t0 - timedelta(days=rng.randint(0, 20))
        patients.append(_patient_record(prof, rng, enrolled))
        for dev, kind in ((prof.bp_device, "blood_pressure"), (prof.glucose_device, "glucose")):
            if dev:
                devices.append(_device_record(dev, kind, prof.gateway_id))
                assignments.append(
                    {"device_id": dev, "patient_id": i, "valid_from": enrolled, "assigned_by": "simulator"}
                )
        events.extend(_inject(prof, rng, t0, days))
    return Population(
        patients, devices, assignments, [p.gateway_id for p in profiles], profiles, events, t0, days, seed
    )


def _profile(i: int, rng: random.Random, days: int) -> Profile:
    """Patient ``i``: condition, zone, baselines, adherence, devices and trips away."""
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
    return prof


def _patient_record(prof: Profile, rng: random.Random, enrolled: datetime) -> dict[str, Any]:
    i = prof.patient_id
    return {
        "patient_id": i,
        "mrn": f"SIM{i:07d}",
        "display_name": f"Patient {i:05d}",
        "state": STATES[prof.timezone],
        "timezone": prof.timezone,
        "birth_year": rng.randint(1940, 1990),
        "created_at": enrolled,
    }


def _device_record(dev: str, kind: str, gateway_id: str) -> dict[str, Any]:
    return {
        "device_id": dev,
        "kind": kind,
        "manufacturer": "SIM",
        "model": f"SIM-{kind}",
        "serial": dev,
        "firmware": "1.0",
        "last_gateway_id": gateway_id,
    }


def _inject(prof: Profile, rng: random.Random, t0: datetime, days: int) -> list[InjectedEvent]:
    """Choose this patient's events; the readings generator looks them up by (day, kind).

    Each event type draws its chance in a fixed order, and only for patients it can apply to:
    the order of the ``rng`` draws is what makes a seed reproducible.
    """
    out: list[InjectedEvent] = []
    pid = prof.patient_id

    def when(lo: int = 5) -> datetime:
        hi = max(days - 3, 2)
        d = rng.randrange(min(lo, hi - 1), hi)
        return at_local(prof, t0, d, 13.0 + rng.random() * 4)

    if prof.has_bp and rng.random() < 0.04:
        out.append(_crisis(pid, when(), rng))
    if prof.has_bp and rng.random() < 0.05:
        out.extend(_gradual_rise(prof, rng, t0, days))
    if prof.diabetic and rng.random() < 0.04:
        out.append(_severe_low(pid, when(), rng))
    if prof.diabetic and rng.random() < 0.05:
        t = when()
        out.append(InjectedEvent(pid, "hypo_level1", t, t, False, ("glucose_hypo_l1",)))
    if prof.diabetic and rng.random() < 0.04:
        t = when()
        rules = ("glucose_hyper_l2", "glucose_ketone_check")
        out.append(InjectedEvent(pid, "hyperglycaemia_run", t, t + timedelta(hours=30), False, rules))
    if rng.random() < 0.05:
        out.append(_device_fault(prof, when(), rng))
    if rng.random() < 0.04:
        out = _dropout(prof, rng, t0, days, out)
    return out


def _crisis(pid: int, t: datetime, rng: random.Random) -> InjectedEvent:
    """A crisis reading at ``t`` and its re-measure 3 min later, still high (70 %) or cleared."""
    confirmed = rng.random() < 0.7
    event = "bp_crisis_confirmed" if confirmed else "bp_crisis_cleared"
    return InjectedEvent(pid, event, t, t + timedelta(minutes=3), True, ("bp_crisis",))


def _gradual_rise(prof: Profile, rng: random.Random, t0: datetime, days: int) -> list[InjectedEvent]:
    """A +RISE_SBP rise over RISE_DAYS (sets ``prof.rise_start``), or none when the data is too short."""
    # The rise must complete inside the simulated data (RISE_DAYS after a 30-day history), or
    # the ground truth would claim a +24 mmHg rise the readings never show. Its ground truth
    # ends when the rise ends (the plateau that follows persists until the end of the data).
    hi = days - RISE_DAYS
    d = rng.randrange(min(30, hi - 1), hi) if hi > 1 else 0
    t = at_local(prof, t0, d, 13.0 + rng.random() * 4)
    if hi <= 1:
        return []
    prof.rise_start = d
    rules = ("trend_cusum", "trend_rise", "bp_stage2_sustained", "baseline_deviation")
    end = t0 + timedelta(days=d + RISE_DAYS)
    return [InjectedEvent(prof.patient_id, "bp_gradual_rise", t, end, False, rules)]


def _severe_low(pid: int, t: datetime, rng: random.Random) -> InjectedEvent:
    """A level-2 hypoglycaemia, or (20 %) the meter's LO below its range."""
    lo = rng.random() < 0.2
    if lo:
        return InjectedEvent(pid, "meter_lo", t, t, True, ("glucose_meter_lo",))
    return InjectedEvent(pid, "hypo_level2", t, t, True, ("glucose_hypo_l2",))


def _device_fault(prof: Profile, t: datetime, rng: random.Random) -> InjectedEvent:
    """Two days of failed measurements, clock drift or (cuffs only) irregular-pulse readings."""
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
    return InjectedEvent(prof.patient_id, fault, t, t + timedelta(days=2), False, rules)


def _dropout(
    prof: Profile, rng: random.Random, t0: datetime, days: int, out: list[InjectedEvent]
) -> list[InjectedEvent]:
    """``out`` plus the patient stopping for good (sets ``prof.dropout_day``)."""
    d = rng.randrange(min(20, days // 2), max(days - 5, days // 2 + 1))
    prof.dropout_day = d
    t = at_local(prof, t0, d, 0.0)
    rules = ("patient_not_measuring", "adherence_period")
    out = [*out, InjectedEvent(prof.patient_id, "dropout", t, t0 + timedelta(days=days), False, rules)]
    if prof.rise_start is not None and d < prof.rise_start + RISE_DAYS:
        # The patient stops measuring before the rise is over: no reading can show it, so
        # it is not an event of this population (and the readings carry no rise).
        prof.rise_start = None
        out = [e for e in out if e.event != "bp_gradual_rise"]
    return out
