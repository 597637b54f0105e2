"""Blood-pressure rules: crisis with the AHA re-measure protocol, sustained stage 2, hypotension, pulse.

Only valid readings are looked at. A reading seen twice (same values < 30 s apart) is one reading;
a reading < 30 s after another can neither confirm a crisis (the re-measure comes 1-5 min later)
nor count as a second occasion towards persistence.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from triage import frames as fr
from triage import thresholds as th
from triage.limits import DEFAULTS, Limits
from triage.rules import treated
from triage.rules._common import (
    apart,
    confirmed_pair_candidates,
    minutes_between,
    neighbour,
    one_reading_candidates,
    valid,
    within,
)

BP = "blood_pressure"
_SYMPTOMS = (
    "chest pain, shortness of breath, back pain, numbness/weakness, vision change, "
    "difficulty speaking, confusion"
)


def _bp_text(df: pd.DataFrame) -> pd.Series:
    return fr.fmt(df["systolic_mmhg"]) + "/" + fr.fmt(df["diastolic_mmhg"]) + " mmHg"


def _line(limit: pd.Series | float, sel: pd.DataFrame) -> pd.Series:
    """The effective threshold (default or the patient's override) for each selected row, as text."""
    if isinstance(limit, pd.Series):
        return fr.fmt(limit.loc[sel.index])
    return fr.fmt(pd.Series(limit, index=sel.index))


def _at_or_above(df: pd.DataFrame, limits: Limits, sys_key: str, dia_key: str) -> pd.Series:
    s = limits.at(sys_key, df["patient_id"])
    d = limits.at(dia_key, df["patient_id"])
    return (df["systolic_mmhg"] >= s) | (df["diastolic_mmhg"] >= d)


def bp_crisis(readings: pd.DataFrame, *, now: datetime, limits: Limits = DEFAULTS) -> pd.DataFrame:
    """>= 180 and/or >= 120: critical at once, then confirmed or cleared by the next reading.

    ``confirmation`` is ``pending`` (no re-measure yet within the window), ``confirmed`` (the
    re-measure is still at crisis level: never suppressible) or ``cleared`` (the re-measure is
    below: the job auto-clears the flag unless a person already owns it).
    """
    bp = valid(readings, BP)
    if bp.empty:
        return fr.empty_candidates()
    trigger, conf = _crisis_episodes(bp, limits)
    if not trigger.any():
        return fr.empty_candidates()
    sel = bp.loc[trigger]
    nsel = bp.shift(-1).loc[trigger]
    conf_s = pd.Series(conf, index=sel.index)
    two = conf_s != "pending"
    return fr.candidates(
        rule_id="bp_crisis",
        patient_id=sel["patient_id"],
        severity="critical",
        reason=_crisis_reason(sel, nsel, conf_s, limits),
        reading_ids=fr.id_lists([sel["reading_id"], nsel["reading_id"].where(two)]),
        first_at=sel["measured_at"],
        last_at=nsel["measured_at"].where(two, sel["measured_at"]),
        value=sel["systolic_mmhg"],
        unit=th.Unit.MMHG.value,
        confirmation=conf_s,
    )


def _crisis_episodes(bp: pd.DataFrame, limits: Limits) -> tuple[np.ndarray, np.ndarray]:
    """Rows opening a crisis episode, and (for those rows) their confirmation by the reading after.

    A crisis reading that is itself the re-measure of a crisis reading belongs to that episode.
    The next reading confirms (still at crisis level) or clears (below) only when it comes within
    the re-measure window and is not the same reading seen twice; otherwise ``pending``.
    """
    crisis = _at_or_above(bp, limits, "bp_crisis_systolic", "bp_crisis_diastolic").to_numpy(dtype=bool)
    prev_crisis = np.zeros(len(bp), dtype=bool)
    prev_crisis[1:] = crisis[:-1]
    next_crisis = np.zeros(len(bp), dtype=bool)
    next_crisis[:-1] = crisis[1:]
    window = th.CRISIS_REMEASURE_WINDOW
    prev_in = within(bp, -1, window)
    next_in = within(bp, 1, window) & apart(bp, 1)
    trigger = crisis & ~(prev_in & prev_crisis)
    confirmed = trigger & next_in & next_crisis
    cleared = trigger & next_in & ~next_crisis
    conf = np.where(confirmed[trigger], "confirmed", np.where(cleared[trigger], "cleared", "pending"))
    return trigger, conf


def _crisis_reason(sel: pd.DataFrame, nsel: pd.DataFrame, conf_s: pd.Series, limits: Limits) -> pd.Series:
    """The nurse's text for each crisis row: re-measure advice, confirmed crisis, or cleared."""
    first = _bp_text(sel)
    second = _bp_text(nsel)
    gap = minutes_between(sel["measured_at"], nsel["measured_at"]).astype(str)
    pending = (
        "BP "
        + first
        + " at or above the crisis line "
        + fr.fmt(pd.Series(limits.at("bp_crisis_systolic", sel["patient_id"]), index=sel.index))
        + "/"
        + fr.fmt(pd.Series(limits.at("bp_crisis_diastolic", sel["patient_id"]), index=sel.index))
        + ". AHA: re-measure after 1-5 min; ask about "
        + _SYMPTOMS
        + " (symptoms: call 911)."
    )
    reason = pending.where(conf_s == "pending", "")
    reason = reason.where(
        conf_s != "confirmed",
        "Confirmed hypertensive crisis: BP "
        + first
        + ", re-measured "
        + second
        + " after "
        + gap
        + " min. Contact the patient now; "
        "with symptoms (" + _SYMPTOMS + ") this is an emergency (911).",
    )
    return reason.where(
        conf_s != "cleared",
        "BP "
        + first
        + " re-measured "
        + second
        + " after "
        + gap
        + " min, below the crisis line: cleared by the AHA re-measure protocol.",
    )


def bp_stage2_sustained(
    readings: pd.DataFrame, *, now: datetime, limits: Limits = DEFAULTS, starts: pd.Series | None = None
) -> pd.DataFrame:
    """Three consecutive readings >= 140 and/or >= 90 within 7 days (persistence before alerting).

    Each reading is classified by the higher of its SBP and DBP categories, so 130/92 counts.
    ``starts`` (patient_id -> the patient's first reading ever): where the review intervals of
    stable-high and new patients are counted from; without it, each patient's first reading here.
    """
    bp = valid(readings, BP, occasions=True)
    k = th.STAGE2_PERSISTENCE_READINGS
    if len(bp) < k:
        return fr.empty_candidates()
    run = _stage2_runs(bp, limits, k)
    if not run.any():
        return fr.empty_candidates()
    sel = bp.loc[run]
    # ``run`` guarantees the k rows ending here belong to one patient, so a plain rolling mean is right.
    mean_s = bp["systolic_mmhg"].rolling(k).mean().loc[run]
    mean_d = bp["diastolic_mmhg"].rolling(k).mean().loc[run]
    s2 = pd.Series(limits.at("bp_stage2_systolic", sel["patient_id"]), index=sel.index)
    d2 = pd.Series(limits.at("bp_stage2_diastolic", sel["patient_id"]), index=sel.index)
    if starts is None:
        starts = readings.groupby("patient_id")["measured_at"].min()
    tb = treated.split(bp, run, k, mean_s, mean_d, s2, d2, starts)
    head = _stage2_head(sel, k, s2, d2, mean_s, mean_d)
    reason, review = _stage2_reasons(head, tb, sel.index)
    periodic = (tb.stable_high | tb.warmup) & ~tb.worsening
    lagged = [bp["reading_id"].shift(j).loc[run] for j in range(k - 1, -1, -1)]
    first_at = bp["measured_at"].shift(k - 1).loc[run]
    parts = []
    splits = ((~periodic, reason, "", "readings"), (periodic, review, tb.review_key, "episode"))
    for mask, why, episode, dedup in splits:
        if not mask.any():
            continue
        m = pd.Series(mask, index=sel.index)
        parts.append(
            fr.candidates(
                rule_id="bp_stage2_sustained",
                patient_id=sel["patient_id"][m],
                severity="high",
                reason=why[m],
                reading_ids=fr.id_lists([x[m] for x in lagged]),
                first_at=first_at[m],
                last_at=sel["measured_at"][m],
                value=mean_s[m],
                baseline=s2[m],
                unit=th.Unit.MMHG.value,
                episode_key=episode[m] if isinstance(episode, pd.Series) else episode,
                dedup=dedup,
            )
        )
    return fr.concat(parts)


def _stage2_runs(bp: pd.DataFrame, limits: Limits, k: int) -> np.ndarray:
    """Rows ending ``k`` consecutive stage-2 readings within ``STAGE2_PERSISTENCE_SPAN``."""
    high = _at_or_above(bp, limits, "bp_stage2_systolic", "bp_stage2_diastolic").to_numpy(dtype=bool)
    run = high.copy()
    for j in range(1, k):
        prev_high = np.zeros(len(bp), dtype=bool)
        prev_high[j:] = high[:-j]
        run &= prev_high
    run &= within(bp, -(k - 1), th.STAGE2_PERSISTENCE_SPAN)
    return run


def _stage2_head(
    sel: pd.DataFrame, k: int, s2: pd.Series, d2: pd.Series, mean_s: pd.Series, mean_d: pd.Series
) -> pd.Series:
    """What every stage-2 text opens with: the run, its line, its mean and the latest reading."""
    return (
        f"{k} consecutive readings at or above "
        + fr.fmt(s2)
        + "/"
        + fr.fmt(d2)
        + " mmHg within 7 days (mean "
        + fr.fmt(mean_s)
        + "/"
        + fr.fmt(mean_d)
        + "; latest "
        + _bp_text(sel)
        + ")"
    )


def _stage2_reasons(
    head: pd.Series, tb: treated.TreatedBaseline, index: pd.Index
) -> tuple[pd.Series, pd.Series]:
    """The flag texts: at once (new or worse than the treated baseline) and per review (not worsening)."""
    base_text = (
        "this patient's treated baseline (28-day median "
        + fr.fmt(tb.median_s)
        + "/"
        + fr.fmt(tb.median_d)
        + ", n="
        + tb.n.astype(str)
        + ")"
    )
    worse = pd.Series(tb.worsening, index=index)
    reason = (head + ". Review the treatment plan.").where(
        ~worse, head + ", worse than " + base_text + ". Review the treatment plan."
    )
    review = head + (
        ", at "
        + base_text
        + ": not worsening. Raised once per "
        + str(th.STAGE2_REVIEW_INTERVAL.days)
        + "-day care-plan review; a rise of "
        + fr.fmt(pd.Series(th.STAGE2_WORSENING["systolic_mmhg"], index=index))
        + "/"
        + fr.fmt(pd.Series(th.STAGE2_WORSENING["diastolic_mmhg"], index=index))
        + " over it (beyond this patient's noise, on 2 days) raises a flag at once."
    )
    warm = pd.Series(tb.warmup, index=index)
    review = review.where(
        ~warm,
        head
        + ", before this patient's treated baseline is built (n="
        + tb.n.astype(str)
        + f" of {th.BASELINE_MIN_READINGS} readings): raised once per "
        + str(th.STAGE2_WARMUP_REVIEW_INTERVAL.days)
        + "-day review while it builds; clear worsening raises a flag at once.",
    )
    return reason, review


def bp_hypotension(readings: pd.DataFrame, *, now: datetime, limits: Limits = DEFAULTS) -> pd.DataFrame:
    """< 90 systolic and/or < 60 diastolic (home-monitor convention)."""
    bp = valid(readings, BP)
    if bp.empty:
        return fr.empty_candidates()
    s = limits.at("bp_hypotension_systolic", bp["patient_id"])
    d = limits.at("bp_hypotension_diastolic", bp["patient_id"])
    low = (bp["systolic_mmhg"] < s) | (bp["diastolic_mmhg"] < d)
    sel = bp.loc[low]
    line = _line(s, sel) + "/" + _line(d, sel)
    reason = (
        "BP " + _bp_text(sel) + " below " + line + ": possible hypotension. Ask about dizziness or "
        "falls; review antihypertensives against this patient's usual values."
    )
    return one_reading_candidates(
        sel,
        rule_id="bp_hypotension",
        severity="high",
        reason=reason,
        value=sel["systolic_mmhg"],
        unit=th.Unit.MMHG.value,
    )


def _pulse_occasions(readings: pd.DataFrame) -> pd.DataFrame:
    """Valid pulse occasions from cuffs and oximeters, one patient's readings in time order."""
    parts = [valid(readings, BP, occasions=True), valid(readings, "spo2", occasions=True)]
    p = pd.concat([x for x in parts if len(x)] or [parts[0]], ignore_index=True)
    p = p[p["pulse_bpm"].notna()]
    return p.sort_values(["patient_id", "measured_at", "reading_id"], kind="stable").reset_index(drop=True)


def _persistent(out: np.ndarray, bp: pd.DataFrame) -> np.ndarray:
    """Rows ending ``PULSE_PERSISTENCE_READINGS`` consecutive out-of-range occasions within the span."""
    k = th.PULSE_PERSISTENCE_READINGS
    run = out.copy()
    for j in range(1, k):
        prev = np.zeros(len(bp), dtype=bool)
        prev[j:] = out[:-j]
        run &= prev
    persistent: np.ndarray = run & within(bp, -(k - 1), th.PULSE_PERSISTENCE_SPAN)
    return persistent


def pulse_out_of_range(readings: pd.DataFrame, *, now: datetime, limits: Limits = DEFAULTS) -> pd.DataFrame:
    """Pulse < 50 or > 120 bpm on two readings within 30 min, or on 3 consecutive occasions in 3 days.

    The pair is the confirmation reading of a session; persistence across sessions catches the
    patient who takes one reading a day (issue 16: 128-145 on four readings over two days). Pulse
    comes from cuffs and from oximeters.
    """
    bp = _pulse_occasions(readings)
    if len(bp) < 2:
        return fr.empty_candidates()
    lo = limits.at("pulse_low", bp["patient_id"])
    hi = limits.at("pulse_high", bp["patient_id"])
    out = ((bp["pulse_bpm"] < lo) | (bp["pulse_bpm"] > hi)).to_numpy(dtype=bool)
    prev_out = np.zeros(len(bp), dtype=bool)
    prev_out[1:] = out[:-1]
    hit = out & prev_out & within(bp, -1, th.PULSE_CONFIRM_WINDOW)
    sel = bp.loc[hit]
    prev_pulse, _ = neighbour(bp, "pulse_bpm", 1)
    reason = (
        "Pulse "
        + fr.fmt(prev_pulse.loc[hit])
        + " then "
        + fr.fmt(sel["pulse_bpm"])
        + " bpm, outside "
        + _line(lo, sel)
        + "-"
        + _line(hi, sel)
        + " on two readings."
    )
    pairs = confirmed_pair_candidates(
        bp,
        hit,
        rule_id="pulse_out_of_range",
        severity="moderate",
        reason=reason,
        value_col="pulse_bpm",
        unit=th.Unit.BPM.value,
    )
    return fr.concat([pairs, _persistence_candidates(bp, _persistent(out, bp) & ~hit, lo, hi)])


def _persistence_candidates(
    bp: pd.DataFrame, run: np.ndarray, lo: pd.Series | float, hi: pd.Series | float
) -> pd.DataFrame:
    k = th.PULSE_PERSISTENCE_READINGS
    if not run.any():
        return fr.empty_candidates()
    sel = bp.loc[run]
    values = " / ".join(["{}"] * k)
    lagged = [bp["pulse_bpm"].shift(j).loc[run] for j in range(k - 1, -1, -1)]
    text = pd.Series(
        [values.format(*(f"{x:.0f}" for x in row)) for row in zip(*lagged, strict=True)], index=sel.index
    )
    span = sel["measured_at"] - bp["measured_at"].shift(k - 1).loc[run]
    days = (span.dt.total_seconds() / 86400).round(1)
    reason = (
        "Pulse "
        + text
        + f" bpm on {k} consecutive readings over "
        + days.astype(str)
        + " days, outside "
        + _line(lo, sel)
        + "-"
        + _line(hi, sel)
        + ": persistent, not a single session."
    )
    return fr.candidates(
        rule_id="pulse_out_of_range",
        patient_id=sel["patient_id"],
        severity="moderate",
        reason=reason,
        reading_ids=fr.id_lists([bp["reading_id"].shift(j).loc[run] for j in range(k - 1, -1, -1)]),
        first_at=bp["measured_at"].shift(k - 1).loc[run],
        last_at=sel["measured_at"],
        value=sel["pulse_bpm"],
        unit=th.Unit.BPM.value,
    )
