"""Triage rules: pure functions ``rule(readings, *, now, ...) -> candidate frame``, and their composition.

No rule reads the clock or the database. ``evaluate_readings`` runs the value rules (called for
patients with new readings), ``evaluate_daily`` the calendar rules (trend, adherence period),
``evaluate_silences`` the three silences. Each returns an :class:`Evaluation`: the candidates to
upsert and the suppressions to log, each with its reason (DOMAIN H8).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd

from triage import frames as fr
from triage.limits import DEFAULTS, Limits
from triage.rules.adherence import adherence_period, silences
from triage.rules.baseline import baseline_deviation, trend
from triage.rules.blood_pressure import bp_crisis, bp_hypotension, bp_stage2_sustained, pulse_out_of_range
from triage.rules.cusum import trend_cusum
from triage.rules.glucose import glucose_hyper, glucose_hypo, glucose_ketone_check, glucose_meter_out_of_range
from triage.rules.quality import clock_drift, irregular_pulse, measurement_technique, repeated_failures
from triage.rules.vitals import spo2_critical, spo2_low, weight_gain

__all__ = [
    "DAILY_RULES",
    "SAFETY_FLOOR_RULES",
    "VALUE_RULES",
    "Evaluation",
    "adherence_period",
    "baseline_deviation",
    "bp_crisis",
    "bp_hypotension",
    "bp_stage2_sustained",
    "clock_drift",
    "evaluate_daily",
    "evaluate_readings",
    "evaluate_silences",
    "glucose_hyper",
    "glucose_hypo",
    "glucose_ketone_check",
    "glucose_meter_out_of_range",
    "irregular_pulse",
    "measurement_technique",
    "pulse_out_of_range",
    "repeated_failures",
    "silences",
    "spo2_critical",
    "spo2_low",
    "trend",
    "trend_cusum",
    "weight_gain",
]

ValueRule = Callable[..., pd.DataFrame]

VALUE_RULES: tuple[ValueRule, ...] = (
    bp_crisis,
    bp_stage2_sustained,
    bp_hypotension,
    pulse_out_of_range,
    glucose_hypo,
    glucose_hyper,
    glucose_ketone_check,
    glucose_meter_out_of_range,
    weight_gain,
    spo2_low,
    spo2_critical,
    baseline_deviation,
    trend_cusum,
    irregular_pulse,
    measurement_technique,
    clock_drift,
    repeated_failures,
)
DAILY_RULES: tuple[ValueRule, ...] = (trend, adherence_period)

# Nothing silences these (DOMAIN C4/H8): no snooze, no threshold override past the floor.
SAFETY_FLOOR_RULES = frozenset({"bp_crisis", "glucose_hypo_l2", "glucose_meter_lo", "spo2_critical"})


@dataclass(frozen=True)
class Evaluation:
    candidates: pd.DataFrame = field(default_factory=fr.empty_candidates)
    suppressed: pd.DataFrame = field(default_factory=fr.empty_suppressions)


def _key(c: pd.DataFrame) -> pd.Series:
    return c["rule_id"] + "|" + c["subject_key"] + "|" + c["reading_ids"].map(str) + "|" + c["episode_key"]


def run_value_rules(
    readings: pd.DataFrame, *, now: datetime, limits: Limits = DEFAULTS, starts: pd.Series | None = None
) -> pd.DataFrame:
    """``starts`` (patient_id -> first reading) goes to the rule that counts review intervals."""
    return fr.concat(
        rule(readings, now=now, limits=limits, starts=starts)
        if rule is bp_stage2_sustained
        else rule(readings, now=now, limits=limits)
        for rule in VALUE_RULES
    )


def _override_text(limits: Limits) -> pd.Series:
    o = limits.overrides
    cols = [c for c in ("value", "unit", "set_by") if c in o.columns]
    text = (
        o["threshold_key"].astype(str)
        + "="
        + (
            o["value"].astype(str) + " " + o["unit"].astype(str)
            if len(cols) == 3
            else o["value_canonical"].astype(str)
        )
    )
    if "set_by" in o.columns:
        text = text + " (set by " + o["set_by"].astype(str) + ")"
    return text.groupby(o["patient_id"]).agg("; ".join)


def evaluate_readings(
    readings: pd.DataFrame,
    *,
    now: datetime,
    limits: Limits = DEFAULTS,
    snoozes: pd.DataFrame | None = None,
    starts: pd.Series | None = None,
) -> Evaluation:
    """Value rules over ``readings`` (only rows measured by ``now``), with overrides and snoozes applied.

    ``starts``: patient_id -> the patient's first reading ever (``readings_store.first_readings``), from
    which the stage-2 review intervals are counted; without it, each patient's first reading in
    ``readings`` (right only when ``readings`` hold the patient's whole history).

    A candidate that the default thresholds raise but the patient's override does not is logged as
    suppressed by that override, naming it; overrides never move past the floor (``Limits.at``).
    """
    r = readings[readings["measured_at"] <= pd.Timestamp(now)]
    cands = run_value_rules(r, now=now, limits=limits, starts=starts)
    sup = [fr.empty_suppressions()]
    if not limits.empty:
        sub = r[r["patient_id"].isin(limits.patients())]
        default = run_value_rules(sub, now=now, limits=DEFAULTS, starts=starts)
        missing = default[~_key(default).isin(set(_key(cands)))]
        why = "patient threshold override: " + missing["patient_id"].map(_override_text(limits)).astype(str)
        sup.append(fr.suppressions(missing, source="override", reason=why))
    cands, snoozed = apply_snoozes(cands, snoozes)
    return Evaluation(cands, fr.concat_suppressions([*sup, snoozed]))


def evaluate_daily(
    readings: pd.DataFrame,
    *,
    now: datetime,
    patients: pd.DataFrame,
    snoozes: pd.DataFrame | None = None,
) -> Evaluation:
    r = readings[readings["measured_at"] <= pd.Timestamp(now)]
    cands = fr.concat(rule(r, now=now, patients=patients) for rule in DAILY_RULES)
    cands, snoozed = apply_snoozes(cands, snoozes)
    return Evaluation(cands, snoozed)


def evaluate_silences(
    devices: pd.DataFrame,
    gateways: pd.DataFrame,
    *,
    now: datetime,
    snoozes: pd.DataFrame | None = None,
) -> Evaluation:
    cands, owner = silences(devices, gateways, now=now)
    cands, snoozed = apply_snoozes(cands, snoozes)
    return Evaluation(cands, fr.concat_suppressions([owner, snoozed]))


def apply_snoozes(cands: pd.DataFrame, snoozes: pd.DataFrame | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Drop candidates covered by an active snooze, except critical ones and safety-floor rules.

    ``snoozes``: ``patient_id, rule_id, until, reason, set_by``. A snooze covers candidates whose
    last reading is at or before ``until``.
    """
    if snoozes is None or snoozes.empty or cands.empty:
        return cands, fr.empty_suppressions()
    s = snoozes.copy()
    s["until"] = pd.to_datetime(s["until"], utc=True)
    s = s.sort_values("until").drop_duplicates(["patient_id", "rule_id"], keep="last")
    m = cands.merge(
        s[["patient_id", "rule_id", "until", "reason", "set_by"]].astype({"patient_id": "Int64"}),
        on=["patient_id", "rule_id"],
        how="left",
        suffixes=("", "_snooze"),
    )
    covered = (m["until"].notna() & (m["last_reading_at"] <= m["until"])).to_numpy(dtype=bool)
    protected = ((m["severity"] == "critical") | m["rule_id"].isin(SAFETY_FLOOR_RULES)).to_numpy(dtype=bool)
    drop = covered & ~protected
    muted = cands.loc[drop]
    why = (
        "snoozed until "
        + m.loc[drop, "until"].dt.strftime("%Y-%m-%dT%H:%MZ")
        + " by "
        + m.loc[drop, "set_by"].astype(str)
        + ": "
        + m.loc[drop, "reason_snooze"].astype(str)
    )
    return cands.loc[~drop].reset_index(drop=True), fr.suppressions(muted, source="snooze", reason=why)
