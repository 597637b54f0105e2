"""A month of history for the demo: a dozen patients as a program really has them, with the truth.

``make demo`` used to show three identical patients with one hour of history in a 30-day chart. This
module backfills 30 days for twelve archetypes (stable, non-adherent, a gradual rise, confirmed and
cleared crises, hypoglycaemia, a hyperglycaemia run, a drop-out, heart-failure weight gain,
desaturation) from the population simulator (``simulators.population``: the same profiles, routines
and injected events, so its ground truth says what each patient should raise), then judges the
month as it happened (``triage.replay``).

The path is the real one minus the radio and the broker: each reading becomes a wire message
(``gateway.contract`` ids), goes through ingest's ``pipeline.classify`` (contract, plausibility
grade) and ``BatchWriter`` as the **ingest** role; triage replays as the **triage** role and then
moves its incremental watermarks past the backfill so the live service does not judge the same
month again "as of now". Steps are run by ``rpmflow-sim demo`` as ``python -m simulators.demo_history
backfill|replay`` with each role's ``RPMFLOW_DATABASE_URL``; the truth is written as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from gateway.contract import READING_SCHEMA, message_id_from_contents, readings_topic
from gateway.runtime import settings as rs
from gateway.runtime.fatal import exit_on_fatal
from ingest.items import Item
from ingest.pipeline import classify
from ingest.writer import BatchWriter
from simulators.demo_seed import DEMO_ZONE, device_ids
from simulators.fleet_messages import date_time, sfloat
from simulators.population import Population
from simulators.population_model import InjectedEvent, Profile, at_local
from triage import flag_views_store, flags_store
from triage.clinical import devices_store, people_store
from triage.clinical.promotion import PromotionRefused, promote
from triage.clinical.review import log_time, record_communication, record_review
from triage.jobs import PassReport, daily_pass
from triage.replay import as_of_pass, hand_over, steps
from triage.settings import DatabaseSettings
from triage.settings import Settings as TriageSettings

PROG = "python -m simulators.demo_history"
DAYS = 30
BATCH = 500
# Value rules every other day (flags are stamped with that pass's time, as a pass then would have),
# the calendar rules weekly: 15 + 5 passes keep the demo's start-up well under a minute.
REPLAY_STEP = timedelta(days=2)
CALENDAR_STEP = timedelta(days=7)  # trend and adherence-period rules weekly, and at the end


@dataclass(frozen=True)
class Archetype:
    name: str
    condition: str  # population_model.CONDITIONS
    adherence: float
    events: tuple[tuple[str, int], ...] = ()  # (population event, day)
    rise_start: int | None = None
    dropout_day: int | None = None
    away: tuple[int, ...] = ()
    vitals: str | None = None  # "weight" (heart failure) or "spo2" (COPD)


# Demo patient n is ARCHETYPES[n - 1]. The first three carry the live gateways: quiet histories, so the
# live crisis (a new episode) shows up as a new critical flag within seconds.
ARCHETYPES: tuple[Archetype, ...] = (
    Archetype("stable hypertension", "hypertension", 0.95),
    Archetype("stable type 2 diabetes", "diabetes_t2", 0.9),
    Archetype("stable, both conditions", "both", 0.92),
    Archetype("non-adherent", "hypertension", 0.4, away=tuple(range(9, 16))),
    Archetype("gradual rise", "hypertension", 0.9, rise_start=5),
    Archetype("crisis, confirmed", "hypertension", 0.9, events=(("bp_crisis_confirmed", 27),)),
    Archetype("crisis, cleared by the re-measure", "hypertension", 0.85, events=(("bp_crisis_cleared", 16),)),
    Archetype("hypoglycaemia", "diabetes_t1", 0.9, events=(("hypo_level1", 11), ("hypo_level2", 25))),
    Archetype("hyperglycaemia run", "both", 0.85, events=(("hyperglycaemia_run", 21),)),
    Archetype("stopped measuring", "hypertension", 0.9, dropout_day=19),
    Archetype("heart failure, weight gain", "hypertension", 0.9, vitals="weight"),
    Archetype("COPD, desaturation", "hypertension", 0.9, vitals="spo2"),
)

_RULES: dict[str, tuple[bool, timedelta, tuple[str, ...]]] = {  # critical, duration, rules expected
    "bp_crisis_confirmed": (True, timedelta(minutes=3), ("bp_crisis",)),
    "bp_crisis_cleared": (True, timedelta(minutes=3), ("bp_crisis",)),
    "hypo_level2": (True, timedelta(0), ("glucose_hypo_l2",)),
    "hypo_level1": (False, timedelta(0), ("glucose_hypo_l1",)),
    "hyperglycaemia_run": (False, timedelta(hours=30), ("glucose_hyper_l2", "glucose_ketone_check")),
}


def population(patient_ids: Sequence[int], *, today: date, zone: str = DEMO_ZONE) -> Population:
    """The archetypes as population profiles and ground-truth events over the 30 days before today."""
    first = today - timedelta(days=DAYS)
    t0 = datetime(first.year, first.month, first.day, tzinfo=UTC)
    profiles, events = [], []
    for n, pid in enumerate(patient_ids, start=1):
        arch = ARCHETYPES[n - 1]
        rng = random.Random(f"demo:{n}")
        devices = device_ids(n)
        prof = Profile(patient_id=pid, condition=arch.condition, timezone=zone,
                       sbp=rng.uniform(122, 134), dbp=rng.uniform(74, 84), pulse=rng.uniform(62, 78),
                       glucose=150.0 if arch.condition == "diabetes_t1" else 128.0,
                       glucose_sd=24 if arch.condition == "diabetes_t1" else 15, adherence=arch.adherence,
                       bp_device=None, glucose_device=None, gateway_id=f"gw-{n:04d}",
                       dropout_day=arch.dropout_day, rise_start=arch.rise_start, away=set(arch.away))
        if prof.has_bp:
            prof.bp_device = devices["blood_pressure"]
        if prof.diabetic:
            prof.glucose_device = devices["glucose"]
        profiles.append(prof)
        for name, day in arch.events:
            critical, length, rules = _RULES[name]
            start = at_local(prof, t0, day, 14.5)
            events.append(InjectedEvent(pid, name, start, start + length, critical, rules))
        if arch.rise_start is not None:
            events.append(InjectedEvent(pid, "bp_gradual_rise", at_local(prof, t0, arch.rise_start, 7.0),
                                        t0 + timedelta(days=arch.rise_start + 21), False,
                                        ("trend_rise", "bp_stage2_sustained", "baseline_deviation")))
        if arch.dropout_day is not None:
            events.append(InjectedEvent(pid, "dropout", at_local(prof, t0, arch.dropout_day, 0.0),
                                        t0 + timedelta(days=DAYS), False,
                                        ("patient_not_measuring", "adherence_period")))
        if arch.vitals == "weight":
            events.append(InjectedEvent(pid, "weight_gain", at_local(prof, t0, DAYS - 4, 7.5),
                                        at_local(prof, t0, DAYS - 1, 7.5), False, ("weight_gain",)))
        if arch.vitals == "spo2":
            events.append(InjectedEvent(pid, "desaturation", at_local(prof, t0, DAYS - 3, 10.0),
                                        at_local(prof, t0, DAYS - 1, 10.2), False, ("spo2_low",)))
    return Population([], [], [], [p.gateway_id for p in profiles], profiles, events, t0, DAYS, 1)


def _iso_z(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _message(gateway_id: str, device_id: str, kind: str, measured_at: datetime, device_time: str,
             raw: str, values: dict[str, Any], *, seq: int | None = None, status: Sequence[str] = (),
             measurement: str = "ok", offset: float = 0.0) -> tuple[str, bytes]:
    received = _iso_z(measured_at + timedelta(minutes=2))
    mid = message_id_from_contents(device_id=device_id, kind=kind, raw=raw, device_time=device_time,
                                   received_at=received, sequence_number=seq)
    body = {"schema": READING_SCHEMA, "message_id": mid, "gateway_id": gateway_id,
            "device": {"id": device_id, "manufacturer": "SIMULATED", "model": f"demo {kind}",
                       "serial": device_id, "firmware": "1.0", "address": None},
            "kind": kind, "measured_at": _iso_z(measured_at), "device_time": device_time,
            "clock_offset_s": offset, "received_at": received, "sequence_number": seq,
            "values": values, "original": None, "status": list(status), "measurement": measurement,
            "transmission": "automatic", "user_id": 1 if kind in ("blood_pressure", "weight") else None,
            "context": None, "raw": raw}
    return readings_topic(gateway_id), json.dumps(body, separators=(",", ":")).encode()


_VALUE_KEYS = {"blood_pressure": ("systolic_mmhg", "diastolic_mmhg", "mean_arterial_mmhg", "pulse_bpm"),
               "glucose": ("glucose_mg_dl", "sample_type", "sample_location", "meal")}


def _population_messages(pop: Population) -> Iterator[tuple[str, bytes]]:
    for row in pop.readings():
        kind = row["kind"]
        values = {k: float(row[k]) if isinstance(row.get(k), int) else row.get(k) for k in _VALUE_KEYS[kind]}
        yield _message(row["gateway_id"], row["device_id"], kind, row["measured_at"], row["device_time"],
                       row["raw_hex"], values, seq=row["sequence_number"], status=row["device_status"],
                       measurement=row["measurement"], offset=row["clock_offset_s"])


def _vitals_messages(pop: Population) -> Iterator[tuple[str, bytes]]:
    """Weighings (heart failure) and spot-checks (COPD): a steady month, then the injected change."""
    for n, prof in enumerate(pop.profiles, start=1):
        arch = ARCHETYPES[n - 1]
        if arch.vitals is None:
            continue
        rng = random.Random(f"demo-vitals:{n}")
        device = device_ids(n)[arch.vitals]
        for day in range(DAYS):
            at = at_local(prof, pop.start, day, 7.5 + rng.random())
            local = at.astimezone(ZoneInfo(prof.timezone)).replace(tzinfo=None, microsecond=0)
            if arch.vitals == "weight":
                kg = 84.0 + rng.gauss(0, 0.25) + max(0, day - (DAYS - 5)) * 0.8
                units = round(kg / 0.005)
                raw = (bytes([0x06]) + units.to_bytes(2, "little") + date_time(local) + bytes([1])).hex()
                yield _message(prof.gateway_id, device, "weight", at, local.isoformat(), raw,
                               {"weight_kg": units * 0.005, "bmi": None, "height_m": None})
                continue
            low = day >= DAYS - 3
            for k in range(2 if low else 1):
                spo2, pulse = (88 if low else round(95 + rng.gauss(0, 1))), round(80 + rng.gauss(0, 4))
                t = at + timedelta(minutes=10 * k)
                lt = local + timedelta(minutes=10 * k)
                raw = (bytes([0x01]) + sfloat(spo2) + sfloat(pulse) + date_time(lt)).hex()
                yield _message(prof.gateway_id, device, "spo2", t, lt.isoformat(), raw,
                               {"spo2_pct": float(spo2), "pulse_bpm": float(pulse), "spo2_min_pct": None,
                                "sample_count": None})


def messages(pop: Population) -> Iterator[tuple[str, bytes]]:
    yield from _population_messages(pop)
    yield from _vitals_messages(pop)


def backfill(ingest_url: str, pop: Population, *, now: datetime) -> tuple[int, int]:
    """Every history message through ingest's classify and writer; (stored, dead-lettered)."""
    writer = BatchWriter(ingest_url, application_name="rpmflow-demo-backfill")
    stored = dead = 0
    try:
        batch: list[Item] = []
        for topic, payload in [*messages(pop), ("", b"")]:
            item = classify(topic, payload, now=now) if topic else None
            if item is not None:
                batch.append(item)
            if batch and (len(batch) >= BATCH or not topic):
                result = writer.write(batch)
                stored += result.inserted
                dead += result.dead_letters
                batch = []
    finally:
        writer.close()
    return stored, dead


