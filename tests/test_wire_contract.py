"""Wire contract v1 across the seam: what gateway/wire.py builds from real bytes, ingest accepts.

Each case starts from literal GATT bytes, goes through the gateway's decoder and message builder,
then through ingest's validator and plausibility grade, so gateway and ingest are checked against
each other (they share gateway/contract.py) and against literal expectations.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import contract, wire
from gateway.collector import Collector, CollectorConfig
from gateway.errors import GatewayError, TransientError
from gateway.gatt import (
    merge_glucose_context,
    parse_blood_pressure_measurement,
    parse_date_time,
    parse_glucose_measurement,
)
from gateway.outbox import Outbox
from ingest.contract import ValidReading, decode
from ingest.errors import ContractViolation, MessageIdMismatch
from ingest.plausibility import grade
from simulators.devices import build_radio
from tests.ingest.helpers import contract_id

RX = datetime(2026, 11, 23, 14, 31, 2, tzinfo=UTC)
NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
TIMING = wire.Timing(RX, 0.0, ZoneInfo("Europe/Berlin"))
DEVICE = wire.DeviceIdentity("DEV-1", "ACME", "M1", "DEV-1", "1.0", None)
TOPIC = "rpm/v1/gw-1/readings"


def _bp(hex_: str) -> dict[str, Any]:
    m = parse_blood_pressure_measurement(bytes.fromhex(hex_))
    return wire.blood_pressure_reading(m, gateway_id="gw-1", device=DEVICE, timing=TIMING)


def _glucose(hex_: str) -> dict[str, Any]:
    record = merge_glucose_context(parse_glucose_measurement(bytes.fromhex(hex_)), None)
    return wire.glucose_reading(record, gateway_id="gw-1", device=DEVICE, timing=TIMING)


def _ingest(msg: dict[str, Any]) -> ValidReading:
    got = decode(TOPIC, wire.encode(msg).encode())
    assert isinstance(got, ValidReading)
    return got


# -- one test per unit, with the unit string exactly as the gateway writes it -------------------------


def test_mmhg_has_no_original_and_grades_valid() -> None:
    msg = _bp("02780050006000e807030f0e1e2d")  # 120/80/96 mmHg with a time stamp
    assert msg["original"] is None
    assert grade(_ingest(msg), now=NOW).quality == "valid"


def test_kpa_is_written_as_kPa_and_converts_back() -> None:
    msg = _bp("03a0f06bf07df0e807030f0e1e2d")  # 16.0/10.7/12.5 kPa
    assert msg["original"]["unit"] == "kPa"
    r = _ingest(msg)
    assert r.systolic_mmhg == pytest.approx(120.00992)
    assert grade(r, now=NOW).quality == "valid"


def test_kg_per_l_is_written_as_kg_L() -> None:
    msg = _glucose("020500e807030f0e1e2d78b011")  # 120 mg/dL as 0.00120 kg/L
    assert msg["original"] == {"unit": "kg/L", "concentration": 0.0012}
    assert grade(_ingest(msg), now=NOW).quality == "valid"


def test_kg_per_l_below_the_mass_floor_is_a_suspected_unit_error() -> None:
    msg = _glucose("020500e807030f0e1e2d0cb011")  # 12 mg/dL: mmol/L sent as mg/dL?
    g = grade(_ingest(msg), now=NOW)
    assert (g.quality, g.reason) == ("quarantined", "unit error suspected: glucose 12 mg/dL is below 15")


def test_mol_per_l_is_written_as_mol_L_and_grades_valid() -> None:
    msg = _glucose("060500e807030f0e1e2d37c011")  # 5.5 mmol/L
    assert msg["original"] == {"unit": "mol/L", "concentration": 0.0055}
    assert grade(_ingest(msg), now=NOW).quality == "valid"


def test_mol_per_l_above_the_molar_ceiling_is_quarantined() -> None:
    """The bound that never ran while ingest compared "mmol/L" against the gateway's "mol/L"."""
    msg = _glucose("060500e807030f0e1e2d28d011")  # 0.040 mol/L = 40 mmol/L (720.6 mg/dL)
    g = grade(_ingest(msg), now=NOW)
    assert (g.quality, g.reason) == ("quarantined", "unit error suspected: 40.0 mmol/L is above 35")


def test_original_units_are_exactly_the_gatt_unit_strings() -> None:
    assert sorted(contract.ORIGINAL_UNITS) == ["kPa", "kg/L", "lb", "mol/L"]  # lb: weight scales


# -- the message id, recomputed by ingest from the message's own contents -----------------------------


@pytest.mark.parametrize(
    ("case", "build"),
    [
        ("bp with time stamp", lambda: _bp("02780050006000e807030f0e1e2d")),
        ("bp without time stamp: receive time joins in", lambda: _bp("047800500064004800")),
        ("glucose, time offset: base time differs from device_time",
         lambda: _glucose("030500e807030f0e1e2d1e0078b011")),
        ("glucose with unknown base time", lambda: _glucose("020500000000000000000078b011")),
    ],
)
def test_gateway_ids_are_recomputed_by_ingest(case: str, build: Any) -> None:
    msg = build()
    assert msg["message_id"] == contract_id(msg), case  # the test's own copy of the recipe
    assert _ingest(msg).message_id == msg["message_id"]


