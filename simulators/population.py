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
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from gateway.contract import READING_SCHEMA, message_id

ZONES = (
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Phoenix",
    "America/Los_Angeles",
    "America/Anchorage",
    "Pacific/Honolulu",
)
STATES = {
    "America/New_York": "NY",
    "America/Chicago": "IL",
    "America/Denver": "CO",
    "America/Phoenix": "AZ",
    "America/Los_Angeles": "CA",
    "America/Anchorage": "AK",
    "Pacific/Honolulu": "HI",
}
CONDITIONS = (("hypertension", 0.5), ("diabetes_t2", 0.2), ("diabetes_t1", 0.1), ("both", 0.2))
# Gradual BP rise: linear over RISE_DAYS to +RISE_SBP / +RISE_SBP/2.5 mmHg, then a plateau.
RISE_DAYS = 21
RISE_SBP = 24.0


@dataclass(frozen=True)
class InjectedEvent:
    """Ground truth: what happened, to whom, when, and which rules should catch it."""

    patient_id: int
    event: str
    start: datetime
    end: datetime
    critical: bool
    expected_rules: tuple[str, ...]


@dataclass
class Profile:
    patient_id: int
    condition: str
    timezone: str
    sbp: float
    dbp: float
    pulse: float
    glucose: float
    glucose_sd: float
    adherence: float
    bp_device: str | None
    glucose_device: str | None
    gateway_id: str
    dropout_day: int | None = None
    rise_start: int | None = None
    away: set[int] = field(default_factory=set)

    @property
    def has_bp(self) -> bool:
        return self.condition in ("hypertension", "both")

    @property
    def diabetic(self) -> str | None:
        if self.condition in ("diabetes_t1", "diabetes_t2"):
            return self.condition[-2:]
        return "t2" if self.condition == "both" else None


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
            for row in _patient_readings(prof, self, rng):
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


def _at(prof: Profile, day0: datetime, day: int, hour: float) -> datetime:
    """UTC instant of a patient-local wall-clock time on simulation day ``day``."""
    local_day = (day0 + timedelta(days=day)).date()
    h = int(hour)
    m = int((hour - h) * 60)
    local = datetime(local_day.year, local_day.month, local_day.day, h, m, tzinfo=ZoneInfo(prof.timezone))
    return local.astimezone(UTC)


def _inject(prof: Profile, rng: random.Random, t0: datetime, days: int) -> list[InjectedEvent]:
    """Choose this patient's events; the readings generator looks them up by (day, kind)."""
    out: list[InjectedEvent] = []
    pid = prof.patient_id

    def when(lo: int = 5) -> tuple[int, datetime]:
        hi = max(days - 3, 2)
        d = rng.randrange(min(lo, hi - 1), hi)
        return d, _at(prof, t0, d, 13.0 + rng.random() * 4)

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
        t = _at(prof, t0, d, 13.0 + rng.random() * 4)
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
        t = _at(prof, t0, d, 0.0)
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


def _sfloat(value: float, exponent: int = 0) -> int:
    mantissa = round(value * 10.0 ** (-exponent)) & 0x0FFF
    return ((exponent & 0x0F) << 12) | mantissa


def _datetime_bytes(t: datetime) -> bytes:
    return struct.pack("<HBBBBB", t.year, t.month, t.day, t.hour, t.minute, t.second)


def _bp_raw(sbp: float, dbp: float, pulse: float, local: datetime, status: int) -> str:
    mean = dbp + (sbp - dbp) / 3
    body = struct.pack("<BHHH", 0x1E, _sfloat(sbp), _sfloat(dbp), _sfloat(mean)) + _datetime_bytes(local)
    return (body + struct.pack("<HBH", _sfloat(pulse), 1, status)).hex()


def _glucose_raw(seq: int, mg_dl: float | None, local: datetime, special: int | None = None) -> str:
    conc = special if special is not None else _sfloat(mg_dl or 0, -5)
    return (struct.pack("<BH", 0x02, seq) + _datetime_bytes(local) + struct.pack("<HB", conc, 0x11)).hex()


_STATUS_BITS = {"body_movement": 0x01, "irregular_pulse": 0x04}