def truth(pop: Population) -> list[dict[str, Any]]:
    return [{**asdict(e), "start": e.start.isoformat(), "end": e.end.isoformat()} for e in pop.events]


def _patients(conn: psycopg.Connection[Any]) -> list[int]:
    """Demo patients 1.. by their cuffs' current assignment (the ingest role may read assignments)."""
    out = []
    for n in range(1, len(ARCHETYPES) + 1):
        holder = devices_store.current_holder(conn, device_ids(n)["blood_pressure"])
        if holder is None:
            break
        out.append(holder)
    return out


def replay_month(triage_url: str, *, now: datetime, days: int = DAYS) -> str:
    """Triage as of each step of the month (flags stamped when they would have been raised), then
    the hand-over so the live service carries on from now."""
    settings = TriageSettings.from_env({"RPMFLOW_DATABASE_URL": triage_url})
    start = now - timedelta(days=days)
    report = PassReport()
    timings = {"value": 0.0, "calendar": 0.0}
    with psycopg.connect(triage_url) as conn:
        prev = start
        for t in steps(start, now, REPLAY_STEP):
            t0 = time.monotonic()
            report.add(as_of_pass(conn, settings, t, since=prev))
            timings["value"] += time.monotonic() - t0
            week_ended = (t - start) // CALENDAR_STEP != (prev - start) // CALENDAR_STEP
            prev = t
            if week_ended or t == now:
                t0 = time.monotonic()
                report.add(daily_pass(conn, settings, t))
                timings["calendar"] += time.monotonic() - t0
        hand_over(conn, settings, now)
        flags = flag_views_store.flag_count(conn)
    return (f"replayed {days} days of triage: {flags} flags, {report.opened} opened,"
            f" {report.auto_cleared} auto-cleared (value rules {timings['value']:.1f} s,"
            f" calendar rules {timings['calendar']:.1f} s)")


