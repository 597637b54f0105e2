"""Record Access Control Point 0x2A52 (Glucose): request encoders and a frame decoder.

Frames decode by op code in either direction (requests 0x01–0x04, responses 0x05–0x06).  The BLE
shell passes ``from_device=True`` so a request op code arriving as an indication is refused.  RACP is
a control protocol, so sizes are strict (DOMAIN A7.1): a frame whose size does not match its op code,
operator and filter type is refused, with one tolerance: a Number of Stored Records response with a
uint8 or uint32 count (seen in the field) decodes with a warning.  Unknown op codes, operators and
filter types are refused because their operand size is unknown; a reserved *response code* decodes
as ``reserved_<n>`` with a warning.

There is deliberately no encoder for "Delete stored records": a gateway must never delete.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

from gateway.errors import MalformedMeasurement, RacpError, RacpIncomplete, RacpRefused
from gateway.gatt._wire import Reader
from gateway.gatt.datetime_ import DATE_TIME_SIZE, encode_date_time, read_date_time

__all__ = [
    "RacpFilterType",
    "RacpFrame",
    "RacpOpCode",
    "RacpOperator",
    "RacpResponseCode",
    "check_racp_response",
    "encode_racp_abort",
    "encode_racp_report_all_records",
    "encode_racp_report_first_record",
    "encode_racp_report_last_record",
    "encode_racp_report_number_of_all_records",
    "encode_racp_report_number_of_records_from",
    "encode_racp_report_records_from",
    "encode_racp_report_records_in_range",
    "encode_racp_report_records_since",
    "encode_racp_report_records_up_to",
    "parse_racp",
    "racp_error_for",
]

_CHAR = "2A52"


class RacpOpCode(enum.IntEnum):
    REPORT_STORED_RECORDS = 0x01
    DELETE_STORED_RECORDS = 0x02
    ABORT_OPERATION = 0x03
    REPORT_NUMBER_OF_STORED_RECORDS = 0x04
    NUMBER_OF_STORED_RECORDS_RESPONSE = 0x05
    RESPONSE_CODE = 0x06


_REQUESTS = frozenset(
    {
        RacpOpCode.REPORT_STORED_RECORDS,
        RacpOpCode.DELETE_STORED_RECORDS,
        RacpOpCode.ABORT_OPERATION,
        RacpOpCode.REPORT_NUMBER_OF_STORED_RECORDS,
    }
)


class RacpOperator(enum.IntEnum):
    NULL = 0x00
    ALL_RECORDS = 0x01
    LESS_THAN_OR_EQUAL = 0x02
    GREATER_THAN_OR_EQUAL = 0x03
    WITHIN_RANGE_INCLUSIVE = 0x04
    FIRST_RECORD_OLDEST = 0x05
    LAST_RECORD_MOST_RECENT = 0x06


class RacpFilterType(enum.IntEnum):
    SEQUENCE_NUMBER = 0x01
    USER_FACING_TIME = 0x02


class RacpResponseCode(enum.IntEnum):
    SUCCESS = 0x01
    OP_CODE_NOT_SUPPORTED = 0x02
    INVALID_OPERATOR = 0x03
    OPERATOR_NOT_SUPPORTED = 0x04
    INVALID_OPERAND = 0x05
    NO_RECORDS_FOUND = 0x06
    ABORT_UNSUCCESSFUL = 0x07
    PROCEDURE_NOT_COMPLETED = 0x08
    OPERAND_NOT_SUPPORTED = 0x09


RacpOperand = int | datetime | None


@dataclass(frozen=True, slots=True)
class RacpFrame:
    """One decoded RACP frame.  Fields that do not apply to the op code are ``None``.

    ``operand`` holds the single value of ≤ / ≥; ``operand_min`` / ``operand_max`` the range of
    "within range".  A user-facing-time operand is a naive ``datetime`` (``None`` when unknown).
    """

    opcode: RacpOpCode
    operator: RacpOperator
    filter_type: RacpFilterType | None = None
    operand: RacpOperand = None
    operand_min: RacpOperand = None
    operand_max: RacpOperand = None
    number_of_records: int | None = None
    request_opcode: int | None = None
    response_code: int | None = None
    raw_hex: str = ""
    warnings: tuple[str, ...] = field(default=())

    @property
    def is_request(self) -> bool:
        return self.opcode in _REQUESTS

    @property
    def response(self) -> RacpResponseCode | None:
        """The response code as an enum (``None`` if absent or reserved; see ``response_code``)."""
        if self.response_code is None or self.response_code not in RacpResponseCode._value2member_map_:
            return None
        return RacpResponseCode(self.response_code)

    @property
    def response_name(self) -> str | None:
        if self.response_code is None:
            return None
        response = self.response
        return response.name.lower() if response is not None else f"reserved_{self.response_code}"


def _read_operand(reader: Reader, filter_type: RacpFilterType, name: str) -> RacpOperand:
    if filter_type is RacpFilterType.SEQUENCE_NUMBER:
        return reader.u16(name)
    return read_date_time(reader, name)


def _expect_size(data: bytes, size: int, what: str) -> None:
    if len(data) != size:
        raise MalformedMeasurement(
            _CHAR, f"wrong frame size for {what}: expected {size} bytes, got {len(data)}", data.hex()
        )


def parse_racp(data: bytes, *, from_device: bool = False) -> RacpFrame:
    """Decode a RACP frame.  ``from_device=True`` refuses request op codes (they must not be indicated)."""
    data = bytes(data)
    reader = Reader(data, _CHAR)
    code = reader.u8("op_code")
    if code not in RacpOpCode._value2member_map_:
        raise reader.fail(f"unknown op code 0x{code:02X}")
    opcode = RacpOpCode(code)
    if from_device and opcode in _REQUESTS:
        raise reader.fail(f"request op code 0x{code:02X} ({opcode.name.lower()}) received from the device")
    operator_code = reader.u8("operator")
    if operator_code not in RacpOperator._value2member_map_:
        raise reader.fail(f"unknown operator 0x{operator_code:02X}")
    operator = RacpOperator(operator_code)
    if opcode is RacpOpCode.RESPONSE_CODE:
        return _parse_response_code(data, reader, operator)
    if opcode is RacpOpCode.NUMBER_OF_STORED_RECORDS_RESPONSE:
        return _parse_record_count(data, reader, operator)
    if opcode is RacpOpCode.ABORT_OPERATION:
        _expect_size(data, 2, opcode.name.lower())
        _expect_null_operator(reader, opcode, operator)
        return RacpFrame(opcode, operator, raw_hex=data.hex())
    return _parse_request(data, reader, opcode, operator)


def _expect_null_operator(reader: Reader, opcode: RacpOpCode, operator: RacpOperator) -> None:
    if operator is not RacpOperator.NULL:
        raise reader.fail(f"{opcode.name.lower()} operator must be null, got 0x{operator.value:02X}")


def _parse_response_code(data: bytes, reader: Reader, operator: RacpOperator) -> RacpFrame:
    opcode = RacpOpCode.RESPONSE_CODE
    _expect_size(data, 4, opcode.name.lower())
    _expect_null_operator(reader, opcode, operator)
    request = reader.u8("request_op_code")
    response = reader.u8("response_code_value")
    notes: list[str] = []
    if response not in RacpResponseCode._value2member_map_:
        notes.append(f"reserved response code {response}")
    if request not in RacpOpCode._value2member_map_ or RacpOpCode(request) not in _REQUESTS:
        notes.append(f"response to op code 0x{request:02X}, which is not a request")
    return RacpFrame(opcode, operator, request_opcode=request, response_code=response, raw_hex=data.hex(),
                     warnings=tuple(notes))


def _parse_record_count(data: bytes, reader: Reader, operator: RacpOperator) -> RacpFrame:
    opcode = RacpOpCode.NUMBER_OF_STORED_RECORDS_RESPONSE
    _expect_null_operator(reader, opcode, operator)
    width = len(data) - 2
    if width not in (1, 2, 4):
        raise reader.fail(
            f"wrong frame size for {opcode.name.lower()}: expected 4 bytes (uint16), got {len(data)}")
    count = int.from_bytes(reader.take(width, "number_of_records"), "little")
    notes = [] if width == 2 else [f"non-standard {8 * width}-bit record count (GLS uses uint16)"]
    return RacpFrame(opcode, operator, number_of_records=count, raw_hex=data.hex(), warnings=tuple(notes))


def _parse_request(data: bytes, reader: Reader, opcode: RacpOpCode, operator: RacpOperator) -> RacpFrame:
    """Report / delete / report-number requests, with their operator, filter and operands."""
    name = opcode.name.lower()
    warnings: list[str] = []
    if operator is RacpOperator.NULL:
        warnings.append(f"operator null is invalid for {name}")
    if operator not in (
        RacpOperator.LESS_THAN_OR_EQUAL,
        RacpOperator.GREATER_THAN_OR_EQUAL,
        RacpOperator.WITHIN_RANGE_INCLUSIVE,
    ):
        _expect_size(data, 2, f"{name} with operator {operator.name.lower()}")
        return RacpFrame(opcode, operator, raw_hex=data.hex(), warnings=tuple(warnings))
    filter_code = reader.u8("filter_type")
    if filter_code not in RacpFilterType._value2member_map_:
        raise reader.fail(f"unknown filter type 0x{filter_code:02X}")
    filter_type = RacpFilterType(filter_code)
    value_size = 2 if filter_type is RacpFilterType.SEQUENCE_NUMBER else DATE_TIME_SIZE
    count = 2 if operator is RacpOperator.WITHIN_RANGE_INCLUSIVE else 1
    _expect_size(data, 3 + count * value_size, f"{name} {operator.name.lower()} {filter_type.name.lower()}")
    if count == 1:
        operand = _read_operand(reader, filter_type, "operand")
        return RacpFrame(
            opcode, operator, filter_type, operand=operand, raw_hex=data.hex(), warnings=tuple(warnings)
        )
    low = _read_operand(reader, filter_type, "operand_min")
    high = _read_operand(reader, filter_type, "operand_max")
    if isinstance(low, int) and isinstance(high, int) and low > high:
        warnings.append(f"range minimum {low} above maximum {high}")
    if isinstance(low, datetime) and isinstance(high, datetime) and low > high:
        warnings.append(f"range minimum {low.isoformat()} after maximum {high.isoformat()}")
    return RacpFrame(opcode, operator, filter_type, operand_min=low, operand_max=high, raw_hex=data.hex(),
                     warnings=tuple(warnings))


_INCOMPLETE = frozenset({RacpResponseCode.ABORT_UNSUCCESSFUL, RacpResponseCode.PROCEDURE_NOT_COMPLETED})


def racp_error_for(request_opcode: int, response_code: int) -> RacpError:
    """The typed error for a failed response: transient for 0x07 / 0x08, terminal otherwise."""
    if response_code in _INCOMPLETE:
        return RacpIncomplete(request_opcode, response_code)
    return RacpRefused(request_opcode, response_code)


def check_racp_response(frame: RacpFrame, request_opcode: int) -> bool:
    """Check the final indication of a procedure started with ``request_opcode``.

    Returns ``True`` for success and ``False`` for "no records found" (a normal "nothing new"); raises
    :class:`~gateway.errors.RacpError` for any other response code and
    :class:`~gateway.errors.MalformedMeasurement` when the frame answers another request.
    """
    if frame.opcode is not RacpOpCode.RESPONSE_CODE or frame.response_code is None:
        raise MalformedMeasurement(
            _CHAR, f"expected a response code frame, got {frame.opcode.name.lower()}", frame.raw_hex
        )
    if frame.request_opcode != request_opcode:
        raise MalformedMeasurement(
            _CHAR,
            f"response to op code 0x{frame.request_opcode or 0:02X}, expected 0x{request_opcode:02X}",
            frame.raw_hex,
        )
    if frame.response_code == RacpResponseCode.SUCCESS:
        return True
    if frame.response_code == RacpResponseCode.NO_RECORDS_FOUND:
        return False
    raise racp_error_for(request_opcode, frame.response_code)


def _seq(value: int) -> bytes:
    if not 0 <= value <= 0xFFFF:
        raise ValueError(f"sequence number {value} out of range 0..65535")
    return value.to_bytes(2, "little")


_REPORT = RacpOpCode.REPORT_STORED_RECORDS
_COUNT = RacpOpCode.REPORT_NUMBER_OF_STORED_RECORDS
_BY_SEQ = RacpFilterType.SEQUENCE_NUMBER


def _request(
    opcode: RacpOpCode, operator: RacpOperator, filter_type: int | None = None, *operands: bytes
) -> bytes:
    head = bytes((opcode, operator)) if filter_type is None else bytes((opcode, operator, filter_type))
    return head + b"".join(operands)


def encode_racp_report_all_records() -> bytes:
    """``01 01``: report every stored record."""
    return _request(_REPORT, RacpOperator.ALL_RECORDS)


def encode_racp_report_records_from(seq: int) -> bytes:
    """``01 03 01 <seq>``: records with sequence number ≥ ``seq`` (pass ``last_seen + 1`` to resume)."""
    return _request(_REPORT, RacpOperator.GREATER_THAN_OR_EQUAL, _BY_SEQ, _seq(seq))


def encode_racp_report_records_up_to(seq: int) -> bytes:
    """``01 02 01 <seq>``: records with sequence number ≤ ``seq``."""
    return _request(_REPORT, RacpOperator.LESS_THAN_OR_EQUAL, _BY_SEQ, _seq(seq))


def encode_racp_report_records_in_range(first: int, last: int) -> bytes:
    """``01 04 01 <first> <last>``: records with first ≤ sequence number ≤ last."""
    if first > last:
        raise ValueError(f"range minimum {first} above maximum {last}")
    return _request(_REPORT, RacpOperator.WITHIN_RANGE_INCLUSIVE, _BY_SEQ, _seq(first), _seq(last))


def encode_racp_report_records_since(user_facing_time: datetime) -> bytes:
    """``01 03 02 <Date Time>``: records whose user-facing time is ≥ the given wall-clock time."""
    operand = encode_date_time(user_facing_time)
    return _request(_REPORT, RacpOperator.GREATER_THAN_OR_EQUAL, RacpFilterType.USER_FACING_TIME, operand)


def encode_racp_report_first_record() -> bytes:
    """``01 05``: the oldest record."""
    return _request(_REPORT, RacpOperator.FIRST_RECORD_OLDEST)


def encode_racp_report_last_record() -> bytes:
    """``01 06``: the most recent record."""
    return _request(_REPORT, RacpOperator.LAST_RECORD_MOST_RECENT)


def encode_racp_report_number_of_all_records() -> bytes:
    """``04 01``: how many records are stored."""
    return _request(_COUNT, RacpOperator.ALL_RECORDS)


def encode_racp_report_number_of_records_from(seq: int) -> bytes:
    """``04 03 01 <seq>``: how many records have sequence number ≥ ``seq``."""
    return _request(_COUNT, RacpOperator.GREATER_THAN_OR_EQUAL, _BY_SEQ, _seq(seq))


def encode_racp_abort() -> bytes:
    """``03 00``: abort the running procedure."""
    return _request(RacpOpCode.ABORT_OPERATION, RacpOperator.NULL)
