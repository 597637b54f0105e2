"""The wire contract as a pure function: the documented example passes, every malformed case fails
with a precise reason, and no input makes the validator raise anything but ContractViolation."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest import contract_reference
from ingest.contract import ValidReading, ValidStatus, decode, topic_gateway
from ingest.contract_fast import fast_reading
from ingest.errors import ContractViolation, TerminalError, TransientError
from tests.ingest.corpus import corpus
from tests.ingest.helpers import EXAMPLE, GLUCOSE, dumps, reading, status

TOPIC = "rpm/v1/gw-0001/readings"


def test_documented_example_is_valid() -> None:
    r = decode(TOPIC, dumps(EXAMPLE))
    assert isinstance(r, ValidReading)
    assert r.message_id == "3bc07ada3f581d70639fbccb04f74623"
    assert r.device.device_id == "OMR-7361-000123" and r.device.model == "HEM-7361T"
    assert r.measured_at == datetime(2025, 11, 23, 14, 30, 33, tzinfo=UTC)
    assert (r.systolic_mmhg, r.diastolic_mmhg, r.mean_arterial_mmhg, r.pulse_bpm) == (
        182.0,
        95.0,
        124.0,
        77.0,
    )
    assert r.status == ("irregular_pulse",) and r.user_id == 1 and r.clock_offset_s == 12.0
    assert r.measurement == "ok" and r.transmission == "automatic"


def test_glucose_with_converted_original_is_valid() -> None:
    r = decode(TOPIC, dumps(GLUCOSE))
    assert isinstance(r, ValidReading)
    assert r.kind == "glucose" and r.sequence_number == 17 and r.glucose_mg_dl == 99.09
    assert r.device_time is None and r.clock_offset_s is None
    assert r.measurement == "ok" and r.transmission == "automatic"  # defaults when absent


def test_optional_fields_may_be_absent_and_unknown_fields_are_ignored() -> None:
    msg = reading()
    for key in ("clock_offset_s", "original", "measurement", "transmission", "user_id", "context"):
        del msg[key]
    msg["future_field"] = {"x": 1}
    assert isinstance(decode(TOPIC, dumps(msg)), ValidReading)


def test_failed_measurement_may_lack_values() -> None:
    msg = reading(measurement="failed")
    msg["values"] = {"systolic_mmhg": None, "diastolic_mmhg": None}
    r = decode(TOPIC, dumps(msg))
    assert isinstance(r, ValidReading) and r.systolic_mmhg is None


def test_status_message() -> None:
    s = decode("rpm/v1/gw-0001/status", dumps(status("gw-0001", "2025-11-23T14:31:02Z", online=False)))
    assert isinstance(s, ValidStatus) and s.online is False and s.gateway_id == "gw-0001"


def test_status_with_wrong_schema_is_refused() -> None:
    with pytest.raises(ContractViolation, match=r"rpmflow\.status\.v1"):
        decode("rpm/v1/gw-0001/status", dumps(EXAMPLE))


@pytest.mark.parametrize(
    ("case", "payload", "reason"), corpus("gw-0001"), ids=[c[0] for c in corpus("gw-0001")]
)
def test_malformed_message_names_its_reason(case: str, payload: bytes, reason: str) -> None:
    with pytest.raises(ContractViolation) as info:
        decode(TOPIC, payload)
    assert reason in info.value.reason, info.value.reason


@pytest.mark.parametrize(
    "topic",
    [
        "rpm/v1/gw-0001/readings/extra",
        "rpm/v2/gw-0001/readings",
        "rpm/v1//readings",
        "rpm/v1/gw 0001/readings",
        "rpm/v1/" + "g" * 65 + "/readings",
        "other/topic",
        "rpm/v1/gw-0001/commands",
    ],
)
def test_wrong_topic_is_refused(topic: str) -> None:
    with pytest.raises(ContractViolation, match="is not rpm/v1/<gateway_id>"):
        decode(topic, dumps(EXAMPLE))
    assert topic_gateway(topic) is None


def test_contract_violation_is_terminal() -> None:
    exc = ContractViolation("x")
    assert isinstance(exc, TerminalError) and not isinstance(exc, TransientError)


def test_payload_at_the_limit_is_accepted() -> None:
    msg = reading()
    msg["context"] = {"padding": ""}
    size = len(dumps(msg))
    msg["context"] = {"padding": "x" * (64 * 1024 - size)}
    payload = dumps(msg)
    assert len(payload) == 64 * 1024
    assert isinstance(decode(TOPIC, payload), ValidReading)


@settings(max_examples=300, deadline=None)
@given(
    st.binary(max_size=300)
    | st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
        max_leaves=20,
    ).map(lambda o: dumps(o) if not isinstance(o, float) else repr(o).encode())
)
def test_arbitrary_input_only_ever_raises_contract_violation(payload: bytes) -> None:
    try:
        decode(TOPIC, payload)
    except ContractViolation as exc:
        assert exc.reason


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(sorted(EXAMPLE)),
    st.none() | st.integers() | st.text(max_size=8) | st.lists(st.integers()),
)
def test_any_single_field_replaced_is_accepted_or_refused_with_reason(key: str, value: object) -> None:
    try:
        msg = reading()
        msg[key] = value
        r = decode(TOPIC, dumps(msg))
    except ContractViolation as exc:
        assert key in exc.reason or "gateway_id" in exc.reason or "required" in exc.reason, exc.reason
    else:
        assert isinstance(r, ValidReading)


def _reference(topic: str, payload: bytes) -> ValidReading | ValidStatus:
    """The field-by-field validator alone (what decode falls back to)."""
    gateway = topic_gateway(topic)
    assert gateway is not None
    text, obj = contract_reference.load_object(payload)
    return contract_reference.reading(topic, gateway, obj, text)


def _fast_path_agrees(payload: bytes) -> None:
    gateway = TOPIC.split("/")[2]
    fast = fast_reading(TOPIC, gateway, payload)
    if fast is None:
        return  # declined: decode takes the reference path
    assert fast == _reference(TOPIC, payload)


def test_fast_path_accepts_the_common_shapes() -> None:
    for msg in (EXAMPLE, GLUCOSE):
        assert fast_reading(TOPIC, "gw-0001", dumps(msg)) == _reference(TOPIC, dumps(msg))


@pytest.mark.parametrize(
    ("case", "payload", "reason"), corpus("gw-0001"), ids=[c[0] for c in corpus("gw-0001")]
)
def test_fast_path_declines_every_malformed_message(case: str, payload: bytes, reason: str) -> None:
    assert fast_reading(TOPIC, "gw-0001", payload) is None


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(sorted({*EXAMPLE, *GLUCOSE})),
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
    | st.lists(st.text(max_size=3))
    | st.dictionaries(st.text(max_size=12), st.integers() | st.text(max_size=5)),
    st.booleans(),
)
def test_fast_path_accepts_only_what_the_reference_accepts_with_the_same_result(
    key: str, value: object, glucose: bool
) -> None:
    msg = reading(GLUCOSE if glucose else None)
    msg[key] = value
    try:
        payload = dumps(msg)
    except ValueError:
        return  # NaN/inf are not JSON
    try:
        _reference(TOPIC, payload)
    except ContractViolation:
        assert fast_reading(TOPIC, "gw-0001", payload) is None
    else:
        _fast_path_agrees(payload)
