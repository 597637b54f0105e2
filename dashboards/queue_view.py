"""The queue by patient: one row per patient with their open flags, in plain words, most urgent first.

Pure logic over the rows ``queries.queue_reads`` returns (one per flag) and the newest reading of each
patient: a nurse works a person, not a flag, and must see at a glance whether a later reading
already settled the triggering one and whether someone must call 911.

``present`` writes each row's text (values, ages, the one-click codes of each flag) once in Python,
so the template only places it: per-row macros and filter chains made rendering the 200-row page
cost more than its SQL (issue 17's speed target).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from dashboards.localtime import ago_text
from dashboards.units import glucose_text, number_text

# What each rule means, in the words a nurse would use on the phone (no internal rule names).
RULE_WORDS: Final[dict[str, str]] = {
    "bp_crisis": "Blood pressure in the crisis range",
    "bp_crisis_confirmed": "Blood pressure in the crisis range, confirmed",
    "bp_stage2_sustained": "Blood pressure high for several days",
    "bp_hypotension": "Blood pressure too low",
    "baseline_deviation": "Far from this patient's usual values",
    "trend_rise": "Values rising over the past days",
    "trend_cusum": "Drifting up from this patient's usual level",
    "irregular_pulse": "Irregular pulse reported by the cuff",
    "pulse_out_of_range": "Pulse too fast or too slow",
    "spo2_critical": "Oxygen saturation dangerously low",
    "spo2_low": "Oxygen saturation low",
    "weight_gain": "Weight gain (possible fluid retention)",
    "glucose_hypo": "Blood sugar too low",
    "glucose_hypo_l1": "Blood sugar low",
    "glucose_hypo_l2": "Blood sugar very low",
    "glucose_hyper": "Blood sugar too high",
    "glucose_hyper_l2": "Blood sugar very high",
    "glucose_ketone_check": "Blood sugar high: ask about ketones",
    "adherence_period": "Too few readings this period",
    "gateway_offline": "Home hub offline: no readings arriving",
    "device_clock_drift": "Device clock wrong",
    "device_repeated_failures": "Device keeps failing to measure",
    "measurement_technique": "Readings suggest a measuring mistake",
}

SEVERITY_RANK: Final[dict[str, int]] = {"critical": 0, "high": 1, "moderate": 2, "info": 3}


def plain_reason(rule_id: str) -> str:
    """The rule in words; an unknown rule still reads as words, never as ``snake_case``."""
    words = RULE_WORDS.get(rule_id)
    if words is not None:
        return words
    text = rule_id.replace("_", " ").replace(".", " ").strip()
    return text[:1].upper() + text[1:] if text else "Needs a look"


@dataclass
class PatientRow:
    """One patient in the queue: the flags to work and what decides their place."""

    key: str
    patient_id: int | None
    patient: str
    flags: list[dict[str, Any]] = field(default_factory=list)
    call_911: bool = False
    newest: Mapping[str, dict[str, Any]] = field(default_factory=dict)
    # Filled by ``present``: what the row says, as text.
    trigger_text: str = ""
    newer_text: str = ""
    newer_ago: str = ""
    waiting: str = ""
    who: str = ""

    @property
    def severity(self) -> str:
        return str(self.trigger["severity"])

    @property
    def oldest_open(self) -> datetime:
        opened: list[datetime] = [f["opened_at"] for f in self.flags]
        return min(opened)

    @property
    def assigned(self) -> list[str]:
        return sorted({f["assigned_to"] for f in self.flags if f.get("assigned_to")})

    @property
    def trigger(self) -> dict[str, Any]:
        """The reading of the most urgent flag: the one that put the patient here."""
        return self.flags[0]

    @property
    def newer_reading(self) -> dict[str, Any] | None:
        """The patient's newest reading of the same kind, when it came after the triggering one."""
        t = self.trigger
        n = self.newest.get(str(t.get("kind")))
        if n is None or t.get("reading_at") is None or n.get("reading_id") == t.get("reading_id"):
            return None
        return n if n["measured_at"] > t["reading_at"] else None


def _flag_key(f: Mapping[str, Any]) -> tuple[int, int, datetime, int]:
    return (0 if f.get("call_911") else 1, SEVERITY_RANK.get(f["severity"], 9), f["opened_at"], f["flag_id"])


def by_patient(
    flags: Iterable[dict[str, Any]], newest: Mapping[int, Mapping[str, dict[str, Any]]]
) -> list[PatientRow]:
    """Group flag rows by patient; crisis with symptoms first, then severity, then oldest waiting."""
    groups: dict[str, PatientRow] = {}
    for f in flags:
        pid = f.get("patient_id")
        key = f"p{pid}" if pid is not None else f"s{f.get('subject_key') or f['flag_id']}"
        row = groups.get(key)
        if row is None:
            name = f.get("patient") or f.get("subject_key") or "Unknown patient"
            row = groups[key] = PatientRow(key=key, patient_id=pid, patient=str(name),
                                           newest=newest.get(pid, {}) if pid is not None else {})
        f["plain"] = plain_reason(str(f["rule_id"]))
        row.flags.append(f)
        row.call_911 = row.call_911 or bool(f.get("call_911"))
    for row in groups.values():
        row.flags.sort(key=_flag_key)
    return sorted(groups.values(), key=lambda r: (_flag_key(r.flags[0])[:3], r.key))


def reading_text(r: Mapping[str, Any], glucose_unit: str) -> str:
    """A reading's values in one line: ``182/121 mmHg, pulse 72``, ``6.2 mmol/L``, ``81.5 kg``."""
    kind = r.get("kind")
    pulse = f", pulse {number_text(r['pulse_bpm'])}" if r.get("pulse_bpm") is not None else ""
    if kind == "blood_pressure":
        return f"{number_text(r['systolic_mmhg'])}/{number_text(r['diastolic_mmhg'])} mmHg{pulse}"
    if kind == "glucose":
        return glucose_text(r.get("glucose_mg_dl"), glucose_unit)
    if kind == "weight":
        return f"{number_text(r.get('weight_kg'))} kg"
    if kind == "spo2":
        return f"SpO2 {number_text(r.get('spo2_pct'))} %{pulse}"
    return "–"


def present(
    rows: Iterable[PatientRow], *, one_click: Iterable[tuple[str, str]], clinician: bool,
    glucose_unit: str, now: datetime,
) -> None:
    """Write the text each row shows, and on each flag ``acts`` (the codes of the one-click events it
    allows, for app.js) and ``review`` (a clinician's Review link)."""
    codes = tuple(one_click)
    for row in rows:
        for f in row.flags:
            actions = f["actions"]
            f["acts"] = " ".join(code for event, code in codes if event in actions)
            f["review"] = clinician and "review" in actions
        t = row.trigger
        row.trigger_text = reading_text(t, glucose_unit)
        row.waiting = ago_text(t.get("seconds_since_reading"), now)
        n = row.newer_reading
        if n is not None:
            row.newer_text = reading_text(n, glucose_unit)
            row.newer_ago = ago_text(n["measured_at"], now)
        row.who = ", ".join(row.assigned) or "nobody yet"
