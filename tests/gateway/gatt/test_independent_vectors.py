"""Hand-written GATT vectors, run through the real ``decode`` command.

The vectors were written from DOMAIN.md Parts A and B before the decoders were read, so they
check the code against the spec rather than against itself. Hex and expected values stay
literals on purpose (no production constants). Each characteristic's payloads go through one
``python -m gateway.decode_cli`` subprocess, exactly the way an outside checker calls it.

Only Part B fields are compared: the decoder may add ``"warnings"`` to a frame it decoded with
warnings, and ``WARN`` vectors assert that it did.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[3]
ERROR = "error"
WARN = "warn"
OK = "ok"

_BP_NULLS: dict[str, Any] = {
    "unit": "mmHg",
    "systolic": None,
    "diastolic": None,
    "mean_arterial_pressure": None,
    "timestamp": None,
    "pulse_rate": None,
    "user_id": None,
    "status": None,
    "pulse_rate_range": None,
    "measurement_status_raw": None,
}
_BP = {**_BP_NULLS, "systolic": 120, "diastolic": 80, "mean_arterial_pressure": 93}
_ICP_NULLS: dict[str, Any] = {
    "unit": "mmHg",
    "current_cuff_pressure": None,
    "diastolic": "NaN",
    "mean_arterial_pressure": "NaN",
    "timestamp": None,
    "pulse_rate": None,
    "user_id": None,
    "status": None,
    "pulse_rate_range": None,
    "measurement_status_raw": None,
}
_GLU: dict[str, Any] = {
    "sequence_number": 1,
    "base_time": "2024-03-15T14:30:45",
    "time_offset_minutes": None,
    "user_facing_time": "2024-03-15T14:30:45",
    "concentration": None,
    "unit": None,
    "concentration_mg_dL": None,
    "concentration_mmol_L": None,
    "type": None,
    "sample_location": None,
    "sensor_status": None,
    "sensor_status_raw": None,
    "context_follows": False,
}
_CTX: dict[str, Any] = {
    "sequence_number": 1,
    "carbohydrate_id": None,
    "carbohydrate_amount_kg": None,
    "meal": None,
    "tester": None,
    "health": None,
    "exercise_duration_s": None,
    "exercise_intensity_pct": None,
    "medication_id": None,
    "medication_amount": None,
    "medication_unit": None,
    "hba1c_pct": None,
}
_RACP: dict[str, Any] = {
    "opcode": "report_stored_records",
    "operator": "all_records",
    "filter_type": None,
    "operand": None,
    "operand_min": None,
    "operand_max": None,
    "number_of_records": None,
    "request_opcode": None,
    "response": None,
}
# Operator 0x00 is the operator named "null" in A3.4 / Part B: a string name, not JSON null.
_RSP = {**_RACP, "opcode": "response_code", "operator": "null", "request_opcode": 1}
_CT: dict[str, Any] = {
    "timestamp": "2024-03-15T14:30:45",
    "day_of_week": "friday",
    "fractions256": 0,
    "adjust_reason": [],
}
_BP_FEATURES = [
    "body_movement_detection",
    "cuff_fit_detection",
    "irregular_pulse_detection",
    "pulse_rate_range_detection",
    "measurement_position_detection",
    "multiple_bond_support",
]
_GLS_FEATURES = [
    "low_battery_detection",
    "sensor_malfunction_detection",
    "sample_size",
    "strip_insertion_error",
    "strip_type_error",
    "result_high_low",
    "temperature_high_low",
    "read_interrupt",
    "general_device_fault",
    "time_fault",
    "multiple_bond",
]
_ALL_SENSOR_STATUS = [
    "device_battery_low",
    "sensor_malfunction",
    "sample_size_insufficient",
    "strip_insertion_error",
    "strip_type_incorrect",
    "result_higher_than_device_can_process",
    "result_lower_than_device_can_process",
    "sensor_temperature_too_high",
    "sensor_temperature_too_low",
    "read_interrupted",
    "general_device_fault",
    "time_fault",
]
# Base time 2024-03-15 14:30:45 as a Date Time field.
_T = "e807030f0e1e2d"

# (id, characteristic, hex, outcome, expected Part B fields or None for an error)
VECTORS: list[tuple[str, str, str, str, dict[str, Any] | None]] = [
    # ---- sfloat (A1) ----
    ("sf-18.9", "sfloat", "bdf0", OK, {"value": 18.9}),
    ("sf-204.7-not-nan", "sfloat", "fff7", OK, {"value": 204.7}),
    ("sf-nan", "sfloat", "ff07", OK, {"value": "NaN"}),
    ("sf-nres", "sfloat", "0008", OK, {"value": "NRes"}),
    ("sf-pinf", "sfloat", "fe07", OK, {"value": "+INF"}),
    ("sf-ninf", "sfloat", "0208", OK, {"value": "-INF"}),
    ("sf-reserved", "sfloat", "0108", OK, {"value": "reserved"}),
    ("sf-zero", "sfloat", "0000", OK, {"value": 0}),
    ("sf-neg-mantissa", "sfloat", "9cff", OK, {"value": -10.0}),
    ("sf-minus-one", "sfloat", "ff0f", OK, {"value": -1}),
    ("sf-pos-exp", "sfloat", "0c20", OK, {"value": 1200}),
    ("sf-exp-plus7", "sfloat", "0170", OK, {"value": 10000000}),
    ("sf-exp-minus8", "sfloat", "0180", OK, {"value": 1e-08}),
    ("sf-1.7e-7", "sfloat", "1180", OK, {"value": 1.7e-07}),
    ("sf-0.7", "sfloat", "07f0", OK, {"value": 0.7}),
    ("sf-neg-exp2", "sfloat", "0228", OK, {"value": -204600}),
    ("sf-short", "sfloat", "bd", ERROR, None),
    # ---- float32 (A1) ----
    ("f32-12345.67", "float32", "87d612fe", OK, {"value": 12345.67}),
    ("f32-37.0", "float32", "720100ff", OK, {"value": 37.0}),
    ("f32-nan", "float32", "ffff7f00", OK, {"value": "NaN"}),
    ("f32-nres", "float32", "00008000", OK, {"value": "NRes"}),
    ("f32-pinf", "float32", "feff7f00", OK, {"value": "+INF"}),
    ("f32-ninf", "float32", "02008000", OK, {"value": "-INF"}),
    ("f32-reserved", "float32", "01008000", OK, {"value": "reserved"}),
    ("f32-minus-0.1", "float32", "ffffffff", OK, {"value": -0.1}),
    ("f32-neg-mant", "float32", "9cfffffd", OK, {"value": -0.1}),
    ("f32-pos-exp", "float32", "05000003", OK, {"value": 5000}),
    ("f32-short", "float32", "87d612", ERROR, None),
    # ---- 2A35 blood pressure measurement (A2.1) ----
    ("bp-mmhg-min", "2A35", "00780050005d00", OK, _BP),
    (
        "bp-kpa",
        "2A35",
        "01a0f06bf07df0",
        OK,
        {**_BP, "unit": "kPa", "systolic": 16.0, "diastolic": 10.7, "mean_arterial_pressure": 12.5},
    ),
    (
        "bp-kpa-18.9",
        "2A35",
        "01bdf06bf07df0",
        OK,
        {**_BP, "unit": "kPa", "systolic": 18.9, "diastolic": 10.7, "mean_arterial_pressure": 12.5},
    ),
    ("bp-timestamp", "2A35", "02780050005d00" + _T, OK, {**_BP, "timestamp": "2024-03-15T14:30:45"}),
    ("bp-timestamp-unknown-year", "2A35", "02780050005d000000030f0e1e2d", OK, _BP),
    ("bp-pulse", "2A35", "04780050005d004800", OK, {**_BP, "pulse_rate": 72}),
    ("bp-user", "2A35", "08780050005d0001", OK, {**_BP, "user_id": 1}),
    ("bp-user-unknown", "2A35", "08780050005d00ff", OK, {**_BP, "user_id": 255}),
    (
        "bp-status-body-movement",
        "2A35",
        "10780050005d000100",
        OK,
        {
            **_BP,
            "status": ["body_movement"],
            "pulse_rate_range": "within_range",
            "measurement_status_raw": 1,
        },
    ),
    (
        "bp-status-cuff-loose",
        "2A35",
        "10780050005d000200",
        OK,
        {
            **_BP,
            "status": ["cuff_too_loose"],
            "pulse_rate_range": "within_range",
            "measurement_status_raw": 2,
        },
    ),
    (
        "bp-status-irregular",
        "2A35",
        "10780050005d000400",
        OK,
        {
            **_BP,
            "status": ["irregular_pulse"],
            "pulse_rate_range": "within_range",
            "measurement_status_raw": 4,
        },
    ),
    (
        "bp-status-range-upper",
        "2A35",
        "10780050005d000800",
        OK,
        {**_BP, "status": [], "pulse_rate_range": "exceeds_upper_limit", "measurement_status_raw": 8},
    ),
    (
        "bp-status-range-lower",
        "2A35",
        "10780050005d001000",
        OK,
        {**_BP, "status": [], "pulse_rate_range": "below_lower_limit", "measurement_status_raw": 16},
    ),
    (
        "bp-status-range-reserved",
        "2A35",
        "10780050005d001800",
        WARN,
        {**_BP, "status": [], "pulse_rate_range": "reserved_3", "measurement_status_raw": 24},
    ),
    (
        "bp-status-position",
        "2A35",
        "10780050005d002000",
        OK,
        {
            **_BP,
            "status": ["improper_measurement_position"],
            "pulse_rate_range": "within_range",
            "measurement_status_raw": 32,
        },
    ),
    (
        "bp-status-all-defined",
        "2A35",
        "10780050005d002f00",
        OK,
        {
            **_BP,
            "status": [
                "body_movement",
                "cuff_too_loose",
                "irregular_pulse",
                "improper_measurement_position",
            ],
            "pulse_rate_range": "exceeds_upper_limit",
            "measurement_status_raw": 47,
        },
    ),
    (
        "bp-status-rfu-bits",
        "2A35",
        "10780050005d00c0ff",
        WARN,
        {**_BP, "status": [], "pulse_rate_range": "within_range", "measurement_status_raw": 65472},
    ),
    (
        "bp-all-fields-kpa",
        "2A35",
        "1fa0f06bf07df0" + _T + "48000105" + "00",
        OK,
        {
            "unit": "kPa",
            "systolic": 16.0,
            "diastolic": 10.7,
            "mean_arterial_pressure": 12.5,
            "timestamp": "2024-03-15T14:30:45",
            "pulse_rate": 72,
            "user_id": 1,
            "status": ["body_movement", "irregular_pulse"],
            "pulse_rate_range": "within_range",
            "measurement_status_raw": 5,
        },
    ),
    (
        "bp-all-nan",
        "2A35",
        "00ff07ff07ff07",
        OK,
        {**_BP, "systolic": "NaN", "diastolic": "NaN", "mean_arterial_pressure": "NaN"},
    ),
    ("bp-pulse-nan", "2A35", "04780050005d00ff07", OK, {**_BP, "pulse_rate": "NaN"}),
    ("bp-rfu-flag", "2A35", "20780050005d00", WARN, _BP),
    ("bp-trailing-byte", "2A35", "00780050005d0000", WARN, _BP),
    ("bp-empty", "2A35", "", ERROR, None),
    ("bp-short-1", "2A35", "00780050005d", ERROR, None),
    ("bp-flags-only", "2A35", "00", ERROR, None),
    ("bp-missing-timestamp", "2A35", "02780050005d00", ERROR, None),
    ("bp-truncated-timestamp", "2A35", "02780050005d00e807030f0e1e", ERROR, None),
    ("bp-truncated-pulse", "2A35", "04780050005d0048", ERROR, None),
    ("bp-missing-user", "2A35", "08780050005d00", ERROR, None),
    ("bp-truncated-status", "2A35", "10780050005d0001", ERROR, None),
    ("bp-bad-month", "2A35", "02780050005d00e8070d0f0e1e2d", ERROR, None),
    # ---- 2A36 intermediate cuff pressure ----
    (
        "icp-mmhg",
        "2A36",
        "009600ff07ff07",
        OK,
        {**_ICP_NULLS, "current_cuff_pressure": 150},
    ),
    (
        "icp-kpa-pulse",
        "2A36",
        "05a0f0ff07ff074800",
        OK,
        {**_ICP_NULLS, "unit": "kPa", "current_cuff_pressure": 16.0, "pulse_rate": 72},
    ),
    ("icp-short", "2A36", "009600ff07ff", ERROR, None),
    # ---- 2A49 blood pressure feature ----
    ("bpf-none", "2A49", "0000", OK, {"features": []}),
    ("bpf-body", "2A49", "0100", OK, {"features": ["body_movement_detection"]}),
    ("bpf-bond", "2A49", "2000", OK, {"features": ["multiple_bond_support"]}),
    ("bpf-all", "2A49", "3f00", OK, {"features": _BP_FEATURES}),
    ("bpf-short", "2A49", "01", ERROR, None),
    # ---- 2A18 glucose measurement (A3.1) ----
    ("glu-min", "2A18", "000100" + _T, OK, _GLU),
    (
        "glu-kg-offset",
        "2A18",
        "030200" + _T + "1e00" + "5fb0" + "11",
        OK,
        {
            **_GLU,
            "sequence_number": 2,
            "time_offset_minutes": 30,
            "user_facing_time": "2024-03-15T15:00:45",
            "concentration": 0.00095,
            "unit": "kg/L",
            "concentration_mg_dL": 95.0,
            "type": "capillary_whole_blood",
            "sample_location": "finger",
        },
    ),
    (
        "glu-mol-negative-offset",
        "2A18",
        "070300" + _T + "a6ff" + "37c0" + "22",
        OK,
        {
            **_GLU,
            "sequence_number": 3,
            "time_offset_minutes": -90,
            "user_facing_time": "2024-03-15T13:00:45",
            "concentration": 0.0055,
            "unit": "mol/L",
            "concentration_mmol_L": 5.5,
            "type": "capillary_plasma",
            "sample_location": "alternate_site_test",
        },
    ),
    (
        "glu-kg-120-exp-minus5",
        "2A18",
        "02ffff" + _T + "78b0" + "11",
        OK,
        {
            **_GLU,
            "sequence_number": 65535,
            "concentration": 0.0012,
            "unit": "kg/L",
            "concentration_mg_dL": 120.0,
            "type": "capillary_whole_blood",
            "sample_location": "finger",
        },
    ),
    (
        "glu-kg-exp-minus4",
        "2A18",
        "020100" + _T + "0cc0" + "11",
        OK,
        {
            **_GLU,
            "concentration": 0.0012,
            "unit": "kg/L",
            "concentration_mg_dL": 120.0,
            "type": "capillary_whole_blood",
            "sample_location": "finger",
        },
    ),
    (
        "glu-nibble-order",
        "2A18",
        "020100" + _T + "5fb0" + "34",
        OK,
        {
            **_GLU,
            "concentration": 0.00095,
            "unit": "kg/L",
            "concentration_mg_dL": 95.0,
            "type": "venous_plasma",
            "sample_location": "earlobe",
        },
    ),
    (
        "glu-control-solution",
        "2A18",
        "020100" + _T + "5fb0" + "4a",
        OK,
        {
            **_GLU,
            "concentration": 0.00095,
            "unit": "kg/L",
            "concentration_mg_dL": 95.0,
            "type": "control_solution",
            "sample_location": "control_solution",
        },
    ),
    (
        "glu-isf-not-available",
        "2A18",
        "060100" + _T + "37c0" + "f9",
        OK,
        {
            **_GLU,
            "concentration": 0.0055,
            "unit": "mol/L",
            "concentration_mmol_L": 5.5,
            "type": "interstitial_fluid",
            "sample_location": "not_available",
        },
    ),
    (
        "glu-reserved-type-location",
        "2A18",
        "020100" + _T + "5fb0" + "50",
        WARN,
        {
            **_GLU,
            "concentration": 0.00095,
            "unit": "kg/L",
            "concentration_mg_dL": 95.0,
            "type": "reserved_0",
            "sample_location": "reserved_5",
        },
    ),
    (
        "glu-status-high",
        "2A18",
        "080100" + _T + "2000",
        OK,
        {
            **_GLU,
            "sensor_status": ["result_higher_than_device_can_process"],
            "sensor_status_raw": 32,
        },
    ),
    (
        "glu-status-low",
        "2A18",
        "080100" + _T + "4000",
        OK,
        {
            **_GLU,
            "sensor_status": ["result_lower_than_device_can_process"],
            "sensor_status_raw": 64,
        },
    ),
    (
        "glu-status-all",
        "2A18",
        "080100" + _T + "ff0f",
        OK,
        {**_GLU, "sensor_status": _ALL_SENSOR_STATUS, "sensor_status_raw": 4095},
    ),
    (
        "glu-status-rfu",
        "2A18",
        "080100" + _T + "0010",
        WARN,
        {**_GLU, "sensor_status": [], "sensor_status_raw": 4096},
    ),
    ("glu-context-follows", "2A18", "100100" + _T, OK, {**_GLU, "context_follows": True}),
    (
        "glu-offset-crosses-year",
        "2A18",
        "010100" + "e8070c1f17320014" + "00",
        OK,
        {
            **_GLU,
            "base_time": "2024-12-31T23:50:00",
            "time_offset_minutes": 20,
            "user_facing_time": "2025-01-01T00:10:00",
        },
    ),
    (
        "glu-unknown-base-time",
        "2A18",
        "0101000000030f0e1e2d1e00",
        OK,
        {**_GLU, "base_time": None, "time_offset_minutes": 30, "user_facing_time": None},
    ),
    (
        "glu-unknown-day",
        "2A18",
        "000100e80703000e1e2d",
        OK,
        {**_GLU, "base_time": None, "user_facing_time": None},
    ),
    (
        "glu-hi",
        "2A18",
        "0a0100" + _T + "fe07" + "11" + "2000",
        OK,
        {
            **_GLU,
            "concentration": "+INF",
            "unit": "kg/L",
            "concentration_mg_dL": "+INF",
            "type": "capillary_whole_blood",
            "sample_location": "finger",
            "sensor_status": ["result_higher_than_device_can_process"],
            "sensor_status_raw": 32,
        },
    ),
    (
        "glu-all-fields",
        "2A18",
        "1f0a00" + _T + "0500" + "37c0" + "11" + "0100",
        OK,
        {
            **_GLU,
            "sequence_number": 10,
            "time_offset_minutes": 5,
            "user_facing_time": "2024-03-15T14:35:45",
            "concentration": 0.0055,
            "unit": "mol/L",
            "concentration_mmol_L": 5.5,
            "type": "capillary_whole_blood",
            "sample_location": "finger",
            "sensor_status": ["device_battery_low"],
            "sensor_status_raw": 1,
            "context_follows": True,
        },
    ),
    ("glu-rfu-flag", "2A18", "200100" + _T, WARN, _GLU),
    (
        "glu-offset-leaves-calendar",
        "2A18",
        "0101000f270c1f173b3b" + "3c00",
        WARN,
        {
            **_GLU,
            "base_time": "9999-12-31T23:59:59",
            "time_offset_minutes": 60,
            "user_facing_time": None,
        },
    ),
    ("glu-empty", "2A18", "", ERROR, None),
    ("glu-short-9", "2A18", "000100e807030f0e1e", ERROR, None),
    ("glu-missing-offset", "2A18", "010100" + _T, ERROR, None),
    ("glu-truncated-concentration", "2A18", "020100" + _T + "5fb0", ERROR, None),
    ("glu-missing-status", "2A18", "080100" + _T + "20", ERROR, None),
    ("glu-bad-month", "2A18", "000100e8070d0f0e1e2d", ERROR, None),
    ("glu-bad-hour", "2A18", "000100e807030f181e2d", ERROR, None),
    # ---- 2A34 glucose measurement context (A3.2) ----
    ("ctx-min", "2A34", "000100", OK, _CTX),
    (
        "ctx-carbohydrate",
        "2A34",
        "01010001" + "05e0",
        OK,
        {**_CTX, "carbohydrate_id": "breakfast", "carbohydrate_amount_kg": 0.05},
    ),
    ("ctx-meal", "2A34", "02010003", OK, {**_CTX, "meal": "fasting"}),
    (
        "ctx-tester-health",
        "2A34",
        "04010021",
        OK,
        {**_CTX, "tester": "self", "health": "major_health_issues"},
    ),
    (
        "ctx-tester-health-swapped-nibbles",
        "2A34",
        "04010052",
        OK,
        {**_CTX, "tester": "health_care_professional", "health": "no_health_issues"},
    ),
    (
        "ctx-tester-health-na",
        "2A34",
        "040100ff",
        OK,
        {**_CTX, "tester": "not_available", "health": "not_available"},
    ),
    (
        "ctx-exercise",
        "2A34",
        "080100" + "1027" + "32",
        OK,
        {**_CTX, "exercise_duration_s": 10000, "exercise_intensity_pct": 50},
    ),
    (
        "ctx-medication-kg",
        "2A34",
        "10010001" + "01b0",
        OK,
        {
            **_CTX,
            "medication_id": "rapid_acting_insulin",
            "medication_amount": 1e-05,
            "medication_unit": "kg",
        },
    ),
    (
        "ctx-medication-litres",
        "2A34",
        "30010003" + "0fc0",
        OK,
        {
            **_CTX,
            "medication_id": "intermediate_acting_insulin",
            "medication_amount": 0.0015,
            "medication_unit": "L",
        },
    ),
    ("ctx-hba1c", "2A34", "400100" + "41f0", OK, {**_CTX, "hba1c_pct": 6.5}),
    ("ctx-extended-flags", "2A34", "80010000", OK, _CTX),
    (
        "ctx-extended-then-carbohydrate",
        "2A34",
        "8101000002" + "05e0",
        OK,
        {**_CTX, "carbohydrate_id": "lunch", "carbohydrate_amount_kg": 0.05},
    ),
    (
        "ctx-all-fields",
        "2A34",
        "ff0a00" + "00" + "034bd0" + "01" + "11" + "08074b" + "0502c0" + "41f0",
        OK,
        {
            "sequence_number": 10,
            "carbohydrate_id": "dinner",
            "carbohydrate_amount_kg": 0.075,
            "meal": "preprandial",
            "tester": "self",
            "health": "minor_health_issues",
            "exercise_duration_s": 1800,
            "exercise_intensity_pct": 75,
            "medication_id": "pre_mixed_insulin",
            "medication_amount": 0.0002,
            "medication_unit": "L",
            "hba1c_pct": 6.5,
        },
    ),
    (
        "ctx-reserved-codes",
        "2A34",
        "17010008" + "05e0" + "00" + "04" + "06" + "01b0",
        WARN,
        {
            **_CTX,
            "carbohydrate_id": "reserved_8",
            "carbohydrate_amount_kg": 0.05,
            "meal": "reserved_0",
            "tester": "reserved_4",
            "health": "reserved_0",
            "medication_id": "reserved_6",
            "medication_amount": 1e-05,
            "medication_unit": "kg",
        },
    ),
    ("ctx-litres-without-medication", "2A34", "200100", WARN, _CTX),
    ("ctx-short", "2A34", "0001", ERROR, None),
    ("ctx-truncated-carbohydrate", "2A34", "0101000105", ERROR, None),
    ("ctx-missing-extended-flags", "2A34", "800100", ERROR, None),
    ("ctx-truncated-exercise", "2A34", "0801001027", ERROR, None),
    # ---- 2A51 glucose feature ----
    ("glf-none", "2A51", "0000", OK, {"features": []}),
    ("glf-all", "2A51", "ff07", OK, {"features": _GLS_FEATURES}),
    (
        "glf-high-low-time",
        "2A51",
        "2002",
        OK,
        {"features": ["result_high_low", "time_fault"]},
    ),
    ("glf-short", "2A51", "ff", ERROR, None),
    # ---- 2A52 record access control point (A3.4) ----
    ("racp-report-all", "2A52", "0101", OK, _RACP),
    (
        "racp-report-ge-seq",
        "2A52",
        "0103010a00",
        OK,
        {
            **_RACP,
            "operator": "greater_than_or_equal",
            "filter_type": "sequence_number",
            "operand": 10,
        },
    ),
    (
        "racp-report-le-seq",
        "2A52",
        "0102010a00",
        OK,
        {
            **_RACP,
            "operator": "less_than_or_equal",
            "filter_type": "sequence_number",
            "operand": 10,
        },
    ),
    (
        "racp-report-range-seq",
        "2A52",
        "0104010a001400",
        OK,
        {
            **_RACP,
            "operator": "within_range_inclusive",
            "filter_type": "sequence_number",
            "operand_min": 10,
            "operand_max": 20,
        },
    ),
    (
        "racp-report-ge-time",
        "2A52",
        "010302" + _T,
        OK,
        {
            **_RACP,
            "operator": "greater_than_or_equal",
            "filter_type": "user_facing_time",
            "operand": "2024-03-15T14:30:45",
        },
    ),
    (
        "racp-report-range-time",
        "2A52",
        "010402" + _T + "e807030f0f0000",
        OK,
        {
            **_RACP,
            "operator": "within_range_inclusive",
            "filter_type": "user_facing_time",
            "operand_min": "2024-03-15T14:30:45",
            "operand_max": "2024-03-15T15:00:00",
        },
    ),
    ("racp-first", "2A52", "0105", OK, {**_RACP, "operator": "first_record_oldest"}),
    ("racp-last", "2A52", "0106", OK, {**_RACP, "operator": "last_record_most_recent"}),
    ("racp-delete-all", "2A52", "0201", OK, {**_RACP, "opcode": "delete_stored_records"}),
    ("racp-abort", "2A52", "0300", OK, {**_RACP, "opcode": "abort_operation", "operator": "null"}),
    (
        "racp-count-all",
        "2A52",
        "0401",
        OK,
        {**_RACP, "opcode": "report_number_of_stored_records"},
    ),
    (
        "racp-count-ge-seq",
        "2A52",
        "0403010500",
        OK,
        {
            **_RACP,
            "opcode": "report_number_of_stored_records",
            "operator": "greater_than_or_equal",
            "filter_type": "sequence_number",
            "operand": 5,
        },
    ),
    (
        "racp-count-response",
        "2A52",
        "05002c01",
        OK,
        {
            **_RACP,
            "opcode": "number_of_stored_records_response",
            "operator": "null",
            "number_of_records": 300,
        },
    ),
    ("racp-rsp-success", "2A52", "06000101", OK, {**_RSP, "response": "success"}),
    (
        "racp-rsp-not-supported",
        "2A52",
        "06000102",
        OK,
        {**_RSP, "response": "op_code_not_supported"},
    ),
    ("racp-rsp-invalid-op", "2A52", "06000103", OK, {**_RSP, "response": "invalid_operator"}),
    (
        "racp-rsp-op-not-supported",
        "2A52",
        "06000104",
        OK,
        {**_RSP, "response": "operator_not_supported"},
    ),
    ("racp-rsp-invalid-operand", "2A52", "06000105", OK, {**_RSP, "response": "invalid_operand"}),
    ("racp-rsp-no-records", "2A52", "06000106", OK, {**_RSP, "response": "no_records_found"}),
    (
        "racp-rsp-abort-failed",
        "2A52",
        "06000307",
        OK,
        {**_RSP, "request_opcode": 3, "response": "abort_unsuccessful"},
    ),
    (
        "racp-rsp-not-completed",
        "2A52",
        "06000108",
        OK,
        {**_RSP, "response": "procedure_not_completed"},
    ),
    (
        "racp-rsp-operand-unsupported",
        "2A52",
        "06000409",
        OK,
        {**_RSP, "request_opcode": 4, "response": "operand_not_supported"},
    ),
    ("racp-rsp-reserved-10", "2A52", "0600010a", WARN, {**_RSP, "response": "reserved_10"}),
    ("racp-rsp-reserved-0", "2A52", "06000100", WARN, {**_RSP, "response": "reserved_0"}),
    ("racp-rsp-short", "2A52", "060001", ERROR, None),
    ("racp-rsp-long", "2A52", "0600010100", ERROR, None),
    # A7: a non-standard RACP count width (uint8 / uint32) decodes with a warning.
    (
        "racp-count-uint8",
        "2A52",
        "05002c",
        WARN,
        {
            **_RACP,
            "opcode": "number_of_stored_records_response",
            "operator": "null",
            "number_of_records": 44,
        },
    ),
    (
        "racp-count-uint32",
        "2A52",
        "05002c010000",
        WARN,
        {
            **_RACP,
            "opcode": "number_of_stored_records_response",
            "operator": "null",
            "number_of_records": 300,
        },
    ),
    ("racp-count-missing", "2A52", "0500", ERROR, None),
    ("racp-empty", "2A52", "", ERROR, None),
    ("racp-no-operator", "2A52", "01", ERROR, None),
    ("racp-truncated-operand", "2A52", "0103010a", ERROR, None),
    ("racp-missing-filter", "2A52", "0103", ERROR, None),
    ("racp-range-missing-max", "2A52", "0104010a00", ERROR, None),
    ("racp-bad-operand-time", "2A52", "010302e8070d0f0e1e2d", ERROR, None),
    ("racp-report-null-operator", "2A52", "0100", WARN, {**_RACP, "operator": "null"}),
    ("racp-abort-bad-operator", "2A52", "0301", ERROR, None),
    ("racp-all-records-trailing", "2A52", "010100", ERROR, None),
    ("racp-unknown-operator", "2A52", "0107", ERROR, None),
    ("racp-unknown-filter", "2A52", "0103030a00", ERROR, None),
    ("racp-unknown-opcode", "2A52", "0700", ERROR, None),
    ("racp-rsp-nonzero-operator", "2A52", "06010101", ERROR, None),
    # ---- 2A08 date time (A1) ----
    ("dt-ok", "2A08", _T, OK, {"timestamp": "2024-03-15T14:30:45"}),
    ("dt-leap-day", "2A08", "e807021d000000", OK, {"timestamp": "2024-02-29T00:00:00"}),
    ("dt-max-clock", "2A08", "0f270c1f173b3b", OK, {"timestamp": "9999-12-31T23:59:59"}),
    ("dt-min-year", "2A08", "2e06010f000000", OK, {"timestamp": "1582-01-15T00:00:00"}),
    ("dt-unknown-year", "2A08", "0000030f0e1e2d", OK, {"timestamp": None}),
    ("dt-unknown-month", "2A08", "e807000f0e1e2d", OK, {"timestamp": None}),
    ("dt-unknown-day", "2A08", "e80703000e1e2d", OK, {"timestamp": None}),
    ("dt-month-13", "2A08", "e8070d0f0e1e2d", ERROR, None),
    ("dt-day-32", "2A08", "e80703200e1e2d", ERROR, None),
    ("dt-feb-30", "2A08", "e707021e000000", ERROR, None),
    ("dt-hour-24", "2A08", "e807030f181e2d", ERROR, None),
    ("dt-minute-60", "2A08", "e807030f0e3c2d", ERROR, None),
    ("dt-second-60", "2A08", "e807030f0e1e3c", ERROR, None),
    ("dt-year-1581", "2A08", "2d06010f000000", ERROR, None),
    ("dt-year-10000", "2A08", "1027010f000000", ERROR, None),
    ("dt-short", "2A08", "e807030f0e1e", ERROR, None),
    ("dt-trailing", "2A08", _T + "00", WARN, {"timestamp": "2024-03-15T14:30:45"}),
    # ---- 2A2B current time (A4) ----
    (
        "ct-hass-omron-67",
        "2A2B",
        "ea07060c143008000001",
        OK,
        {
            "timestamp": "2026-06-12T20:48:08",
            "day_of_week": "unknown",
            "fractions256": 0,
            "adjust_reason": ["manual_time_update"],
        },
    ),
    (
        "ct-friday-all-reasons",
        "2A2B",
        _T + "05800f",
        OK,
        {
            **_CT,
            "fractions256": 128,
            "adjust_reason": [
                "manual_time_update",
                "external_reference_time_update",
                "change_of_time_zone",
                "change_of_dst",
            ],
        },
    ),
    (
        "ct-monday",
        "2A2B",
        "e8070312000000" + "010000",
        OK,
        {**_CT, "timestamp": "2024-03-18T00:00:00", "day_of_week": "monday"},
    ),
    (
        "ct-sunday",
        "2A2B",
        "e8070311000000" + "070000",
        OK,
        {**_CT, "timestamp": "2024-03-17T00:00:00", "day_of_week": "sunday"},
    ),
    (
        "ct-unknown-date",
        "2A2B",
        "0000000000000000ff04",
        OK,
        {
            "timestamp": None,
            "day_of_week": "unknown",
            "fractions256": 255,
            "adjust_reason": ["change_of_time_zone"],
        },
    ),
    ("ct-reserved-day", "2A2B", _T + "080000", WARN, {**_CT, "day_of_week": "reserved_8"}),
    ("ct-rfu-adjust", "2A2B", _T + "0500f1", WARN, {**_CT, "adjust_reason": ["manual_time_update"]}),
    ("ct-short", "2A2B", _T + "0500", ERROR, None),
    ("ct-bad-hour", "2A2B", "e807030f190000050000", ERROR, None),
]


def _run_decoder(characteristic: str, payloads: list[str]) -> list[dict[str, Any]]:
    """Feed payloads to the real command on stdin, one per line; return one object each."""
    proc = subprocess.run(
        [sys.executable, "-m", "gateway.decode_cli", "--characteristic", characteristic],
        input="".join(p + "\n" for p in payloads),
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    lines = proc.stdout.splitlines()
    assert len(lines) == len(payloads), (proc.stdout, proc.stderr)
    return [json.loads(line) for line in lines]


@pytest.fixture(scope="module")
def decoded() -> dict[str, dict[str, Any]]:
    """Decode every vector, one subprocess per characteristic, keyed by vector id."""
    by_char: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for vector_id, characteristic, payload, _outcome, _expected in VECTORS:
        by_char[characteristic].append((vector_id, payload))
    results: dict[str, dict[str, Any]] = {}
    for characteristic, items in by_char.items():
        outputs = _run_decoder(characteristic, [payload for _, payload in items])
        results.update({vector_id: out for (vector_id, _), out in zip(items, outputs, strict=True)})
    return results


def test_vector_ids_are_unique() -> None:
    ids = [v[0] for v in VECTORS]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize(
    ("vector_id", "outcome", "expected"),
    [pytest.param(v[0], v[3], v[4], id=v[0]) for v in VECTORS],
)
def test_vector(
    decoded: dict[str, dict[str, Any]],
    vector_id: str,
    outcome: str,
    expected: dict[str, Any] | None,
) -> None:
    got = decoded[vector_id]
    if outcome == ERROR:
        assert set(got) == {"error"}, got
        assert isinstance(got["error"], str) and got["error"]
        return
    assert expected is not None
    assert "error" not in got, got
    warnings = got.pop("warnings", None)
    if outcome == WARN:
        assert warnings, f"{vector_id}: expected a warning, got {got}"
    else:
        assert warnings is None, f"{vector_id}: unexpected warnings {warnings}"
    assert got == expected
    # Exactness: the JSON text carries no float noise (e.g. 18.9, never 18.900000000000002).
    for key, value in expected.items():
        if isinstance(value, float):
            assert json.dumps(got[key]) == json.dumps(value), key


# ---- exactness over every exponent (no float noise) ----
# The spec value is mantissa × 10**exponent; Python's float(str) rounds a decimal string exactly
# once, so float(f"{m}e{e}") is the one right float and its repr the one right JSON text.

_SFLOAT_SPECIAL_WORDS = {0x07FF: "NaN", 0x0800: "NRes", 0x07FE: "+INF", 0x0802: "-INF", 0x0801: "reserved"}
_FLOAT_SPECIAL_WORDS = {
    0x007FFFFF: "NaN",
    0x00800000: "NRes",
    0x007FFFFE: "+INF",
    0x00800002: "-INF",
    0x00800001: "reserved",
}


def _twos(value: int, bits: int) -> int:
    return value - (1 << bits) if value >= 1 << (bits - 1) else value


def _expected_text(word: int, exp_bits: int, mant_bits: int, specials: dict[int, str], shift: int) -> str:
    if word in specials:
        return json.dumps(specials[word])
    mantissa = _twos(word & ((1 << mant_bits) - 1), mant_bits)
    exponent = _twos(word >> mant_bits, exp_bits)
    return json.dumps(float(f"{mantissa}e{exponent + shift}"))


def test_every_sfloat_word_prints_exactly() -> None:
    from gateway.decode_cli import decode_payload

    for word in range(0x10000):
        payload = word.to_bytes(2, "little").hex()
        obj, ok = decode_payload("SFLOAT", payload)
        assert ok
        assert json.dumps(obj["value"]) == _expected_text(word, 4, 12, _SFLOAT_SPECIAL_WORDS, 0), payload


@pytest.mark.parametrize(
    ("flags", "field", "shift"), [("02", "concentration_mg_dL", 5), ("06", "concentration_mmol_L", 3)]
)
def test_every_glucose_concentration_converts_exactly(flags: str, field: str, shift: int) -> None:
    """kg/L × 100 000 → mg/dL and mol/L × 1000 → mmol/L are decimal shifts: 0.00095 kg/L → 95.0.

    A stride of 7 (coprime with 16) visits every exponent with ~585 mantissas each, plus specials.
    """
    from gateway.decode_cli import decode_payload

    for word in [*range(0, 0x10000, 7), *_SFLOAT_SPECIAL_WORDS]:
        payload = flags + "0100" + _T + word.to_bytes(2, "little").hex() + "11"
        obj, ok = decode_payload("2A18", payload)
        assert ok
        assert json.dumps(obj["concentration"]) == _expected_text(word, 4, 12, _SFLOAT_SPECIAL_WORDS, 0), (
            payload
        )
        assert json.dumps(obj[field]) == _expected_text(word, 4, 12, _SFLOAT_SPECIAL_WORDS, shift), payload


def test_float32_prints_exactly_at_every_exponent() -> None:
    import random

    from gateway.decode_cli import decode_payload

    seed = 20240315
    rng = random.Random(seed)
    specials = list(_FLOAT_SPECIAL_WORDS)
    for exponent in range(256):
        mantissas = [0, 1, 0x7FFFFD, 0x800003, 0xFFFFFF, *(rng.randrange(1 << 24) for _ in range(40))]
        for mantissa in mantissas:
            word = (exponent << 24) | mantissa
            payload = word.to_bytes(4, "little").hex()
            obj, ok = decode_payload("FLOAT32", payload)
            assert ok
            got = json.dumps(obj["value"])
            assert got == _expected_text(word, 8, 24, _FLOAT_SPECIAL_WORDS, 0), (seed, payload)
    for word in specials:
        obj, _ = decode_payload("FLOAT32", word.to_bytes(4, "little").hex())
        assert json.dumps(obj["value"]) == _expected_text(word, 8, 24, _FLOAT_SPECIAL_WORDS, 0)
