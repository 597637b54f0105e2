"""``rpmflow-gateway decode`` through decode_main with StringIO (no subprocess)."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest

from gateway.decode_cli import add_decode_arguments, decode_main, parse_hex, run_decode


def run(argv: list[str], stdin_text: str = "") -> tuple[int, list[dict[str, object]], str]:
    stdout = io.StringIO()
    status = decode_main(argv, stdin=io.StringIO(stdin_text), stdout=stdout)
    text = stdout.getvalue()
    return status, [json.loads(line) for line in text.splitlines()], text


@pytest.mark.parametrize(
    ("characteristic", "hex_", "expected"),
    [
        ("sfloat", "BD F0", {"value": 18.9}),
        ("sfloat", "FF F7", {"value": 204.7}),
        ("sfloat", "FF 07", {"value": "NaN"}),
        ("sfloat", "00 08", {"value": "NRes"}),
        ("sfloat", "FE 07", {"value": "+INF"}),
        ("sfloat", "02 08", {"value": "-INF"}),
        ("sfloat", "01 08", {"value": "reserved"}),
        ("float32", "87 D6 12 FE", {"value": 12345.67}),
        ("float32", "72 01 00 FF", {"value": 37.0}),
        ("2A08", "E807030F0E1E2D", {"timestamp": "2024-03-15T14:30:45"}),
        ("2A08", "0000030F0E1E2D", {"timestamp": None}),
        ("2A49", "0500", {"features": ["body_movement_detection", "irregular_pulse_detection"]}),
        ("2A51", "0104", {"features": ["low_battery_detection", "multiple_bond"]}),
    ],
)
def test_simple_outputs(characteristic: str, hex_: str, expected: dict[str, object]) -> None:
    status, objs, _ = run(["--characteristic", characteristic, "--hex", hex_])
    assert status == 0
    assert objs == [{**expected}]


def test_exact_number_text() -> None:
    _, _, text = run(["--characteristic", "sfloat", "--hex", "BDF0"])
    assert text == '{"value": 18.9}\n'


def test_blood_pressure_fields() -> None:
    status, [obj], _ = run(["-c", "0x2a35", "--hex", "1eb6005f007c00ea070b17091e2d4d00010400"])
    assert status == 0
    assert obj == {
        "unit": "mmHg",
        "systolic": 182.0,
        "diastolic": 95.0,
        "mean_arterial_pressure": 124.0,
        "timestamp": "2026-11-23T09:30:45",
        "pulse_rate": 77.0,
        "user_id": 1,
        "status": ["irregular_pulse"],
        "pulse_rate_range": "within_range",
        "measurement_status_raw": 4,
    }


def test_intermediate_cuff_pressure_field_name() -> None:
    _, [obj], _ = run(["-c", "2A36", "--hex", "008C00FF07FF07"])
    assert obj["current_cuff_pressure"] == 140.0 and "systolic" not in obj


def test_glucose_fields() -> None:
    _, [obj], _ = run(["-c", "2a18", "--hex", "1B0100E807030F0E1E2DF6FF78B0110100"])
    assert obj == {
        "sequence_number": 1,
        "base_time": "2024-03-15T14:30:45",
        "time_offset_minutes": -10,
        "user_facing_time": "2024-03-15T14:20:45",
        "concentration": 0.0012,
        "unit": "kg/L",
        "concentration_mg_dL": 120.0,
        "concentration_mmol_L": None,
        "type": "capillary_whole_blood",
        "sample_location": "finger",
        "sensor_status": ["device_battery_low"],
        "sensor_status_raw": 1,
        "context_follows": True,
    }


def test_glucose_context_fields() -> None:
    _, [obj], _ = run(["-c", "2A34", "--hex", "FF0100000105E00151100E320102A041F0"])
    assert obj == {
        "sequence_number": 1,
        "carbohydrate_id": "breakfast",
        "carbohydrate_amount_kg": 0.05,
        "meal": "preprandial",
        "tester": "self",
        "health": "no_health_issues",
        "exercise_duration_s": 3600,
        "exercise_intensity_pct": 50,
        "medication_id": "rapid_acting_insulin",
        "medication_amount": 2e-6,
        "medication_unit": "L",
        "hba1c_pct": 6.5,
    }


def test_current_time_fields() -> None:
    _, [obj], _ = run(["-c", "2A2B", "--hex", "ea07060c143008000001"])
    assert obj == {
        "timestamp": "2026-06-12T20:48:08",
        "day_of_week": "unknown",
        "fractions256": 0,
        "adjust_reason": ["manual_time_update"],
    }


def test_racp_both_directions() -> None:
    status, objs, _ = run(["-c", "2A52"], "0103010500\n06000106\n05002a00\n")
    assert status == 0
    assert [o["opcode"] for o in objs] == [
        "report_stored_records",
        "response_code",
        "number_of_stored_records_response",
    ]
    assert objs[1]["request_opcode"] == 1 and objs[1]["response"] == "no_records_found"
    assert objs[2]["number_of_records"] == 42


def test_stdin_lines_with_an_error_exit_1_after_all_lines() -> None:
    status, objs, _ = run(["-c", "sfloat"], "BDF0\n\nBD\nzz\nFF07\n")
    assert status == 1
    assert len(objs) == 5  # one output line per input line, so outputs pair with inputs by position
    assert objs[0] == {"value": 18.9}
    assert set(objs[1]) == {"error"} and "too short" in str(objs[1]["error"])  # blank = empty payload
    assert set(objs[2]) == {"error"} and "too short" in str(objs[2]["error"])
    assert set(objs[3]) == {"error"} and "invalid hex" in str(objs[3]["error"])
    assert objs[4] == {"value": "NaN"}


def test_stdin_all_good_exits_0_and_accepts_crlf() -> None:
    status, objs, _ = run(["-c", "sfloat"], "BDF0\r\nFF07\r\n0x7800")
    assert status == 0
    assert objs == [{"value": 18.9}, {"value": "NaN"}, {"value": 120.0}]


def test_stdin_error_on_last_line_still_exits_1() -> None:
    status, objs, _ = run(["-c", "2A08"], "E807030F0E1E2D\nE8070D0F0E1E2D\n")
    assert status == 1
    assert objs[0] == {"timestamp": "2024-03-15T14:30:45"}
    assert set(objs[1]) == {"error"}


@pytest.mark.parametrize("spelling", ["2A35", "2a35", "0x2A35", "0x2a35", "0X2A35", " 2A35 "])
def test_characteristic_spellings(spelling: str) -> None:
    status, [obj], _ = run(["--characteristic", spelling, "--hex", "00780050005D00"])
    assert status == 0
    assert obj["unit"] == "mmHg" and obj["systolic"] == 120


def test_console_script_reads_stdin_and_sets_exit_status() -> None:
    script = [sys.executable, "-c", "import sys; from gateway.cli import main; sys.exit(main())"]
    ok = subprocess.run(
        [*script, "decode", "--characteristic", "0x2a18"],
        input="000100E807030F0E1E2D\n",
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["base_time"] == "2024-03-15T14:30:45"
    bad = subprocess.run(
        [*script, "decode", "--characteristic", "2a18"],
        input="000100E807030F0E1E2D\n0001\n",
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert bad.returncode == 1
    lines = [json.loads(line) for line in bad.stdout.splitlines()]
    assert len(lines) == 2 and set(lines[1]) == {"error"}


def test_warnings_do_not_fail_the_run() -> None:
    status, [obj], _ = run(["-c", "2A35", "--hex", "E0780050005D00"])
    assert status == 0
    assert obj.get("warnings", []) == ["RFU flag bits set: 0xE0"]


def test_repeatable_hex() -> None:
    status, objs, _ = run(["-c", "sfloat", "--hex", "BDF0", "--hex", "0x7800"])
    assert status == 0 and [o["value"] for o in objs] == [18.9, 120.0]


def test_unknown_characteristic_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    status, objs, _ = run(["-c", "2A99", "--hex", "00"])
    assert status == 2 and objs == []
    assert "unknown characteristic" in capsys.readouterr().err


@pytest.mark.parametrize("text", ["BD F0", "bd:f0", "0xBDF0", " bd-f0\n"])
def test_parse_hex_accepts_separators(text: str) -> None:
    assert parse_hex(text) == bytes.fromhex("BDF0")


def test_gateway_cli_can_embed_the_arguments() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    add_decode_arguments(parser)
    args = parser.parse_args(["-c", "SFLOAT", "--hex", "BDF0"])
    out = io.StringIO()
    assert run_decode(args, io.StringIO(), out) == 0
    assert json.loads(out.getvalue()) == {"value": 18.9}


def test_gateway_gatt_imports_only_the_standard_library() -> None:
    code = (
        "import sys, gateway.gatt, gateway.gatt.plausibility, gateway.decode_cli, gateway.errors;"
        "bad = sorted(m for m in ('pandas','psycopg','numpy','fastapi','apscheduler','bleak','paho')"
        " if m in sys.modules); print(bad)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"


def test_trailing_blank_lines_after_the_last_payload_are_ignored() -> None:
    out = io.StringIO()
    status = decode_main(["-c", "sfloat"], stdin=io.StringIO("BDF0\n\n\r\n"), stdout=out)
    assert status == 0
    assert [json.loads(line) for line in out.getvalue().splitlines()] == [{"value": 18.9}]
