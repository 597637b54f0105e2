"""Record Access Control Point 0x2A52: encoders, decoding in both directions, strict sizes."""

from __future__ import annotations

from datetime import datetime

import pytest

from gateway.errors import MalformedMeasurement, RacpIncomplete, RacpRefused, TerminalError, TransientError
from gateway.gatt import (
    RacpOpCode,
    RacpOperator,
    check_racp_response,
    encode_racp_abort,
    encode_racp_report_all_records,
    encode_racp_report_first_record,
    encode_racp_report_last_record,
    encode_racp_report_number_of_all_records,
    encode_racp_report_number_of_records_from,
    encode_racp_report_records_from,
    encode_racp_report_records_in_range,
    encode_racp_report_records_since,
    encode_racp_report_records_up_to,
    parse_racp,
    to_json_dict,
)


@pytest.mark.parametrize(
    ("encoded", "wire"),
    [
        (encode_racp_report_records_from(5), "0103010500"),
        (encode_racp_report_records_from(0x1234), "0103013412"),
        (encode_racp_report_all_records(), "0101"),
        (encode_racp_report_records_up_to(10), "0102010a00"),
        (encode_racp_report_records_in_range(1, 10), "01040101000a00"),
        (encode_racp_report_records_since(datetime(2024, 3, 15, 14, 30, 45)), "010302e807030f0e1e2d"),
        (encode_racp_report_first_record(), "0105"),
        (encode_racp_report_last_record(), "0106"),
        (encode_racp_report_number_of_all_records(), "0401"),
        (encode_racp_report_number_of_records_from(7), "0403010700"),
        (encode_racp_abort(), "0300"),
    ],
)
def test_encoders(encoded: bytes, wire: str) -> None:
    assert encoded.hex() == wire
    assert parse_racp(encoded).is_request


def test_encoder_range_checks() -> None:
    with pytest.raises(ValueError, match="65535"):
        encode_racp_report_records_from(65536)
    with pytest.raises(ValueError, match="above"):
        encode_racp_report_records_in_range(10, 1)


def out(hex_: str) -> dict[str, object]:
    return to_json_dict(parse_racp(bytes.fromhex(hex_)))


def test_report_greater_or_equal() -> None:
    assert out("0103010500") == {
        "opcode": "report_stored_records",
        "operator": "greater_than_or_equal",
        "filter_type": "sequence_number",
        "operand": 5,
        "operand_min": None,
        "operand_max": None,
        "number_of_records": None,
        "request_opcode": None,
        "response": None,
    }


@pytest.mark.parametrize(
    ("hex_", "opcode", "operator"),
    [
        ("0101", "report_stored_records", "all_records"),
        ("0105", "report_stored_records", "first_record_oldest"),
        ("0106", "report_stored_records", "last_record_most_recent"),
        ("0201", "delete_stored_records", "all_records"),
        ("0300", "abort_operation", "null"),
        ("0401", "report_number_of_stored_records", "all_records"),
    ],
)
def test_requests_without_operand(hex_: str, opcode: str, operator: str) -> None:
    decoded = out(hex_)
    assert (decoded["opcode"], decoded["operator"], decoded["operand"]) == (opcode, operator, None)


def test_range_and_time_operands() -> None:
    decoded = out("01040101000a00")
    assert (decoded["operator"], decoded["operand_min"], decoded["operand_max"]) == (
        "within_range_inclusive",
        1,
        10,
    )
    decoded = out("010202e807030f0e1e2d")
    assert (decoded["operator"], decoded["filter_type"], decoded["operand"]) == (
        "less_than_or_equal",
        "user_facing_time",
        "2024-03-15T14:30:45",
    )


def test_number_of_records_response() -> None:
    decoded = out("05002a00")
    assert (decoded["opcode"], decoded["operator"], decoded["number_of_records"]) == (
        "number_of_stored_records_response",
        "null",
        42,
    )
    assert decoded.get("warnings", []) == []


@pytest.mark.parametrize(("hex_", "count"), [("05002a", 42), ("050001000002", 0x02000001)])
def test_non_standard_count_width_warns(hex_: str, count: int) -> None:
    frame = parse_racp(bytes.fromhex(hex_))
    assert frame.number_of_records == count
    assert len(frame.warnings) == 1