def _work_one(conn: psycopg.Connection[Any], n: int, f: dict[str, Any], staff: dict[str, int],
              now: datetime) -> str:
    """What a nurse and a clinician did with one older flag: a call and minutes, then a review and
    promotion (two in three) or a close. Returns what became of it."""
    fid, at = int(f["flag_id"]), min(f["opened_at"] + timedelta(hours=2), now - timedelta(hours=1))
    if f["state"] == "open":
        flags_store.apply_event(conn, fid, "acknowledge", "nurse", "nurse", note="Called the patient")
    log_time(conn, fid, staff["nurse"], 8 + 4 * (n % 3), note="Reviewed the readings, called the patient",
             logged_at=at)
    record_communication(conn, fid, staff["nurse"], at=at, mode="phone", note="Spoke with the patient")
    if n % 3 == 2:
        flags_store.apply_event(conn, fid, "close", "nurse", "nurse", disposition="no_action_needed",
                                note="Explained; no change needed")
        return "closed"
    code = "E11.9" if str(f["rule_id"]).startswith("glucose") else "I10"
    record_review(conn, fid, staff["clinician"], determination="Reviewed the month's readings",
                  icd10_codes=[code], action="Medication plan reviewed with the nurse", minutes=6,
                  interactive=False, interactive_mode=None, place_of_service="11",
                  date_of_service=at.astimezone(ZoneInfo(DEMO_ZONE)).date())
    try:
        promote(conn, fid, staff["clinician"])
    except PromotionRefused:
        return "reviewed"
    return "promoted"


