"""Weight Scale and Pulse Oximeter vectors, run through the real ``decode`` command.

Expected values are hand-computed from DOMAIN-weight-plx A8/A9 and table B2 and stay literals (no
production constants).  Sources: ``bsp`` = RonanB96/bluetooth-sig-python tests (its PLX values are
spec-wrong, trap A10.1, so those rows are marked TRAP and expect the spec value), ``spezi`` =
StanfordSpezi/SpeziBluetooth ``PLXTests.swift``, ``spec`` = constructed from the GATT layouts.
Each characteristic's payloads go through one ``python -m gateway.decode_cli`` subprocess.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import pytest

from tests.gateway.gatt.test_independent_vectors import ERROR, OK, WARN, _run_decoder

_W: dict[str, Any] = {
    "unit": "kg",
    "weight": 70.0,
    "weight_kg": 70.0,
    "weight_raw": 14000,
    "measurement_unsuccessful": False,
    "timestamp": None,
    "user_id": None,
    "bmi": None,
    "height": None,
    "height_unit": None,
    "height_m": None,
    "flags_raw": 0,
}
_LB157 = {**_W, "unit": "lb", "weight": 157.0, "weight_kg": 71.21400209, "weight_raw": 15700, "flags_raw": 1}
_FAILED = {**_W, "weight": None, "weight_kg": None, "weight_raw": 65535, "measurement_unsuccessful": True}
_WF: dict[str, Any] = {
    "features": [],
    "features_raw": 0,
    "weight_resolution_code": 0,
    "weight_resolution_kg": None,
    "weight_resolution_lb": None,
    "height_resolution_code": 0,
    "height_resolution_m": None,
    "height_resolution_in": None,
}
_S: dict[str, Any] = {
    "spo2": 98.0,
    "pulse_rate": 72.0,
    "timestamp": None,
    "device_clock_not_set": False,
    "measurement_status": None,
    "measurement_status_raw": None,
    "device_and_sensor_status": None,
    "device_and_sensor_status_raw": None,
    "pulse_amplitude_index": None,
    "flags_raw": 0,
}
_C: dict[str, Any] = {
    "spo2": 98.0,
    "pulse_rate": 72.0,
    "spo2_fast": None,
    "pulse_rate_fast": None,
    "spo2_slow": None,
    "pulse_rate_slow": None,
    "measurement_status": None,
    "measurement_status_raw": None,
    "device_and_sensor_status": None,
    "device_and_sensor_status_raw": None,
    "pulse_amplitude_index": None,
    "flags_raw": 0,
}
_P: dict[str, Any] = {
    "features": [],
    "features_raw": 0,
    "measurement_status_support": None,
    "measurement_status_support_raw": None,
    "device_and_sensor_status_support": None,
    "device_and_sensor_status_support_raw": None,
}
_ALL_MS = [
    "measurement_ongoing",
    "early_estimated_data",
    "validated_data",
    "fully_qualified_data",
    "data_from_measurement_storage",
    "data_for_demonstration",
    "data_for_testing",
    "calibration_ongoing",
    "measurement_unavailable",
    "questionable_measurement_detected",
    "invalid_measurement_detected",
]
_ALL_DSS = [
    "extended_display_update_ongoing",
    "equipment_malfunction_detected",
    "signal_processing_irregularity_detected",
    "inadequate_signal_detected",
    "poor_signal_detected",
    "low_perfusion_detected",
    "erratic_signal_detected",
    "nonpulsatile_signal_detected",
    "questionable_pulse_detected",
    "signal_analysis_ongoing",
    "sensor_interference_detected",
    "sensor_unconnected_to_user",
    "unknown_sensor_connected",
    "sensor_displaced",
    "sensor_malfunctioning",
    "sensor_disconnected",
]
_T = "e807030f0e1e2d"  # 2024-03-15 14:30:45
_TS = "2024-03-15T14:30:45"

VECTORS: list[tuple[str, str, str, str, dict[str, Any] | None]] = [
    # ---- 2A9D weight measurement (A8.1) ----
    ("w-bsp-70kg", "2A9D", "00b036", OK, _W),
    ("w-bsp-157lb", "2A9D", "01543d", OK, _LB157),
    (
        "w-bsp-timestamp",
        "2A9D",
        "02b036e7070c190e1e2d",
        OK,
        {**_W, "timestamp": "2023-12-25T14:30:45", "flags_raw": 2},
    ),
    (
        "w-bsp-full-imperial",
        "2A9D",
        "0f543de7070c190e1e2d03f500a802",
        OK,
        {
            **_LB157,
            "timestamp": "2023-12-25T14:30:45",
            "user_id": 3,
            "bmi": 24.5,
            "height": 68.0,
            "height_unit": "in",
            "height_m": 1.7272,
            "flags_raw": 15,
        },
    ),
    # TRAP A10.6: bit 3 announces BMI *and* height; a frame with BMI only is short.
    ("w-bmi-without-height", "2A9D", "0cb03605f500", ERROR, None),
    (
        "w-user-bmi-height",
        "2A9D",
        "0cb03605f500a406",
        OK,
        {
            **_W,
            "user_id": 5,
            "bmi": 24.5,
            "height": 1.7,
            "height_unit": "m",
            "height_m": 1.7,
            "flags_raw": 12,
        },
    ),
    # Old bsp "height at bit 4": bit 4 is RFU, the two height bytes are trailing.
    ("w-rfu-bit4-trailing", "2A9D", "10b036d606", WARN, {**_W, "flags_raw": 16}),
    ("w-unsuccessful-kg", "2A9D", "00ffff", OK, _FAILED),
    ("w-unsuccessful-lb", "2A9D", "01ffff", OK, {**_FAILED, "unit": "lb", "flags_raw": 1}),
    ("w-max-kg", "2A9D", "00feff", OK, {**_W, "weight": 327.67, "weight_kg": 327.67, "weight_raw": 65534}),
    (
        "w-max-lb",
        "2A9D",
        "01feff",
        OK,
        {
            **_W,
            "unit": "lb",
            "weight": 655.34,
            "weight_kg": 297.2572237558,
            "weight_raw": 65534,
            "flags_raw": 1,
        },
    ),
    (
        "w-unsuccessful-with-time-and-unknown-user",
        "2A9D",
        "06ffff" + _T + "ff",
        OK,
        {**_FAILED, "timestamp": _TS, "user_id": 255, "flags_raw": 6},
    ),
    (
        "w-unsuccessful-with-bmi",
        "2A9D",
        "08fffff500a406",
        WARN,
        {**_FAILED, "bmi": 24.5, "height": 1.7, "height_unit": "m", "height_m": 1.7, "flags_raw": 8},
    ),
    (
        "w-xiaomi-stable-1970",
        "2A9D",
        "229c3eb2070101000000",
        WARN,
        {
            **_W,
            "weight": 80.14,
            "weight_kg": 80.14,
            "weight_raw": 16028,
            "timestamp": "1970-01-01T00:00:00",
            "flags_raw": 34,
        },
    ),
    ("w-unknown-date", "2A9D", "02b03600000000000000", OK, {**_W, "flags_raw": 2}),
    ("w-month-13", "2A9D", "02b036e7070d190e1e2d", ERROR, None),
    ("w-short-weight", "2A9D", "00b0", ERROR, None),
    ("w-short-timestamp", "2A9D", "02b036e7070c190e1e", ERROR, None),
    ("w-trailing", "2A9D", "00b03600", WARN, _W),
    ("w-lsb-kg", "2A9D", "000100", OK, {**_W, "weight": 0.005, "weight_kg": 0.005, "weight_raw": 1}),
    (
        "w-lsb-lb",
        "2A9D",
        "010100",
        OK,
        {**_W, "unit": "lb", "weight": 0.01, "weight_kg": 0.0045359237, "weight_raw": 1, "flags_raw": 1},
    ),
    ("w-75.01kg", "2A9D", "009a3a", OK, {**_W, "weight": 75.01, "weight_kg": 75.01, "weight_raw": 15002}),
    # ---- 2A9E weight scale feature (A8.2) ----
    ("wf-none", "2A9E", "00000000", OK, _WF),
    (
        "wf-all-features",
        "2A9E",
        "07000000",
        OK,
        {
            **_WF,
            "features": ["timestamp_supported", "multiple_users_supported", "bmi_supported"],
            "features_raw": 7,
        },
    ),
    (
        "wf-code7",
        "2A9E",
        "38000000",
        OK,
        {
            **_WF,
            "features_raw": 56,
            "weight_resolution_code": 7,
            "weight_resolution_kg": 0.005,
            "weight_resolution_lb": 0.01,
        },
    ),
    (
        "wf-codes-3-3",
        "2A9E",
        "9f010000",
        OK,
        {
            **_WF,
            "features": ["timestamp_supported", "multiple_users_supported", "bmi_supported"],
            "features_raw": 415,
            "weight_resolution_code": 3,
            "weight_resolution_kg": 0.1,
            "weight_resolution_lb": 0.2,
            "height_resolution_code": 3,
            "height_resolution_m": 0.001,
            "height_resolution_in": 0.1,
        },
    ),
    (
        "wf-codes-1-1",
        "2A9E",
        "88000000",
        OK,
        {
            **_WF,
            "features_raw": 136,
            "weight_resolution_code": 1,
            "weight_resolution_kg": 0.5,
            "weight_resolution_lb": 1.0,
            "height_resolution_code": 1,
            "height_resolution_m": 0.01,
            "height_resolution_in": 1.0,
        },
    ),
    (
        "wf-reserved-weight-code",
        "2A9E",
        "40000000",
        WARN,
        {**_WF, "features_raw": 64, "weight_resolution_code": 8},
    ),
    (
        "wf-reserved-height-code",
        "2A9E",
        "00020000",
        WARN,
        {**_WF, "features_raw": 512, "height_resolution_code": 4},
    ),
    ("wf-rfu-bit10", "2A9E", "00040000", WARN, {**_WF, "features_raw": 1024}),
    ("wf-short", "2A9E", "070000", ERROR, None),
    ("wf-trailing", "2A9E", "0000000000", WARN, _WF),
    # ---- 2A5E PLX spot-check (A9.1) ----
    ("s-98-72", "2A5E", "0062004800", OK, _S),
    ("s-98-72-exp-1", "2A5E", "00d4f3d0f2", OK, _S),
    ("s-97.5", "2A5E", "00cff34800", OK, {**_S, "spo2": 97.5}),
    ("s-nan", "2A5E", "00ff07ff07", OK, {**_S, "spo2": "NaN", "pulse_rate": "NaN"}),
    (
        "s-finger-out",
        "2A5E",
        "02ff07ff070020",
        OK,
        {
            **_S,
            "spo2": "NaN",
            "pulse_rate": "NaN",
            "measurement_status": ["measurement_unavailable"],
            "measurement_status_raw": 8192,
            "flags_raw": 2,
        },
    ),
    ("s-nres-inf", "2A5E", "000008fe07", OK, {**_S, "spo2": "NRes", "pulse_rate": "+INF"}),
    ("s-minf-reserved", "2A5E", "0002080108", OK, {**_S, "spo2": "-INF", "pulse_rate": "reserved"}),
    (
        "s-spezi-full",
        "2A5E",
        "0facf3bef5e8070b1d170839204022000066e3",
        OK,
        {
            **_S,
            "spo2": 94.0,
            "pulse_rate": 147.0,
            "timestamp": "2024-11-29T23:08:57",
            "measurement_status": ["measurement_ongoing", "questionable_measurement_detected"],
            "measurement_status_raw": 16416,
            "device_and_sensor_status": ["equipment_malfunction_detected", "low_perfusion_detected"],
            "device_and_sensor_status_raw": 34,
            "pulse_amplitude_index": 8.7,
            "flags_raw": 15,
        },
    ),
    # TRAP A10.1: bsp's "98 %" is 62 80, which the spec reads as 98e-8.
    ("s-bsp-trap-biased-exponent", "2A5E", "0062804880", OK, {**_S, "spo2": 9.8e-07, "pulse_rate": 7.2e-07}),
    (
        "s-clock-not-set",
        "2A5E",
        "1162004800" + _T,
        OK,
        {**_S, "timestamp": _TS, "device_clock_not_set": True, "flags_raw": 17},
    ),
    ("s-rfu-flag", "2A5E", "2062004800", WARN, {**_S, "flags_raw": 32}),
    (
        "s-rfu-status-bits",
        "2A5E",
        "02620048008100",
        WARN,
        {**_S, "measurement_status": ["validated_data"], "measurement_status_raw": 129, "flags_raw": 2},
    ),
    (
        "s-all-status",
        "2A5E",
        "0262004800e0ff",
        OK,
        {**_S, "measurement_status": _ALL_MS, "measurement_status_raw": 65504, "flags_raw": 2},
    ),
    (
        "s-dss-bit16-rfu",
        "2A5E",
        "0462004800000001",
        WARN,
        {**_S, "device_and_sensor_status": [], "device_and_sensor_status_raw": 65536, "flags_raw": 4},
    ),
    (
        "s-all-dss",
        "2A5E",
        "0462004800ffff00",
        OK,
        {**_S, "device_and_sensor_status": _ALL_DSS, "device_and_sensor_status_raw": 65535, "flags_raw": 4},
    ),
    # TRAP A10.9: device and sensor status is 24 bits; two bytes are short.
    ("s-dss-as-uint16", "2A5E", "04620048000000", ERROR, None),
    ("s-spezi-short-by-1", "2A5E", "0facf3bef5e8070b1d170839204022000066", ERROR, None),
    ("s-short", "2A5E", "00620048", ERROR, None),
    # TRAP A10.10: bit 2 in 2A5E is device status (3 bytes), not measurement status.
    ("s-continuous-flag-map", "2A5E", "04620048008000", ERROR, None),
    # ---- 2A5F PLX continuous (A9.2) ----
    ("c-spezi-100-90-exp-1", "2A5F", "00e8f384f3", OK, {**_C, "spo2": 100.0, "pulse_rate": 90.0}),
    ("c-spezi-100-90", "2A5F", "0064005a00", OK, {**_C, "spo2": 100.0, "pulse_rate": 90.0}),
    (
        "c-spezi-status-pai",
        "2A5F",
        "1c5f005a00200000000057f0",
        OK,
        {
            **_C,
            "spo2": 95.0,
            "pulse_rate": 90.0,
            "measurement_status": ["measurement_ongoing"],
            "measurement_status_raw": 32,
            "device_and_sensor_status": [],
            "device_and_sensor_status_raw": 0,
            "pulse_amplitude_index": 8.7,
            "flags_raw": 28,
        },
    ),
    (
        "c-spezi-full-20-bytes",
        "2A5F",
        "1fdef3caf3caf35af5d4f3b2f220010000007ae3",
        OK,
        {
            "spo2": 99.0,
            "pulse_rate": 97.0,
            "spo2_fast": 97.0,
            "pulse_rate_fast": 137.0,
            "spo2_slow": 98.0,
            "pulse_rate_slow": 69.0,
            "measurement_status": ["measurement_ongoing", "fully_qualified_data"],
            "measurement_status_raw": 288,
            "device_and_sensor_status": [],
            "device_and_sensor_status_raw": 0,
            "pulse_amplitude_index": 8.9,
            "flags_raw": 31,
        },
    ),
    (
        "c-slow-without-fast",
        "2A5F",
        "026200480061004700",
        OK,
        {**_C, "spo2_slow": 97.0, "pulse_rate_slow": 71.0, "flags_raw": 2},
    ),
    (
        "c-fast-nan",
        "2A5F",
        "0162004800ff07ff07",
        OK,
        {**_C, "spo2_fast": "NaN", "pulse_rate_fast": "NaN", "flags_raw": 1},
    ),
    ("c-bsp-trap-biased-exponent", "2A5F", "0062804880", OK, {**_C, "spo2": 9.8e-07, "pulse_rate": 7.2e-07}),
    (
        "c-status-is-bit2",
        "2A5F",
        "04620048008000",
        OK,
        {**_C, "measurement_status": ["validated_data"], "measurement_status_raw": 128, "flags_raw": 4},
    ),
    # TRAP A10.8 (Cordio): fast and slow are 4 bytes each.
    ("c-fast-slow-as-2-bytes", "2A5F", "036200480061004700", ERROR, None),
    ("c-full-short-by-1", "2A5F", "1fdef3caf3caf35af5d4f3b2f220010000007a", ERROR, None),
    ("c-rfu-flag", "2A5F", "4062004800", WARN, {**_C, "flags_raw": 64}),
    ("c-trailing", "2A5F", "006200480000", WARN, _C),
    # ---- 2A60 PLX features (A9.5) ----
    (
        "p-spezi",
        "2A60",
        "a3004010800100",
        OK,
        {
            "features": [
                "measurement_status_support_present",
                "device_and_sensor_status_support_present",
                "spo2pr_slow_supported",
                "multiple_bonds_supported",
            ],
            "features_raw": 163,
            "measurement_status_support": ["early_estimated_data", "calibration_ongoing"],
            "measurement_status_support_raw": 4160,
            "device_and_sensor_status_support": [
                "nonpulsatile_signal_detected",
                "questionable_pulse_detected",
            ],
            "device_and_sensor_status_support_raw": 384,
        },
    ),
    ("p-none", "2A60", "0000", OK, _P),
    (
        "p-storage-timestamp",
        "2A60",
        "0c00",
        OK,
        {
            **_P,
            "features": [
                "measurement_storage_for_spot_check_supported",
                "timestamp_for_spot_check_supported",
            ],
            "features_raw": 12,
        },
    ),
    (
        "p-bits-2-7",
        "2A60",
        "fc00",
        OK,
        {
            **_P,
            "features": [
                "measurement_storage_for_spot_check_supported",
                "timestamp_for_spot_check_supported",
                "spo2pr_fast_supported",
                "spo2pr_slow_supported",
                "pulse_amplitude_index_supported",
                "multiple_bonds_supported",
            ],
            "features_raw": 252,
        },
    ),
    (
        "p-all-status-support",
        "2A60",
        "0100e0ff",
        OK,
        {
            **_P,
            "features": ["measurement_status_support_present"],
            "features_raw": 1,
            "measurement_status_support": _ALL_MS,
            "measurement_status_support_raw": 65504,
        },
    ),
    (
        "p-all-dss-support",
        "2A60",
        "0200ffff00",
        OK,
        {
            **_P,
            "features": ["device_and_sensor_status_support_present"],
            "features_raw": 2,
            "device_and_sensor_status_support": _ALL_DSS,
            "device_and_sensor_status_support_raw": 65535,
        },
    ),
    ("p-rfu-bit8", "2A60", "0001", WARN, {**_P, "features_raw": 256}),
    # TRAP A10.8 (bsp reads only the first word; Cordio reads the 24-bit support as 16).
    ("p-bsp-trap-missing-status-support", "2A60", "0100", ERROR, None),
    ("p-dss-support-as-uint16", "2A60", "02000000", ERROR, None),
    ("p-both-supports-short", "2A60", "030000000000", ERROR, None),
    ("p-one-byte", "2A60", "00", ERROR, None),
]


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
    decoded: dict[str, dict[str, Any]], vector_id: str, outcome: str, expected: dict[str, Any] | None
) -> None:
    got = dict(decoded[vector_id])
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
    assert set(got) == set(expected)
    for key, value in expected.items():
        if isinstance(value, float):
            assert got[key] == pytest.approx(value, rel=1e-12), key
            assert json.dumps(got[key]) == json.dumps(value), key
        else:
            assert got[key] == value, key