def test_time_offset_case_really_differs() -> None:
    msg = _glucose("030500e807030f0e1e2d1e0078b011")
    assert msg["device_time"] == "2024-03-15T15:00:45"  # base 14:30:45 + 30 min
    assert contract.glucose_base_time(msg["raw"]) == datetime(2024, 3, 15, 14, 30, 45)


@pytest.mark.parametrize(
    "tamper",
    [
        {"message_id": "0" * 32},
        {"device": {**DEVICE.to_json(), "id": "SOMEONE-ELSES-CUFF"}},
        {"raw": "02790050006000e807030f0e1e2d"},
        {"device_time": None},  # the identity then needs the receive time
    ],
)
def test_a_message_id_that_does_not_match_its_contents_is_refused(tamper: dict[str, Any]) -> None:
    msg = {**_bp("02780050006000e807030f0e1e2d"), **tamper}
    with pytest.raises(MessageIdMismatch) as info:
        decode(TOPIC, json.dumps(msg).encode())
    assert isinstance(info.value, ContractViolation)
    assert info.value.expected == contract_id(msg) != info.value.message_id


def test_glucose_raw_with_an_impossible_base_time_cannot_be_checked() -> None:
    msg = _glucose("020500e807030f0e1e2d78b011")
    msg["raw"] = "020500e8070d0f0e1e2d78b011"  # month 13
    with pytest.raises(ContractViolation, match="cannot be checked: glucose raw has an invalid base time"):
        decode(TOPIC, json.dumps(msg).encode())


# -- the module itself ----------------------------------------------------------------------------


def test_patterns_refuse_a_trailing_newline() -> None:
    assert contract.MESSAGE_ID_RE.match("a" * 32)
    assert not contract.MESSAGE_ID_RE.match("a" * 32 + "\n")
    assert not contract.GATEWAY_ID_RE.match("gw-1\n")
    assert not contract.INBOUND_TOPIC_RE.match("rpm/v1/gw-1/readings\n")


def test_topics() -> None:
    assert contract.readings_topic("gw-1") == "rpm/v1/gw-1/readings"
    assert contract.status_topic("gw-1") == "rpm/v1/gw-1/status"
    assert contract.acks_topic("gw-1") == "rpm/v1/gw-1/acks"
    assert (contract.READINGS_FILTER, contract.STATUS_FILTER) == ("rpm/v1/+/readings", "rpm/v1/+/status")


def test_contract_loads_only_the_standard_library_and_the_gateway() -> None:
    code = ("import sys; before = set(sys.modules); import gateway.contract; "
            "new = {m.split('.')[0] for m in set(sys.modules) - before}; "
            "print(sorted(m for m in new - set(sys.stdlib_module_names)"
            # CPython's generated build-configuration module (sysconfig, via zoneinfo) is stdlib too.
            " if not m.startswith('_sysconfigdata_')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out.replace("'", '"')) == ["gateway"]


@settings(max_examples=500, derandomize=True, deadline=None)
@given(st.binary(min_size=7, max_size=7) | st.tuples(
    st.integers(1500, 10100), st.integers(0, 13), st.integers(0, 32), st.integers(0, 24), st.integers(0, 60),
    st.integers(0, 60)).map(lambda t: t[0].to_bytes(2, "little") + bytes(t[1:])))
def test_base_time_shortcut_agrees_with_the_gateway_date_time_reader(field: bytes) -> None:
    """The contract reads a glucose Base Time without the decoder's machinery; it must agree with
    the gateway's Date Time reader on every 7 bytes (a value, "unknown", or refused)."""
    raw = ("060500" + field.hex() + "37c011")
    try:
        expected: object = parse_date_time(field).timestamp
    except GatewayError:
        expected = "refused"
    try:
        got: object = contract.glucose_base_time(raw)
    except contract.IdentityUnknown:
        got = "refused"
    assert got == expected, field.hex()


@pytest.mark.parametrize("scenario", ["quirks", "faults", "demo", "normal"])
def test_every_reading_a_simulated_session_stores_passes_ingest_with_its_id(scenario: str,
                                                                           tmp_path: Path) -> None:
    """Quirks rewrite bytes (Beurer), derive sequence numbers (TaiDoc), skip clocks (Roche): the id
    the gateway computed must still be the one ingest recomputes from the message."""
    spec = "bp:B1,bp:B2,glucose:G1,glucose:G2,glucose:G3"
    radio = build_radio(spec, scenario, seed=3, tz="Europe/Paris", epoch=datetime(2026, 3, 15, 12))
    config = CollectorConfig("gw-1", ZoneInfo("Europe/Paris"), session_idle_s=0.3, context_timeout_s=0.3,
                             racp_timeout_s=3)
    with Outbox(tmp_path / "o.sqlite3", 1000) as outbox:
        collector = Collector(radio, outbox, config)
        for device in radio.devices:
            for _attempt in range(3):  # "faults" drops links mid-download: the next session resumes
                with contextlib.suppress(TransientError):
                    asyncio.run(collector.session(device.address))
        payloads = [r.payload for r in outbox.rows() if r.state != "rejected"]
    kinds = set()
    for payload in payloads:
        got = decode(TOPIC, payload.encode() if isinstance(payload, str) else payload)
        assert isinstance(got, ValidReading)
        kinds.add(got.kind)
    assert kinds == {"blood_pressure", "glucose"}
