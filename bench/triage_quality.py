"""Triage quality on a simulated population: recall of injected events, time to flag, alert burden.

Replays ``simulators.population`` (default 1,000 patients x 90 days, seed 7) through the same
pure rules the jobs run:

* value rules once over all readings (each candidate's flag time = ingest time of its last
  reading + one incremental interval, 2 s);
* calendar rules (baseline deviation, trend, adherence period) and the silences once per
  simulated day at 06:00 UTC with ``now`` = that instant (flag time = the pass time);
* flag episodes as ``flags_store`` forms them: evidence attaches to an open flag, readings never
  attach twice, a closed episode is not reopened; a nurse closes each flag 24 h after it opens
  (assumption), cleared crises auto-close at once.

Printed: recall per injected event type, of critical events (target 100 %) and of all events,
time from the event's start to its first matching flag (see ``matching``: the expected rules,
that patient, between 1 h before the event's start and 7 days after its end, all from the
simulator's ground truth), and flags per patient-month for patients with no injected event
(target < 2), for the nurse queue (moderate and above, not auto-cleared), for everything
including informational flags, and per rule.

Usage: ``.venv/bin/python bench/triage_quality.py [--patients 1000] [--days 90] [--seed 7]``
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from datetime import timedelta

import numpy as np
import pandas as pd

from simulators.population import InjectedEvent, generate
from triage import frames as fr
from triage.frames import prepare_readings
from triage.rules import VALUE_RULES, baseline_deviation, evaluate_daily, evaluate_silences

INTERVAL = pd.Timedelta(seconds=2)
NURSE_CLOSES_AFTER = pd.Timedelta(hours=24)
LOOKBACK = pd.Timedelta(days=35)


def replay(n: int, days: int, seed: int) -> tuple[pd.DataFrame, list[InjectedEvent], int]:
    pop = generate(n, days, seed=seed)
    raw = pd.DataFrame(list(pop.readings()))
    readings = prepare_readings(raw.drop(columns=["payload", "original", "raw_hex"]))
    ingested = readings.set_index("reading_id")["ingested_at"]
    patients = pd.DataFrame(pop.patients).rename(columns={"created_at": "enrolled_at"})

    value_rules = [r for r in VALUE_RULES if r is not baseline_deviation]
    end = pd.Timestamp(pop.start) + pd.Timedelta(days=days)
    found = [fr.concat(rule(readings, now=end.to_pydatetime()) for rule in value_rules)]
    found[0]["flag_at"] = found[0]["reading_ids"].map(lambda ids: ingested.loc[list(ids)].max()) + INTERVAL

    devices = pd.DataFrame(pop.assignments).rename(columns={"valid_from": "assigned_from"})
    gw_of = {p.patient_id: p.gateway_id for p in pop.profiles}
    devices["gateway_id"] = devices["patient_id"].map(gw_of)
    for d in range(1, days + 1):
        now = pd.Timestamp(pop.start) + pd.Timedelta(days=d, hours=6)
        window = readings[(readings["measured_at"] > now - LOOKBACK) & (readings["measured_at"] <= now)]
        parts = [
            baseline_deviation(window, now=now.to_pydatetime()),
            evaluate_daily(window, now=now.to_pydatetime(), patients=patients).candidates,
        ]
        seen = window.groupby("device_id")["measured_at"].max()
        dv = devices.assign(
            last_reading_at=devices["device_id"].map(seen), last_contact_at=now - pd.Timedelta(hours=1)
        )
        gws = pd.DataFrame({"gateway_id": list(gw_of.values()), "online": True, "updated_at": now})
        parts.append(evaluate_silences(dv, gws, now=now.to_pydatetime()).candidates)
        c = fr.concat(parts)
        c["flag_at"] = now
        found.append(c)
    cands = pd.concat([f for f in found if len(f)], ignore_index=True)
    cands["flag_at"] = pd.to_datetime(cands["flag_at"], utc=True)
    return episodes(cands), pop.events, n


def episodes(cands: pd.DataFrame) -> pd.DataFrame:
    """Fold candidates into flags with the store's semantics (attach / skip / reopen)."""
    cands = cands.sort_values("flag_at", kind="stable")
    flags: list[dict[str, object]] = []
    open_by: dict[tuple[str, str, str], dict[str, object]] = {}
    attached: dict[tuple[str, str], set[int]] = defaultdict(set)
    closed_eps: set[tuple[str, str, str]] = set()
    for rec in cands.to_dict(orient="records"):
        key = (rec["subject_key"], rec["rule_id"], rec["episode_key"])
        at = rec["flag_at"]
        cur = open_by.get(key)
        if cur is not None and at >= cur["closes_at"]:  # the nurse closed it meanwhile
            closed_eps.add(key)
            del open_by[key]
            cur = None
        ids = set(rec["reading_ids"])
        seen = attached[(rec["subject_key"], rec["rule_id"])]
        if rec["dedup"] == "readings" and ids and ids <= seen:
            continue
        if rec["dedup"] == "episode" and cur is None and key in closed_eps:
            continue
        seen |= ids
        if cur is not None:
            continue
        auto = rec["confirmation"] == "cleared"
        flag = {
            "rule_id": rec["rule_id"],
            "patient_id": rec["patient_id"],
            "severity": rec["severity"],
            "episode_key": rec["episode_key"],
            "value": rec["value"],
            "baseline": rec["baseline"],
            "opened_at": at,
            "first_reading_at": rec["first_reading_at"],
            "auto_cleared": auto,
            "closes_at": at if auto else at + NURSE_CLOSES_AFTER,
        }
        flags.append(flag)
        if not auto:
            open_by[key] = flag
        else:
            closed_eps.add(key)
    return pd.DataFrame(flags)


