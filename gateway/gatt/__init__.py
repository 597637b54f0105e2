"""Sans-I/O decoders for the GATT characteristics the gateway reads (no bleak, no asyncio, no clock).

Stable API (everything below is re-exported here; import from ``gateway.gatt``):

Parsers — ``bytes -> frozen dataclass``; each result keeps ``raw_hex`` and ``warnings``::

    parse_blood_pressure_measurement(data) -> BloodPressureMeasurement      0x2A35
    parse_intermediate_cuff_pressure(data) -> IntermediateCuffPressure      0x2A36 (never store)
    parse_blood_pressure_feature(data) -> BloodPressureFeature              0x2A49
    parse_glucose_measurement(data) -> GlucoseMeasurement                   0x2A18
    parse_glucose_context(data) -> GlucoseContext                           0x2A34
    merge_glucose_context(measurement, context | None) -> GlucoseRecord     join by sequence number
    parse_glucose_feature(data) -> GlucoseFeature                           0x2A51
    parse_racp(data, *, from_device=False) -> RacpFrame                     0x2A52, either direction
    parse_weight_measurement(data) -> WeightMeasurement                     0x2A9D
    parse_weight_scale_feature(data) -> WeightScaleFeature                  0x2A9E
    parse_plx_spot_check_measurement(data) -> PlxSpotCheckMeasurement       0x2A5E
    parse_plx_continuous_measurement(data) -> PlxContinuousMeasurement      0x2A5F
    parse_plx_features(data) -> PlxFeatures                                 0x2A60
    check_racp_response(frame, request_opcode) -> bool                      True success, False none
    parse_date_time(data) -> DateTimeValue                                  0x2A08
    parse_current_time(data) -> CurrentTime                                 0x2A2B
    parse_local_time_information(data) -> LocalTimeInformation              0x2A0F
    parse_system_id(data) / parse_pnp_id(data) / decode_dis_string(data)    0x2A23 / 0x2A50 / strings
    decode_sfloat(raw16) / decode_float32(raw32) -> MedFloat                IEEE-11073 numbers

Encoders — ``encode_racp_report_records_from(seq)`` (``01 03 01 <seq>``), ``..._all_records()``,
``..._records_up_to(seq)``, ``..._records_in_range(first, last)``, ``..._records_since(dt)``,
``..._first_record()``, ``..._last_record()``, ``encode_racp_report_number_of_all_records()``,
``encode_racp_report_number_of_records_from(seq)``, ``encode_racp_abort()`` (no delete encoder),
``encode_current_time(dt, day_of_week=None, fractions256=None, adjust_reason=MANUAL_TIME_UPDATE)``,
``encode_date_time(dt)``.

Errors: a frame too short for its flags, a Date Time field out of range, a wrongly sized RACP
frame or a request op code indicated by the device raise
:class:`gateway.errors.MalformedMeasurement` (terminal).  Parsers raise nothing else for any input.
Trailing bytes, RFU bits and reserved enum codes decode *with warnings* (DOMAIN A7.1).

Values: IEEE-11073 numbers are :class:`MedFloat`; ``.special`` is a :class:`Special` (NaN, NRes,
±INF, reserved) and ``.value`` is then ``None`` — a special never becomes a number.  Measurements
expose ``.outcome`` (:class:`MeasurementOutcome`: ok / failed / out_of_range_high / _low).

Beyond parsing: :mod:`gateway.gatt.plausibility` (impossible → ``ImpossibleValue``; suspicious →
reasons), :class:`ContextJoiner` (measurement/context join with timeout), :func:`to_json_dict`
(DOMAIN Part B output of the decode command).
"""

