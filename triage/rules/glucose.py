"""Glucose rules: hypoglycaemia levels 1 and 2, level-2 hyperglycaemia, ketone check, meter HI/LO.

Level-2 hypoglycaemia and meter LO are on the safety floor (DOMAIN C4/H8): critical, never
snoozed, and an override can only make their threshold more sensitive.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from triage import frames as fr
from triage import thresholds as th
from triage.limits import DEFAULTS, Limits
from triage.rules._common import (
    collapse_duplicates,
    confirmed_pair_candidates,
    one_reading_candidates,
    valid,
    within,
)

GLUCOSE = "glucose"
MG = th.Unit.MG_DL.value


def _g(df: pd.DataFrame) -> pd.Series:
    return fr.fmt(df["glucose_mg_dl"]) + " mg/dL"


def _single(
    rule_id: str,
    sel: pd.DataFrame,
    severity: str | pd.Series,
    reason: pd.Series,
    baseline: pd.Series | float = np.nan,
) -> pd.DataFrame:
    return one_reading_candidates(
        sel,
        rule_id=rule_id,
        severity=severity,
        reason=reason,
        value=sel["glucose_mg_dl"],
        baseline=baseline,
        unit=MG,
    )


def glucose_hypo(readings: pd.DataFrame, *, now: datetime, limits: Limits = DEFAULTS) -> pd.DataFrame:
    """Level 2 (< 54, critical, safety floor) and level 1 (< 70 and >= 54, high)."""
    g = valid(readings, GLUCOSE)
    if g.empty:
        return fr.empty_candidates()
    l2 = pd.Series(limits.at("glucose_hypo_l2", g["patient_id"]), index=g.index)
    l1 = pd.Series(limits.at("glucose_hypo_l1", g["patient_id"]), index=g.index)
    v = g["glucose_mg_dl"]
    lvl2 = v < l2
    lvl1 = (v < l1) & ~lvl2
    s2, s1 = g.loc[lvl2], g.loc[lvl1]
    r2 = (
        "Level-2 hypoglycaemia: "
        + _g(s2)
        + " (below "
        + fr.fmt(l2.loc[lvl2])
        + "). Contact the patient now: fast carbohydrate, re-check in 15 min."
    )
    r1 = (
        "Level-1 hypoglycaemia: "
        + _g(s1)
        + " (below "
        + fr.fmt(l1.loc[lvl1])
        + "). Treat with fast carbohydrate; review the cause."
    )
    return fr.concat(
        [
            _single("glucose_hypo_l2", s2, "critical", r2, l2.loc[lvl2]),
            _single("glucose_hypo_l1", s1, "high", r1, l1.loc[lvl1]),
        ]
    )


def glucose_hyper(readings: pd.DataFrame, *, now: datetime, limits: Limits = DEFAULTS) -> pd.DataFrame:
    """Level-2 hyperglycaemia (> 250); critical above the meter ceiling (> 600), like a meter HI."""
    g = valid(readings, GLUCOSE)
    if g.empty:
        return fr.empty_candidates()
    lim = pd.Series(limits.at("glucose_hyper_l2", g["patient_id"]), index=g.index)
    hit = g["glucose_mg_dl"] > lim
    sel = g.loc[hit]
    extreme = sel["glucose_mg_dl"] > th.GLUCOSE_METER_CEILING.value
    reason = (
        "Level-2 hyperglycaemia: " + _g(sel) + " (above " + fr.fmt(lim.loc[hit]) + "). Advise a ketone check."
    ).where(
        ~extreme,
        "Glucose " + _g(sel) + " above the meter range (600 mg/dL, where meters read HI): contact the "
        "patient now; ketone check, consider emergency care.",
    )
    severity = pd.Series(np.where(extreme, "critical", "moderate"), index=sel.index)
    return _single("glucose_hyper_l2", sel, severity, reason, lim.loc[hit])


def glucose_ketone_check(readings: pd.DataFrame, *, now: datetime, limits: Limits = DEFAULTS) -> pd.DataFrame:
    """Ketone check: one reading > 240 (info, automated advice) or two > 250 within 24 h (high).

    The pair is two consecutive occasions ("two times in a row", ACP); a value delivered twice or
    re-read within 30 s is one occasion.
    """
    g = valid(readings, GLUCOSE, occasions=True)
    if g.empty:
        return fr.empty_candidates()
    single_lim = pd.Series(limits.at("glucose_ketone_single", g["patient_id"]), index=g.index)
    pair_lim = pd.Series(limits.at("glucose_ketone_pair", g["patient_id"]), index=g.index)
    over_pair = (g["glucose_mg_dl"] > pair_lim).to_numpy(dtype=bool)
    prev_over = np.zeros(len(g), dtype=bool)
    prev_over[1:] = over_pair[:-1]
    pair = over_pair & prev_over & within(g, -1, th.KETONE_PAIR_WINDOW)
    single = (g["glucose_mg_dl"] > single_lim).to_numpy(dtype=bool) & ~pair
    ps, ss = g.loc[pair], g.loc[single]
    prev_g = g["glucose_mg_dl"].shift(1).loc[pair]
    r_pair = (
        "Two readings above 250 mg/dL within 24 h ("
        + fr.fmt(prev_g)
        + ", "
        + fr.fmt(ps["glucose_mg_dl"])
        + "): ketone check now (ACP sick-day advice); call if ketones are moderate or high."
    )
    r_single = "Glucose " + _g(ss) + " above 240: advise a ketone check (ADA)."
    pair_c = confirmed_pair_candidates(
        g,
        pair,
        rule_id="glucose_ketone_check",
        severity="high",
        reason=r_pair,
        value_col="glucose_mg_dl",
        unit=MG,
    )
    return fr.concat([pair_c, _single("glucose_ketone_check", ss, "info", r_single)])


def glucose_meter_out_of_range(
    readings: pd.DataFrame, *, now: datetime, limits: Limits = DEFAULTS
) -> pd.DataFrame:
    """Meter LO (< 20, critical, safety floor) and HI (> 600, critical): not numbers, still alarms.

    These readings are stored as ``failed`` (no value); quarantined ones (implausible, e.g. a bad
    timestamp) still never alert.
    """
    mask = (
        (readings["kind"] == GLUCOSE)
        & (readings["quality"] != "quarantined")
        & readings["measurement"].isin(["out_of_range_low", "out_of_range_high"])
    )
    g = collapse_duplicates(readings.loc[mask])
    if g.empty:
        return fr.empty_candidates()
    low = g["measurement"] == "out_of_range_low"
    lo, hi = g.loc[low], g.loc[~low]
    r_lo = pd.Series(
        "Meter read LO (below its range, < 20 mg/dL): treat as level-2 hypoglycaemia; contact the "
        "patient now.",
        index=lo.index,
    )
    r_hi = pd.Series(
        "Meter read HI (above its range, > 600 mg/dL): contact the patient now; ketone check, "
        "consider emergency care.",
        index=hi.index,
    )
    return fr.concat(
        [
            _single("glucose_meter_lo", lo, "critical", r_lo),
            _single("glucose_meter_hi", hi, "critical", r_hi),
        ]
    )