def staff_work(dashboard_url: str, *, now: datetime) -> str:
    """A month of nurse and clinician work on flags older than a day, so the queue holds today's
    work and billing a realistic month (minutes, calls, reviews, promotions), all through triage."""
    done: dict[str, int] = {}
    with psycopg.connect(dashboard_url) as conn:
        staff = people_store.user_ids(conn, ["nurse", "clinician"])
        old = flag_views_store.older_active(conn, now - timedelta(days=1))
        for n, f in enumerate(old):
            with conn.transaction():
                outcome = _work_one(conn, n, f, staff, now)
            done[outcome] = done.get(outcome, 0) + 1
    return "staff work on older flags: " + (", ".join(f"{v} {k}" for k, v in sorted(done.items())) or "none")


def main(argv: list[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    return exit_on_fatal(PROG, lambda: _main(argv, os.environ if environ is None else environ))


def _main(argv: list[str] | None, environ: Mapping[str, str]) -> int:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("step", choices=("backfill", "replay", "work"))
    p.add_argument("--truth", type=Path, help="backfill: write the injected events (ground truth) here")
    rs.add_flags(p, DatabaseSettings)
    args = p.parse_args(argv)
    url = rs.load(DatabaseSettings, environ, args).database_url
    now = datetime.now(UTC)
    if args.step == "replay":
        print(replay_month(url, now=now), flush=True)
        return 0
    if args.step == "work":
        print(staff_work(url, now=now), flush=True)
        return 0
    with psycopg.connect(url) as conn:
        ids = _patients(conn)
    pop = population(ids, today=now.date())
    stored, dead = backfill(url, pop, now=now)
    if args.truth:
        args.truth.write_text(json.dumps(truth(pop), indent=1))
    print(f"backfilled {stored} readings of {len(ids)} patients over {DAYS} days ({dead} dead letters)",
          flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