def _row(
    prof: Profile,
    kind: str,
    t: datetime,
    rng: random.Random,
    values: dict[str, Any],
    *,
    status: list[str] | None = None,
    quality: str = "valid",
    measurement: str = "ok",
    offset: float = 0.0,
    seq: int | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    device = prof.bp_device if kind == "blood_pressure" else prof.glucose_device
    assert device is not None
    local = (
        (t + timedelta(seconds=offset))
        .astimezone(ZoneInfo(prof.timezone))
        .replace(tzinfo=None, microsecond=0)
    )
    st = status or []
    if kind == "blood_pressure":
        bits = sum(_STATUS_BITS.get(s, 0) for s in st)
        raw = _bp_raw(
            values.get("systolic_mmhg") or 2047,
            values.get("diastolic_mmhg") or 2047,
            values.get("pulse_bpm") or 2047,
            local,
            bits,
        )
    else:
        special = {"out_of_range_low": 0x0802, "out_of_range_high": 0x07FE}.get(measurement)  # -INF, +INF
        raw = _glucose_raw(seq or 0, values.get("glucose_mg_dl"), local, special)
    received = t + timedelta(seconds=rng.uniform(5, 600))
    mid = message_id(device, kind, f"raw={raw}")  # raw carries the time: unique per reading
    row: dict[str, Any] = {
        "message_id": mid,
        "gateway_id": prof.gateway_id,
        "device_id": device,
        "patient_id": prof.patient_id,
        "kind": kind,
        "measured_at": t,
        "device_time": local.isoformat(),
        "clock_offset_s": offset,
        "received_at": received,
        "ingested_at": received + timedelta(seconds=rng.uniform(0.05, 1.5)),
        "sequence_number": seq,
        "quality": quality,
        "quality_reason": reason,
        "measurement": measurement,
        "transmission": "automatic",
        "systolic_mmhg": None,
        "diastolic_mmhg": None,
        "mean_arterial_mmhg": None,
        "pulse_bpm": None,
        "glucose_mg_dl": None,
        "sample_type": None,
        "sample_location": None,
        "meal": None,
        "device_status": st,
        "user_id": 1 if kind == "blood_pressure" else None,
        "original": None,
        "raw_hex": raw,
    }
    row.update(values)
    row["payload"] = {"schema": READING_SCHEMA, "message_id": mid, "simulated": True}
    return row


class _Seq:
    """The glucose meter's record sequence number, shared by routine and injected readings."""

    def __init__(self) -> None:
        self.value = 0

    def next(self) -> int:
        self.value += 1
        return self.value


def _day_events(events: list[InjectedEvent], t0: datetime, day: int) -> list[InjectedEvent]:
    """Events starting on ``day``, and multi-day events (clock drift, hyperglycaemia run) covering it."""
    return [
        e
        for e in events
        if (e.start - t0).days == day
        or (
            e.event in ("clock_drift", "hyperglycaemia_run")
            and 0
            <= (t0 + timedelta(days=day) - e.start).total_seconds()
            < (e.end - e.start).total_seconds() + 86400
        )
    ]


def _patient_readings(prof: Profile, pop: Population, rng: random.Random) -> Iterator[dict[str, Any]]:
    """Every reading of one patient, day by day (the rng is drawn in a fixed order: reproducible)."""
    events = [e for e in pop.events if e.patient_id == prof.patient_id]
    t0 = pop.start
    seq = _Seq()
    for day in range(pop.days):
        # Away or dropped out: no routine readings; injected events still happen (ground truth = data).
        routine = not (day in prof.away or (prof.dropout_day is not None and day >= prof.dropout_day))
        day_events = _day_events(events, t0, day)
        drift = next((1200.0 for e in day_events if e.event == "clock_drift"), 0.0)
        if prof.has_bp:
            yield from _bp_routine(prof, t0, day, routine, drift, rng)
            for e in day_events:
                yield from _bp_event(prof, e, rng)
        if prof.diabetic:
            yield from _glucose_routine(prof, t0, day, routine, drift, day_events, rng, seq)
            for e in day_events:
                if (e.start - t0).days == day:
                    yield from _glucose_event(prof, e, rng, seq)


def _bp_routine(
    prof: Profile, t0: datetime, day: int, routine: bool, drift: float, rng: random.Random
) -> Iterator[dict[str, Any]]:
    """Morning (surge) and evening readings, with the injected gradual rise if one is under way."""
    rise = 0.0
    if prof.rise_start is not None and day >= prof.rise_start:
        rise = min(day - prof.rise_start, RISE_DAYS) / RISE_DAYS * RISE_SBP
    for hour, surge in ((7.0, 5.0), (20.0, -3.0)):
        if not routine or rng.random() > prof.adherence:
            continue
        t = _at(prof, t0, day, hour + rng.random() * 1.5)
        sbp = prof.sbp + surge + rise + rng.gauss(0, 6)
        dbp = prof.dbp + surge / 2 + rise / 2.5 + rng.gauss(0, 4)
        status = ["body_movement"] if rng.random() < 0.01 else []
        vals = {
            "systolic_mmhg": round(sbp),
            "diastolic_mmhg": round(dbp),
            "pulse_bpm": round(prof.pulse + rng.gauss(0, 4)),
            "mean_arterial_mmhg": round(dbp + (sbp - dbp) / 3),
        }
        yield _row(prof, "blood_pressure", t, rng, vals, status=status, offset=drift)


def _bp_values(sbp: int, dbp: int, pulse: int, mean: int) -> dict[str, Any]:
    return {"systolic_mmhg": sbp, "diastolic_mmhg": dbp, "pulse_bpm": pulse, "mean_arterial_mmhg": mean}


def _bp_event(prof: Profile, e: InjectedEvent, rng: random.Random) -> Iterator[dict[str, Any]]:
    """The cuff readings an injected event produces (crisis and re-measure, irregular pulse, failures)."""
    if e.event.startswith("bp_crisis"):
        first = _bp_values(rng.randint(182, 205), rng.randint(95, 125), 84, 130)
        yield _row(prof, "blood_pressure", e.start, rng, first)
        again = (
            (rng.randint(181, 200), rng.randint(95, 110))
            if e.event.endswith("confirmed")
            else (rng.randint(150, 170), rng.randint(85, 95))
        )
        yield _row(prof, "blood_pressure", e.end, rng, _bp_values(again[0], again[1], 80, 120))
    elif e.event == "irregular_pulse":
        vals = _bp_values(round(prof.sbp), round(prof.dbp), 96, round(prof.dbp + 15))
        for k in range(2):
            at = e.start + timedelta(hours=k * 12)
            yield _row(prof, "blood_pressure", at, rng, dict(vals), status=["irregular_pulse"])
    elif e.event == "failed_measurements" and prof.bp_device:
        for k in range(4):
            at = e.start + timedelta(minutes=5 * k)
            yield _row(
                prof, "blood_pressure", at, rng, {}, quality="failed", measurement="failed",
                reason="device error (NaN)",
            )  # fmt: skip


def _glucose_routine(
    prof: Profile,
    t0: datetime,
    day: int,
    routine: bool,
    drift: float,
    day_events: list[InjectedEvent],
    rng: random.Random,
    seq: _Seq,
) -> Iterator[dict[str, Any]]:
    """Fasting and meal-time checks (four for type 1, two for type 2); a hyperglycaemia run overrides."""
    slots = (
        ((7.0, 0.0), (12.5, 35.0), (18.5, 40.0), (22.0, 20.0))
        if prof.diabetic == "t1"
        else ((7.0, 0.0), (19.5, 45.0))
    )
    for hour, meal in slots:
        if not routine or rng.random() > prof.adherence:
            continue
        t = _at(prof, t0, day, hour + rng.random())
        g = max(prof.glucose + meal + rng.gauss(0, prof.glucose_sd), 72.0)
        if any(e.event == "hyperglycaemia_run" for e in day_events):
            g = rng.uniform(262, 330)
        vals = {
            "glucose_mg_dl": round(g),
            "sample_type": "capillary_whole_blood",
            "sample_location": "finger",
            "meal": "preprandial" if meal == 0 else "postprandial",
        }
        yield _row(prof, "glucose", t, rng, vals, seq=seq.next(), offset=drift)


def _glucose_event(
    prof: Profile, e: InjectedEvent, rng: random.Random, seq: _Seq
) -> Iterator[dict[str, Any]]:
    """The meter readings an injected event produces (hypos, meter LO, failures)."""
    if e.event in ("hypo_level2", "hypo_level1"):
        n = seq.next()
        g = rng.randint(42, 53) if e.event == "hypo_level2" else rng.randint(56, 68)
        yield _row(prof, "glucose", e.start, rng, {"glucose_mg_dl": g}, seq=n)
    elif e.event == "meter_lo":
        yield _row(
            prof, "glucose", e.start, rng, {}, seq=seq.next(), quality="failed",
            measurement="out_of_range_low", reason="meter LO",
        )  # fmt: skip
    elif e.event == "failed_measurements" and not prof.bp_device:
        for k in range(4):
            at = e.start + timedelta(minutes=3 * k)
            yield _row(
                prof, "glucose", at, rng, {}, seq=seq.next(), quality="failed", measurement="failed",
                reason="device error (NaN)",
            )  # fmt: skip
