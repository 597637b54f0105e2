"""One patient's readings, day by day: routine cuff and meter checks, injected events, GATT encoding.

Apart from population.py so the generator (who, which devices, which events) and the reading rows
(values, noise, raw bytes) are each read on their own.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from gateway.contract import READING_SCHEMA, message_id
from simulators.population_model import RISE_DAYS, RISE_SBP, InjectedEvent, Profile, at_local

if TYPE_CHECKING:
    from simulators.population import Population


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
    # mg/dL is kg/L x 10^5: the SFLOAT holds mantissa mg/dL with exponent -5 (120 mg/dL: 120e-5 kg/L).
    conc = special if special is not None else _sfloat((mg_dl or 0) * 1e-5, -5)
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
    raw = _raw_hex(kind, values, local, st, measurement, seq)
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
        **_NO_VALUES,
        "device_status": st,
        "user_id": 1 if kind == "blood_pressure" else None,
        "original": None,
        "raw_hex": raw,
    }
    row.update(values)
    row["payload"] = {"schema": READING_SCHEMA, "message_id": mid, "simulated": True}
    return row


# Every value column, empty: a reading's ``values`` fill in the ones its kind carries.
_NO_VALUES: dict[str, Any] = dict.fromkeys(
    (
        "systolic_mmhg",
        "diastolic_mmhg",
        "mean_arterial_mmhg",
        "pulse_bpm",
        "glucose_mg_dl",
        "sample_type",
        "sample_location",
        "meal",
    )
)


def _raw_hex(
    kind: str, values: dict[str, Any], local: datetime, status: list[str], measurement: str, seq: int | None
) -> str:
    """The GATT bytes the device would send for these values (0x2A35 cuff, 0x2A18 meter), as hex."""
    if kind == "blood_pressure":
        return _bp_raw(
            values.get("systolic_mmhg") or 2047,
            values.get("diastolic_mmhg") or 2047,
            values.get("pulse_bpm") or 2047,
            local,
            sum(_STATUS_BITS.get(s, 0) for s in status),
        )
    special = {"out_of_range_low": 0x0802, "out_of_range_high": 0x07FE}.get(measurement)  # -INF, +INF
    return _glucose_raw(seq or 0, values.get("glucose_mg_dl"), local, special)


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


def patient_readings(prof: Profile, pop: Population, rng: random.Random) -> Iterator[dict[str, Any]]:
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
        t = at_local(prof, t0, day, hour + rng.random() * 1.5)
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
        t = at_local(prof, t0, day, hour + rng.random())
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