CATCH_AFTER_END = pd.Timedelta(days=7)
BP_METRICS = ("systolic_mmhg", "diastolic_mmhg")


def matching(flags: pd.DataFrame, e: InjectedEvent) -> pd.DataFrame:
    """Flags that count as catching ``e``: an expected rule, this patient, inside the window.

    The window runs from 1 h before the event starts to 7 days after it ends, both from the
    simulator's ground truth (for a gradual rise: the day the rise is complete). For a gradual BP
    rise a baseline/trend flag counts only if it is about blood pressure and points upwards (a
    low glucose deviation is not a caught BP rise).
    """
    start = pd.Timestamp(e.start)
    f = flags[
        (flags["patient_id"] == e.patient_id)
        & flags["rule_id"].isin(e.expected_rules)
        & (flags["opened_at"] >= start - pd.Timedelta(hours=1))
        & (flags["opened_at"] <= pd.Timestamp(e.end) + CATCH_AFTER_END)
    ]
    if e.event == "bp_gradual_rise" and len(f):
        metric = f["episode_key"].astype(str).str.split(":").str[0]
        relative = f["rule_id"].isin(["baseline_deviation", "trend_rise", "trend_cusum"])
        upwards = metric.isin(BP_METRICS) & (f["value"] > f["baseline"])
        f = f[~relative | upwards]
    return f


