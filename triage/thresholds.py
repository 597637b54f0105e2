"""Clinical thresholds as typed constants, each with its unit, its source and its safety floor.

Values come from DOMAIN.md Part C. A per-patient override (set by a clinician, stored with its
unit) may move a threshold, but never past its ``floor``: the level-2 hypoglycaemia line can only
be raised (made more sensitive) and the crisis lines can only be lowered. ``clamp`` enforces that
at evaluation time; ``triage.overrides.set_override`` refuses such values at write time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Literal

from gateway import contract


class Unit(StrEnum):
    MMHG = "mm[Hg]"  # UCUM
    MG_DL = "mg/dL"
    MMOL_L = "mmol/L"
    BPM = "/min"
    DAYS = "d"
    COUNT = "1"
    SECONDS = "s"
    KG = "kg"
    PERCENT = "%"


# NIST SP 811: 1 lb = 0.45359237 kg exactly (the contract's lb factor).
KG_PER_LB = float(contract.KG_PER_LB)

# mg/dL per mmol/L: the wire contract's one glucose factor (18.0156; DOMAIN C2 lists 18.01559 as
# published), so an override entered in mmol/L means what a reading sent in mmol/L means. Explicit,
# never guessed from the number.
MG_DL_PER_MMOL_L = float(contract.MMOL_L_TO_MG_DL)

# "min": the effective value may never go below the floor (e.g. hypo L2 54 mg/dL);
# "max": it may never go above it (e.g. crisis 180 mmHg). None: freely adjustable.
FloorDirection = Literal["min", "max"]


@dataclass(frozen=True)
class Threshold:
    key: str
    value: float
    unit: Unit
    source: str
    floor: FloorDirection | None = None

    def clamp(self, value: float) -> float:
        """The value a per-patient override may actually take (the safety floor wins)."""
        if self.floor == "min":
            return max(value, self.value)
        if self.floor == "max":
            return min(value, self.value)
        return value

    def crosses_floor(self, value: float) -> bool:
        return self.clamp(value) != value


_ACC_AHA = "2017 ACC/AHA, retained in 2025 AHA/ACC (Hypertension 2025;82:e212)"
_AHA_CRISIS = "AHA 'Hypertensive Crisis: When You Should Call 911' (heart.org)"
_ADA_HYPO = "ADA Standards of Care, Section 6, Table 6.3"
_HYPER = "Agiostratidou et al., Diabetes Care 2017;40:1622"

BP_CRISIS_SYSTOLIC = Threshold("bp_crisis_systolic", 180, Unit.MMHG, _AHA_CRISIS, "max")
BP_CRISIS_DIASTOLIC = Threshold("bp_crisis_diastolic", 120, Unit.MMHG, _AHA_CRISIS, "max")
BP_STAGE2_SYSTOLIC = Threshold("bp_stage2_systolic", 140, Unit.MMHG, _ACC_AHA)
BP_STAGE2_DIASTOLIC = Threshold("bp_stage2_diastolic", 90, Unit.MMHG, _ACC_AHA)
BP_HYPOTENSION_SYSTOLIC = Threshold(
    "bp_hypotension_systolic", 90, Unit.MMHG, "ADC 6024N manual (home monitors)"
)
BP_HYPOTENSION_DIASTOLIC = Threshold(
    "bp_hypotension_diastolic", 60, Unit.MMHG, "ADC 6024N manual (home monitors)"
)
PULSE_LOW = Threshold("pulse_low", 50, Unit.BPM, "program convention (DOMAIN C1, unverified)")
PULSE_HIGH = Threshold("pulse_high", 120, Unit.BPM, "program convention (DOMAIN C1, unverified)")

GLUCOSE_HYPO_L1 = Threshold("glucose_hypo_l1", 70, Unit.MG_DL, _ADA_HYPO)
GLUCOSE_HYPO_L2 = Threshold("glucose_hypo_l2", 54, Unit.MG_DL, _ADA_HYPO, "min")
GLUCOSE_HYPER_L2 = Threshold("glucose_hyper_l2", 250, Unit.MG_DL, _HYPER)
GLUCOSE_KETONE_SINGLE = Threshold(
    "glucose_ketone_single", 240, Unit.MG_DL, "ADA patient guidance (ketone check)"
)
GLUCOSE_KETONE_PAIR = Threshold("glucose_ketone_pair", 250, Unit.MG_DL, "ACP sick-day advice (two readings)")
# Meters read "HI" above 600 (Keto-Mojo manual, Tidepool clamp): a valid number above it is as
# urgent as a HI. Fixed, not overridable (kept out of ``ALL``).
GLUCOSE_METER_CEILING = Threshold(
    "glucose_meter_ceiling", 600, Unit.MG_DL, "Keto-Mojo GK manual; Tidepool BG_CLAMP_THRESHOLD"
)

_HF_WEIGHT = "HFSA/AHA heart-failure self-care advice: report 2-3 lb in a day or 5 lb in a week"
_SPO2 = "BTS 2017 oxygen guideline (target 94-98 %, 88-92 % if at risk of hypercapnia)"

# Heart-failure weight gain against the lowest recent weight (the patient's dry-weight proxy).
WEIGHT_GAIN_DAY = Threshold("weight_gain_day", 0.9, Unit.KG, _HF_WEIGHT + " (2 lb = 0.9 kg)")
WEIGHT_GAIN_WEEK = Threshold("weight_gain_week", 2.3, Unit.KG, _HF_WEIGHT + " (5 lb = 2.3 kg)")
# Sustained low SpO2: a COPD care plan lowers it to 88 (BTS at-risk target). The critical floor
# can only be raised (program convention for severe hypoxaemia, unverified).
SPO2_LOW = Threshold("spo2_low", 90, Unit.PERCENT, _SPO2)
SPO2_CRITICAL = Threshold("spo2_critical", 85, Unit.PERCENT, "program convention (severe hypoxaemia)", "min")

# Trend (windowed CUSUM, triage/rules/cusum.py): the rise worth catching (the allowance is half of
# it) and the decision interval in the patient's own SDs. Page 1954 / Montgomery's design rule
# (k = shift / 2); h = 3.5 chosen on the simulated population (docs/triage.md: time to flag vs burden).
_CUSUM = "Page's CUSUM (Biometrika 1954); k = shift/2 design (Montgomery, Statistical Quality Control)"
TREND_SYSTOLIC_SHIFT = Threshold("trend_systolic_shift", 10, Unit.MMHG, _CUSUM + "; 10 mmHg: a dose step")
TREND_WEIGHT_SHIFT = Threshold("trend_weight_shift", 1.0, Unit.KG, _CUSUM + "; 1 kg of retained fluid")
TREND_DECISION = Threshold("trend_decision", 3.5, Unit.COUNT, _CUSUM + "; in the patient's own SDs")

ALL: dict[str, Threshold] = {
    t.key: t
    for t in (
        BP_CRISIS_SYSTOLIC,
        BP_CRISIS_DIASTOLIC,
        BP_STAGE2_SYSTOLIC,
        BP_STAGE2_DIASTOLIC,
        BP_HYPOTENSION_SYSTOLIC,
        BP_HYPOTENSION_DIASTOLIC,
        PULSE_LOW,
        PULSE_HIGH,
        GLUCOSE_HYPO_L1,
        GLUCOSE_HYPO_L2,
        GLUCOSE_HYPER_L2,
        GLUCOSE_KETONE_SINGLE,
        GLUCOSE_KETONE_PAIR,
        WEIGHT_GAIN_DAY,
        WEIGHT_GAIN_WEEK,
        SPO2_LOW,
        SPO2_CRITICAL,
        TREND_SYSTOLIC_SHIFT,
        TREND_WEIGHT_SHIFT,
        TREND_DECISION,
    )
}

# --- timing and persistence (program conventions, DOMAIN C1/C3) ---------------------------------

# AHA: re-measure after 1-5 min; the next reading within this window confirms or clears a crisis.
CRISIS_REMEASURE_WINDOW = timedelta(minutes=15)
# Penn remote-BP trial messaged clinicians after >= 3 elevated readings (Lee et al. 2022).
STAGE2_PERSISTENCE_READINGS = 3
STAGE2_PERSISTENCE_SPAN = timedelta(days=7)
# Stable-but-high under treatment (issue 16): a patient whose own 28-day median is already at
# stage 2 is judged against that treated baseline. Re-raised at once only when the run's mean is
# worse by at least this much, and by STAGE2_WORSENING_Z standard deviations of a run mean (the
# patient's own MAD-based SD / sqrt(3)), over readings on at least two calendar days (UTC);
# otherwise once per documented review interval (monthly care-plan review). 10/7 is about 3 SD
# of a 3-reading mean at home-monitor noise (SD ~6/4 mmHg), so noise alone rarely crosses it.
STAGE2_WORSENING = {"systolic_mmhg": 10.0, "diastolic_mmhg": 7.0}
STAGE2_WORSENING_Z = 3.0
STAGE2_REVIEW_INTERVAL = timedelta(days=30)
# Warm-up (fewer than BASELINE_MIN_READINGS readings before the run): one stage-2 flag per this
# review interval; worsening against the readings so far (at least STAGE2_WARMUP_MIN_READINGS)
# raises at once. Crisis rules are separate and never held back.
STAGE2_WARMUP_REVIEW_INTERVAL = timedelta(days=7)
STAGE2_WARMUP_MIN_READINGS = 3
KETONE_PAIR_WINDOW = timedelta(hours=24)
PULSE_CONFIRM_WINDOW = timedelta(minutes=30)
# One reading per session: this many consecutive out-of-range occasions within the span (issue 16:
# 128-145 bpm on four readings over two days must be flagged).
PULSE_PERSISTENCE_READINGS = 3
PULSE_PERSISTENCE_SPAN = timedelta(days=3)

# Weight: "a day" compares with the lowest weighing 12-36 h before, "a week" with the lowest
# 12 h - 7 days before (a morning weight against yesterday's, tolerant of the time of day).
WEIGHT_DAY_WINDOW = (timedelta(hours=12), timedelta(hours=36))
WEIGHT_WEEK_WINDOW = (timedelta(hours=12), timedelta(days=7))
# With a dry weight set (patient_dry_weights), the week line is measured from it: one flag per
# patient per this interval while the patient stays above it (weekly HF clinic review).
WEIGHT_DRY_REVIEW_INTERVAL = timedelta(days=7)
# SpO2 "sustained": two consecutive occasions below the line within this span (spot checks, or
# two per-minute continuous summaries).
SPO2_SUSTAINED_WINDOW = timedelta(hours=1)

# Robust baseline (median + MAD); "not enough history" below the minimum count.
BASELINE_WINDOW = timedelta(days=28)
BASELINE_RECENT = timedelta(days=3)  # readings this recent are compared with the baseline before it
BASELINE_MIN_READINGS = 10
BASELINE_ROBUST_Z = 3.5  # Iglewicz & Hoaglin modified z-score cut-off
BASELINE_MIN_DELTA = {"systolic_mmhg": 20.0, "diastolic_mmhg": 12.0, "glucose_mg_dl": 60.0}
MAD_TO_SD = 1.4826

# Trend: the 7-day mean of daily means rises, week over week, by at least this much.
TREND_MIN_RISE = {"systolic_mmhg": 10.0, "diastolic_mmhg": 7.0, "glucose_mg_dl": 30.0}
TREND_MIN_DAYS_PER_WEEK = 4
# Windowed CUSUM: the sum forgets readings older than TREND_WINDOW; each reading's baseline is
# the patient's readings in the TREND_BASELINE days ending TREND_WINDOW before it (window +
# baseline + window = the jobs' 35-day lookback). SD floors: below these a patient's spread is
# measurement luck (a cuff reads +-5 mmHg, a home scale +-0.2 kg), not a reason to alarm sooner.
TREND_WINDOW = timedelta(days=7)
TREND_BASELINE = timedelta(days=21)
TREND_SD_FLOOR = {"systolic_mmhg": 5.0, "weight_kg": 0.3}
# Baseline readings further than this many robust SDs from the window's median are clipped to it.
TREND_CLIP_SDS = 3.0
# One trend flag per metric per interval; closed, it is not reopened inside it.
TREND_REFLAG_INTERVAL = timedelta(days=14)

# Adherence and the three silences (DOMAIN H9: separate signals, separate owners).
PATIENT_SILENT_AFTER = timedelta(days=3)
DEVICE_NOT_SEEN_AFTER = timedelta(days=2)
GATEWAY_OFFLINE_AFTER = timedelta(minutes=10)
GATEWAY_STALE_AFTER = timedelta(hours=2)  # a status not refreshed this long counts as offline
PERIOD_DAYS = 30
PERIOD_TARGET_DAYS = 16
PERIOD_AT_RISK_MARGIN = 3  # flag while the target is still reachable, with this slack

# Device / data quality.
CLOCK_DRIFT_LIMIT_S = 600.0  # +-10 min (pazaan/600SeriesAndroidUploader #115)
FAILED_MEASUREMENTS_LIMIT = 3
FAILED_MEASUREMENTS_WINDOW = timedelta(hours=24)
TECHNIQUE_STATUS = ("body_movement", "cuff_too_loose", "improper_measurement_position")
TECHNIQUE_LIMIT = 3
TECHNIQUE_WINDOW = timedelta(days=7)