@pytest.mark.parametrize(
    ("hex_", "request_opcode", "response"),
    [
        ("06000101", 1, "success"),
        ("06000102", 1, "op_code_not_supported"),
        ("06000103", 1, "invalid_operator"),
        ("06000104", 1, "operator_not_supported"),
        ("06000105", 1, "invalid_operand"),
        ("06000106", 1, "no_records_found"),
        ("06000307", 3, "abort_unsuccessful"),
        ("06000108", 1, "procedure_not_completed"),
        ("06000409", 4, "operand_not_supported"),
    ],
)
def test_response_codes(hex_: str, request_opcode: int, response: str) -> None:
    decoded = out(hex_)
    assert (decoded["opcode"], decoded["operator"]) == ("response_code", "null")
    assert (decoded["request_opcode"], decoded["response"]) == (request_opcode, response)
    assert decoded.get("warnings", []) == []


def test_reserved_response_code_warns() -> None:
    decoded = out("0600010a")
    assert decoded["response"] == "reserved_10"
    assert decoded.get("warnings", []) == ["reserved response code 10"]


@pytest.mark.parametrize(
    ("hex_", "message"),
    [
        ("", "missing op_code"),
        ("01", "missing operator"),
        ("060001", "expected 4 bytes"),  # response code is exactly 4 bytes
        ("0600010100", "expected 4 bytes"),
        ("06010101", "operator must be null"),
        ("0500", "expected 4 bytes"),
        ("05002a0000", "expected 4 bytes"),  # a 24-bit count is no known width
        ("05012a00", "operator must be null"),
        ("0700", "unknown op code 0x07"),
        ("0000", "unknown op code 0x00"),
        ("0107", "unknown operator 0x07"),
        ("0103030500", "unknown filter type 0x03"),
        ("01030105", "expected 5 bytes"),
        ("010301050000", "expected 5 bytes"),
        ("010100", "expected 2 bytes"),
        ("0301", "operator must be null"),
        ("030000", "expected 2 bytes"),
        ("010302e8070d0f0e1e2d", r"operand\.month 13"),
    ],
)
def test_rejected_frames(hex_: str, message: str) -> None:
    with pytest.raises(MalformedMeasurement, match=message):
        parse_racp(bytes.fromhex(hex_))


@pytest.mark.parametrize("short_by", range(1, 8), ids=lambda n: f"short_by_{n}")
def test_truncated_range_request(short_by: int) -> None:
    with pytest.raises(MalformedMeasurement):
        parse_racp(bytes.fromhex("01040101000a00")[:-short_by])


@pytest.mark.parametrize("hex_", ["0101", "0103010500", "0300", "0401", "0201"])
def test_request_from_device_is_rejected(hex_: str) -> None:
    with pytest.raises(MalformedMeasurement, match="received from the device"):
        parse_racp(bytes.fromhex(hex_), from_device=True)


def test_responses_from_device_are_accepted() -> None:
    assert parse_racp(bytes.fromhex("06000101"), from_device=True).opcode is RacpOpCode.RESPONSE_CODE


def test_null_operator_on_report_warns() -> None:
    frame = parse_racp(bytes.fromhex("0100"))
    assert frame.operator is RacpOperator.NULL
    assert frame.warnings == ("operator null is invalid for report_stored_records",)


def test_check_response() -> None:
    assert check_racp_response(parse_racp(bytes.fromhex("06000101")), 0x01) is True
    assert check_racp_response(parse_racp(bytes.fromhex("06000106")), 0x01) is False
    with pytest.raises(RacpRefused) as refused:
        check_racp_response(parse_racp(bytes.fromhex("06000102")), 0x01)
    assert isinstance(refused.value, TerminalError)
    assert (refused.value.request_opcode, refused.value.response_code) == (1, 2)
    with pytest.raises(RacpIncomplete) as incomplete:
        check_racp_response(parse_racp(bytes.fromhex("06000108")), 0x01)
    assert isinstance(incomplete.value, TransientError)
    with pytest.raises(MalformedMeasurement, match="expected 0x01"):
        check_racp_response(parse_racp(bytes.fromhex("06000401")), 0x01)
    with pytest.raises(MalformedMeasurement, match="expected a response code frame"):
        check_racp_response(parse_racp(bytes.fromhex("05002a00")), 0x01)