def main() -> None:
    ap = argparse.ArgumentParser(description="triage quality on a simulated population")
    ap.add_argument("--patients", type=int, default=1000)
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument(
        "--db-latency", type=int, default=20, help="commits to time through a real service (0: skip)"
    )
    args = ap.parse_args()
    t0 = time.perf_counter()
    flags, events, n = replay(args.patients, args.days, args.seed)
    elapsed = time.perf_counter() - t0

    rows = []
    for e in events:
        f = matching(flags, e)
        first = f["opened_at"].min() if len(f) else pd.NaT
        rows.append(
            {
                "event": e.event,
                "critical": e.critical,
                "detected": len(f) > 0,
                "to_flag_s": (first - pd.Timestamp(e.start)).total_seconds()  # type: ignore[operator]
                if len(f)
                else np.nan,
            }
        )
    ev = pd.DataFrame(rows)
    print(
        f"replayed {args.patients} patients x {args.days} days (seed {args.seed}) in {elapsed:.1f} s; "
        f"{len(events)} injected events, {len(flags)} flags"
    )
    print()
    print("| injected event | n | critical | recall | median time to flag | p95 time to flag |")
    print("|---|---:|---|---:|---:|---:|")
    for name, g in ev.groupby("event"):
        print(
            f"| {name} | {len(g)} | {'yes' if g['critical'].iloc[0] else 'no'} | "
            f"{g['detected'].mean():.0%} | "
            f"{_dur(g['to_flag_s'].median())} | {_dur(g['to_flag_s'].quantile(0.95))} |"
        )
    crit = ev[ev["critical"]]
    print(
        f"| **critical events** | {len(crit)} | yes | **{crit['detected'].mean():.1%}** | "
        f"{_dur(crit['to_flag_s'].median())} | {_dur(crit['to_flag_s'].quantile(0.95))} |"
    )
    print(
        f"| **all events** | {len(ev)} | | **{ev['detected'].mean():.1%}** | "
        f"{_dur(ev['to_flag_s'].median())} | "
        f"{_dur(ev['to_flag_s'].quantile(0.95))} |"
    )

    with_events = {e.patient_id for e in events}
    clean = flags[~flags["patient_id"].isin(with_events)]
    n_clean = n - len(with_events)
    months = args.days / 30.0
    queue = clean[(clean["severity"] != "info") & ~clean["auto_cleared"].astype(bool)]
    print()
    print("| alert burden, patients without injected events | flags / patient / month | target |")
    print("|---|---:|---|")
    print(
        f"| nurse queue (moderate+, not auto-cleared), {n_clean} patients | "
        f"**{len(queue) / n_clean / months:.2f}** | < 2 |"
    )
    print(f"| all flags incl. info and auto-cleared | {len(clean) / n_clean / months:.2f} | |")
    print()
    print("| rule (patients without injected events) | queue flags | queue / patient-month | all flags |")
    print("|---|---:|---:|---:|")
    per_rule = pd.DataFrame(
        {"queue": queue["rule_id"].value_counts(), "all": clean["rule_id"].value_counts()}
    ).fillna(0)
    for rule, r in per_rule.sort_values(["queue", "all"], ascending=False).iterrows():
        print(f"| {rule} | {int(r['queue'])} | {r['queue'] / n_clean / months:.3f} | {int(r['all'])} |")
    if args.db_latency:
        lat = np.array(db_latency(args.db_latency))
        print()
        print(
            "| reading committed → flag visible (real PostgreSQL, service interval 2 s) | seconds | target |"
        )
        print("|---|---:|---|")
        print(f"| median of {len(lat)} | {np.median(lat):.2f} | |")
        print(f"| p95 | {np.quantile(lat, 0.95):.2f} | |")
        print(f"| max | **{lat.max():.2f}** | < 10 s |")


def db_latency(n: int) -> list[float]:
    """Commit of a level-2 hypo reading → its flag visible, through the running service (real PostgreSQL)."""
    import secrets
    from datetime import UTC, datetime

    import psycopg

    from ingest.migrate import migrate
    from simulators.stack import EmbeddedPostgres
    from triage.service import TriageService
    from triage.settings import Settings

    pg = EmbeddedPostgres.create()
    pg.start()
    out: list[float] = []
    try:
        migrate(pg.urls().owner)
        service = TriageService(Settings(database_url=pg.urls().triage, interval_s=2.0))
        service.start()
        try:
            with psycopg.connect(pg.url, autocommit=True) as conn:
                for i in range(n):
                    now = datetime.now(UTC)
                    row = conn.execute(
                        "INSERT INTO patients (mrn, display_name, state) VALUES (%s, 'Bench', 'NY')"
                        " RETURNING patient_id",
                        (f"B{i}-{secrets.token_hex(3)}",),
                    ).fetchone()
                    assert row is not None
                    rid = conn.execute(
                        "INSERT INTO readings (message_id, gateway_id, device_id, patient_id, kind,"
                        " measured_at,"
                        " received_at, glucose_mg_dl, raw) VALUES (%s, 'gw', %s, %s, 'glucose',"
                        " %s, %s, 45, '\\x00') RETURNING reading_id",
                        (secrets.token_hex(16), f"GL-{row[0]}", row[0], now, now),
                    ).fetchone()
                    assert rid is not None
                    t0 = time.monotonic()
                    while time.monotonic() - t0 < 30:
                        hit = conn.execute(
                            "SELECT 1 FROM flags WHERE %s = ANY(reading_ids)", (rid[0],)
                        ).fetchone()
                        if hit:
                            out.append(time.monotonic() - t0)
                            break
                        time.sleep(0.02)
                    else:
                        out.append(float("inf"))
                    time.sleep(0.37 * (i % 5))  # spread commits over the 2 s schedule
        finally:
            service.stop()
    finally:
        pg.destroy()
    return out


def _dur(value: object) -> str:
    seconds = float(value)  # type: ignore[arg-type]
    if seconds != seconds:  # NaN
        return "-"
    return str(timedelta(seconds=round(seconds)))


if __name__ == "__main__":
    main()