from gateway.gatt.blood_pressure import (
    BloodPressureFeature,
    BloodPressureFeatureBits,
    BloodPressureFlags,
    BloodPressureMeasurement,
    IntermediateCuffPressure,
    MeasurementStatus,
    PressureUnit,
    PulseRateRange,
    parse_blood_pressure_feature,
    parse_blood_pressure_measurement,
    parse_intermediate_cuff_pressure,
)
from gateway.gatt.context_join import ContextJoiner, Expired
from gateway.gatt.current_time import (
    AdjustReason,
    CurrentTime,
    LocalTimeInformation,
    encode_current_time,
    parse_current_time,
    parse_local_time_information,
)
from gateway.gatt.datetime_ import DateTimeValue, encode_date_time, parse_date_time
from gateway.gatt.device_info import (
    DeviceInformation,
    PnpId,
    SystemId,
    decode_dis_string,
    parse_pnp_id,
    parse_system_id,
)
from gateway.gatt.glucose import (
    ConcentrationUnit,
    GlucoseFeature,
    GlucoseFeatureBits,
    GlucoseFlags,
    GlucoseMeasurement,
    SensorStatus,
    parse_glucose_feature,
    parse_glucose_measurement,
)
from gateway.gatt.glucose_context import (
    GlucoseContext,
    GlucoseContextFlags,
    GlucoseRecord,
    merge_glucose_context,
    parse_glucose_context,
)
from gateway.gatt.ieee11073 import MedFloat, Special, decode_float32, decode_sfloat
from gateway.gatt.jsonable import to_json_dict
from gateway.gatt.outcome import MeasurementOutcome
from gateway.gatt.pulse_oximeter import (
    PlxContinuousFlags,
    PlxContinuousMeasurement,
    PlxFeatures,
    PlxSpotCheckFlags,
    PlxSpotCheckMeasurement,
    PlxSupportedFeatures,
    parse_plx_continuous_measurement,
    parse_plx_features,
    parse_plx_spot_check_measurement,
)
from gateway.gatt.racp import (
    RacpFilterType,
    RacpFrame,
    RacpOpCode,
    RacpOperator,
    RacpResponseCode,
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
    racp_error_for,
)
from gateway.gatt.raw_number import RawNumber, parse_float32_bytes, parse_sfloat_bytes
from gateway.gatt.weight_scale import (
    WeightFlags,
    WeightMeasurement,
    WeightScaleFeature,
    WeightScaleFeatureBits,
    WeightUnit,
    parse_weight_measurement,
    parse_weight_scale_feature,
)

__all__ = [
    "AdjustReason",
    "BloodPressureFeature",
    "BloodPressureFeatureBits",
    "BloodPressureFlags",
    "BloodPressureMeasurement",
    "ConcentrationUnit",
    "ContextJoiner",
    "CurrentTime",
    "DateTimeValue",
    "DeviceInformation",
    "Expired",
    "GlucoseContext",
    "GlucoseContextFlags",
    "GlucoseFeature",
    "GlucoseFeatureBits",
    "GlucoseFlags",
    "GlucoseMeasurement",
    "GlucoseRecord",
    "IntermediateCuffPressure",
    "LocalTimeInformation",
    "MeasurementOutcome",
    "MeasurementStatus",
    "MedFloat",
    "PlxContinuousFlags",
    "PlxContinuousMeasurement",
    "PlxFeatures",
    "PlxSpotCheckFlags",
    "PlxSpotCheckMeasurement",
    "PlxSupportedFeatures",
    "PnpId",
    "PressureUnit",
    "PulseRateRange",
    "RacpFilterType",
    "RacpFrame",
    "RacpOpCode",
    "RacpOperator",
    "RacpResponseCode",
    "RawNumber",
    "SensorStatus",
    "Special",
    "SystemId",
    "WeightFlags",
    "WeightMeasurement",
    "WeightScaleFeature",
    "WeightScaleFeatureBits",
    "WeightUnit",
    "check_racp_response",
    "decode_dis_string",
    "decode_float32",
    "decode_sfloat",
    "encode_current_time",
    "encode_date_time",
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
    "merge_glucose_context",
    "parse_blood_pressure_feature",
    "parse_blood_pressure_measurement",
    "parse_current_time",
    "parse_date_time",
    "parse_float32_bytes",
    "parse_glucose_context",
    "parse_glucose_feature",
    "parse_glucose_measurement",
    "parse_intermediate_cuff_pressure",
    "parse_local_time_information",
    "parse_plx_continuous_measurement",
    "parse_plx_features",
    "parse_plx_spot_check_measurement",
    "parse_pnp_id",
    "parse_racp",
    "parse_sfloat_bytes",
    "parse_system_id",
    "parse_weight_measurement",
    "parse_weight_scale_feature",
    "racp_error_for",
    "to_json_dict",
]
