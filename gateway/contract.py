"""Wire contract v1, once: every constant and recipe that gateway, ingest and simulators share.

Why one module: the contract used to be restated in ingest and the simulators (schema names, the
64 KiB limit, unit factors, the gateway-id pattern, the ack schema, the message-id recipe five
times, two different sets of plausibility bounds). Changing the contract now means changing this
file; gateway/wire.py builds messages with it, ingest/contract.py validates with it, and the
simulators import it. docs/wire-format.md is the prose of the same contract.

Stdlib only (plus the gateway's own pure Date Time reader): it ships in the Pi package
(the ``rpmflow-gateway`` wheel, scripts/build_gateway_wheel.sh). No I/O, no clock.

The message-id recipe (:func:`message_id` and :func:`message_id_from_contents`) is the only place
that spells the hash input; ingest recomputes each id from the message's own fields and refuses a
mismatch, so a gateway cannot pre-claim the id of another gateway's reading.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Final

from gateway.errors import DecodeError
from gateway.gatt.datetime_ import DATE_TIME_SIZE, parse_date_time

# -- schemas, topics, limits ----------------------------------------------------------------------

VERSION: Final = "v1"
READING_SCHEMA: Final = "rpmflow.reading.v1"
STATUS_SCHEMA: Final = "rpmflow.status.v1"
ACK_SCHEMA: Final = "rpmflow.ack.v1"

MAX_MESSAGE_BYTES: Final = 64 * 1024
"""A reading or status message, as UTF-8 JSON."""
MAX_IDS_PER_ACK: Final = 1000
MAX_DEVICE_ID_CHARS: Final = 128

TOPIC_ROOT: Final = f"rpm/{VERSION}"
GATEWAY_ID_PATTERN: Final = r"[A-Za-z0-9._-]{1,64}"
"""A gateway id is its MQTT username: the broker ACL binds topic and account."""
GATEWAY_ID_RE: Final = re.compile(rf"\A{GATEWAY_ID_PATTERN}\Z")
MESSAGE_ID_PATTERN: Final = r"[0-9a-f]{32}"
MESSAGE_ID_RE: Final = re.compile(rf"\A{MESSAGE_ID_PATTERN}\Z")
RAW_HEX_RE: Final = re.compile(r"\A(?:[0-9a-fA-F]{2})+(?:\+(?:[0-9a-fA-F]{2})+)*\Z")
"""``raw``: hex of the characteristic value, ``+``-joined with the context when merged."""

READINGS_LEAF: Final = "readings"
STATUS_LEAF: Final = "status"
ACKS_LEAF: Final = "acks"
INBOUND_TOPIC_RE: Final = re.compile(
    rf"\A{TOPIC_ROOT}/({GATEWAY_ID_PATTERN})/({READINGS_LEAF}|{STATUS_LEAF})\Z")
"""What ingest accepts: ``rpm/v1/<gateway_id>/readings|status``."""
READINGS_FILTER: Final = f"{TOPIC_ROOT}/+/{READINGS_LEAF}"
STATUS_FILTER: Final = f"{TOPIC_ROOT}/+/{STATUS_LEAF}"
ACKS_FILTER: Final = f"{TOPIC_ROOT}/+/{ACKS_LEAF}"


def readings_topic(gateway_id: str) -> str:
    return f"{TOPIC_ROOT}/{gateway_id}/{READINGS_LEAF}"


def status_topic(gateway_id: str) -> str:
    return f"{TOPIC_ROOT}/{gateway_id}/{STATUS_LEAF}"


def acks_topic(gateway_id: str) -> str:
    return f"{TOPIC_ROOT}/{gateway_id}/{ACKS_LEAF}"


# -- reading vocabulary ---------------------------------------------------------------------------

KIND_BLOOD_PRESSURE: Final = "blood_pressure"
KIND_GLUCOSE: Final = "glucose"
KIND_WEIGHT: Final = "weight"
KIND_SPO2: Final = "spo2"
KINDS: Final = frozenset({KIND_BLOOD_PRESSURE, KIND_GLUCOSE, KIND_WEIGHT, KIND_SPO2})
"""Weight and SpO2 were added compatibly: an older ingest dead-letters them (kept with the reason),
older gateways never send them, and nothing about blood pressure or glucose changed."""
MEASUREMENT_OK: Final = "ok"
MEASUREMENTS: Final = frozenset({MEASUREMENT_OK, "failed", "out_of_range_high", "out_of_range_low"})
TRANSMISSION_AUTOMATIC: Final = "automatic"
TRANSMISSIONS: Final = frozenset({TRANSMISSION_AUTOMATIC, "manual"})

BP_VALUES: Final = ("systolic_mmhg", "diastolic_mmhg", "mean_arterial_mmhg", "pulse_bpm")
BP_REQUIRED: Final = ("systolic_mmhg", "diastolic_mmhg")
GLUCOSE_NUMBERS: Final = ("glucose_mg_dl",)
GLUCOSE_LABELS: Final = ("sample_type", "sample_location", "meal")
WEIGHT_NUMBERS: Final = ("weight_kg", "bmi", "height_m")
"""Weight in kg (exact from the device's unit), BMI in kg/m² and height in m when the scale sent them."""
SPO2_NUMBERS: Final = ("spo2_pct", "spo2_min_pct")
"""SpO2 %; ``spo2_min_pct`` only in a continuous-oximetry summary. Pulse travels in ``pulse_bpm``."""
SPO2_SAMPLE_COUNT: Final = "sample_count"
"""Samples a continuous-oximetry summary holds (an integer ≥ 1); null for a spot-check."""
VALUE_NUMBERS: Final = (*BP_VALUES, *GLUCOSE_NUMBERS, *WEIGHT_NUMBERS, *SPO2_NUMBERS)
REQUIRED_WHEN_OK: Final[dict[str, tuple[str, ...]]] = {
    KIND_BLOOD_PRESSURE: BP_REQUIRED,
    KIND_GLUCOSE: GLUCOSE_NUMBERS,
    KIND_WEIGHT: ("weight_kg",),
    KIND_SPO2: ("spo2_pct", "pulse_bpm"),
}
"""The ``values`` a reading with ``measurement: "ok"`` must carry, per kind."""
SEQUENCED_KINDS: Final = frozenset({KIND_GLUCOSE})
"""Kinds whose readings carry a ``sequence_number`` (every other kind sends null)."""

# -- units: canonical on the wire, the device's own kept in ``original`` ----------------------------

UNIT_MMHG: Final = "mmHg"
UNIT_MG_DL: Final = "mg/dL"
UNIT_PER_MIN: Final = "/min"
UNIT_KPA: Final = "kPa"
"""The ``original.unit`` strings exactly as the gateway writes them (the GATT unit flags)."""
UNIT_KG_PER_L: Final = "kg/L"
UNIT_MOL_PER_L: Final = "mol/L"
UNIT_KG: Final = "kg"
UNIT_LB: Final = "lb"
"""A scale weighing in pounds: ``original = {"unit": "lb", "weight": …}`` keeps it for display."""
UNIT_PERCENT: Final = "%"

KPA_TO_MMHG: Final = Decimal("7.50062")
"""DOMAIN A5 (eigger/hass-omron); physics gives 7.500617."""
MMOL_L_TO_MG_DL: Final = Decimal("18.0156")
"""The one mass↔molar glucose factor (molar mass 180.156 g/mol ÷ 10), DOMAIN A5."""
KG_L_TO_MG_DL_EXP: Final = 5
"""kg/L → mg/dL is an exact decimal shift (× 10^5)."""
MOL_L_TO_MMOL_L_EXP: Final = 3
"""mol/L → mmol/L is an exact decimal shift (× 10^3)."""
KG_PER_LB: Final = Decimal("0.45359237")
"""Exact by definition (international yard and pound, 1959)."""
M_PER_IN: Final = Decimal("0.0254")

ORIGINAL_UNITS: Final[dict[str, tuple[str, float, dict[str, str]]]] = {
    UNIT_KPA: (KIND_BLOOD_PRESSURE, float(KPA_TO_MMHG),
               {"systolic": "systolic_mmhg", "diastolic": "diastolic_mmhg",
                "mean_arterial": "mean_arterial_mmhg"}),
    UNIT_KG_PER_L: (KIND_GLUCOSE, float(10 ** KG_L_TO_MG_DL_EXP), {"concentration": "glucose_mg_dl"}),
    UNIT_MOL_PER_L: (KIND_GLUCOSE, float(MMOL_L_TO_MG_DL.scaleb(MOL_L_TO_MMOL_L_EXP)),
                     {"concentration": "glucose_mg_dl"}),
    UNIT_LB: (KIND_WEIGHT, float(KG_PER_LB), {"weight": "weight_kg"}),
}
"""``original.unit`` → (kind, factor to canonical, {original field: ``values`` field})."""

# -- plausibility bounds (DOMAIN C5), one set for gateway and ingest ------------------------------

BP_RANGE_MMHG: Final = (20.0, 280.0)
"""Systolic, diastolic and MAP: the typical home-monitor span (C5); per-model ranges below win."""
DEVICE_BP_RANGES_MMHG: Final[dict[str, tuple[float, float]]] = {
    "HEM-7361T": (0.0, 299.0),
    "BP7250": (0.0, 299.0),
}
"""Declared measurement ranges of models we know, keyed by DIS model number."""
PULSE_RANGE_BPM: Final = (25.0, 250.0)
PULSE_PRESSURE_MMHG: Final = (10.0, 120.0)
GLUCOSE_RANGE_MG_DL: Final = (10.0, 1000.0)
GLUCOSE_MASS_FLOOR_MG_DL: Final = 15.0
"""Below this in a mass unit: probably mmol/L sent as mg/dL (C5 unit sanity)."""
GLUCOSE_MOLAR_CEILING_MMOL_L: Final = 35.0
"""Above this in a molar unit: probably mg/dL sent as mmol/L (C5 unit sanity)."""
WEIGHT_RANGE_KG: Final = (20.0, 300.0)
"""Adult home scales weigh 0–327.67 kg (WSS); outside 20–300 kg is quarantined (a child on the
scale, a bag, an encoder or unit error), never clamped."""
SPO2_RANGE_PCT: Final = (50.0, 100.0)
"""Above 100 % is impossible; home oximeters are specified for 70–100 % and below 50 % is not a
measurement they can make (probe off, motion): quarantined, never clamped."""
FUTURE_TOLERANCE_S: Final = 600.0
"""A measurement (or device clock) more than this in the future is quarantined."""
EARLIEST_MEASUREMENT: Final = datetime(2015, 1, 1, tzinfo=UTC)
"""Before this: a device clock reset (derdilla #410), quarantined."""
MAX_CLOCK_OFFSET_S: Final = 600.0


def device_bp_range(model: str | None) -> tuple[float, float]:
    return DEVICE_BP_RANGES_MMHG.get(model or "", BP_RANGE_MMHG)


# -- message identity -----------------------------------------------------------------------------


class IdentityUnknown(ValueError):
    """The message's contents do not carry what its identity needs (``reason`` says what)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def message_id(device_id: str, kind: str, identity: str) -> str:
    """The recipe: sha256 of version, device id, kind and identity, ``|``-joined; 32 hex characters."""
    return hashlib.sha256("|".join((VERSION, device_id, kind, identity)).encode()).hexdigest()[:32]


def bp_identity(raw_hex: str, has_timestamp: bool, received_at: str) -> str:
    """A cuff without a clock cannot tell two identical readings apart: the receive time joins in."""
    return f"raw={raw_hex}" if has_timestamp else f"raw={raw_hex}|rx={received_at}"


def glucose_identity(sequence_number: int, base_time: datetime | None) -> str:
    return f"seq={sequence_number}|base={base_time.isoformat() if base_time else 'unknown'}"


_GLUCOSE_BASE_TIME_AT: Final = 3  # flags (1) + sequence number (2), then Base Time (0x2A18)


def glucose_base_time(raw: str) -> datetime | None:
    """The meter's Base Time from a glucose ``raw`` (the measurement before any ``+context``)."""
    try:
        value = bytes.fromhex(raw.split("+", 1)[0])
    except ValueError:
        raise IdentityUnknown("raw is not hex") from None
    field = value[_GLUCOSE_BASE_TIME_AT:_GLUCOSE_BASE_TIME_AT + DATE_TIME_SIZE]
    if len(field) < DATE_TIME_SIZE:
        raise IdentityUnknown(f"glucose raw of {len(value)} bytes holds no base time")
    year, (month, day, hours, minutes, seconds) = field[0] | field[1] << 8, field[2:]
    if year >= 1582 and month and day and hours < 24 and minutes < 60 and seconds < 60:
        try:  # the common case, without the decoder's machinery (ingest runs this per message)
            return datetime(year, month, day, hours, minutes, seconds)
        except ValueError:
            pass
    try:  # unknown (year, month or day 0) or invalid: the gateway's own Date Time reader decides
        return parse_date_time(field).timestamp
    except DecodeError as exc:
        raise IdentityUnknown(f"glucose raw has an invalid base time ({exc})") from None


def _stamped_identity(raw_hex: str, received_at: str, timestamp_flag: int) -> str:
    try:
        has_timestamp = bool(bytes.fromhex(raw_hex[:2])[0] & timestamp_flag)
    except (ValueError, IndexError):
        raise IdentityUnknown("raw is not hex") from None
    return bp_identity(raw_hex, has_timestamp, received_at)


def spo2_identity(raw_hex: str, received_at: str) -> str:
    """A spot-check (0x2A5E) is its bytes when they carry a time stamp (flag b0), even one from an
    unset clock, so a re-downloaded stored record keeps its id; otherwise the receive time joins in."""
    return _stamped_identity(raw_hex, received_at, 0x01)


def weight_identity(raw_hex: str, received_at: str) -> str:
    """A weighing (0x2A9D) is its bytes when they carry a time stamp (flag b1), even one from a clock
    never set (1970), so a re-sent indication keeps its id; otherwise the receive time joins in."""
    return _stamped_identity(raw_hex, received_at, 0x02)


UNTRUSTED_BEFORE: Final = datetime(2015, 1, 1)
"""A device time stamp before this (Xiaomi's 1970, a PLX clock counting from 2000) comes from a clock
never set: the gateway uses the receive time and says ``device_clock_not_set`` (DOMAIN-weight-plx A10.13)."""


def summary_identity(received_at: str, sample_count: int) -> str:
    """A continuous-oximetry summary: its first sample's receive time and how many samples it holds."""
    return f"continuous={received_at}|n={sample_count}"


def identity_fields(kind: str, device_time: str | None, summary: bool = False) -> tuple[str, ...]:
    """The message fields a reading's id covers (named in a mismatch's reason)."""
    if kind == KIND_GLUCOSE:
        return ("device.id", "kind", "raw", "sequence_number")
    if kind == KIND_SPO2 and summary:
        return ("device.id", "kind", "received_at", "values.sample_count")
    if kind in (KIND_SPO2, KIND_WEIGHT):
        return ("device.id", "kind", "raw", "received_at")
    if device_time is None:
        return ("device.id", "kind", "raw", "device_time", "received_at")
    return ("device.id", "kind", "raw", "device_time")


def message_id_from_contents(*, device_id: str, kind: str, raw: str, device_time: str | None,
                             received_at: str, sequence_number: int | None,
                             sample_count: int | None = None) -> str:
    """The id a reading with these fields must carry (raises :class:`IdentityUnknown`).

    Blood pressure: the cuff's bytes, plus the gateway's receive time (the ``received_at`` string as
    sent) when the cuff gave no time stamp (``device_time`` null). Glucose: the record's sequence
    number (as sent: a quirk may have derived it) and the Base Time inside ``raw``. Weight:
    :func:`weight_identity`. SpO2: :func:`summary_identity` for a continuous summary (``sample_count`` set),
    else :func:`spo2_identity`.
    """
    if kind == KIND_BLOOD_PRESSURE:
        return message_id(device_id, kind, bp_identity(raw, device_time is not None, received_at))
    if kind == KIND_WEIGHT:
        return message_id(device_id, kind, weight_identity(raw, received_at))
    if kind == KIND_SPO2:
        if sample_count is not None:
            return message_id(device_id, kind, summary_identity(received_at, sample_count))
        return message_id(device_id, kind, spo2_identity(raw, received_at))
    if kind == KIND_GLUCOSE:
        if sequence_number is None:
            raise IdentityUnknown("a glucose reading needs its sequence_number")
        return message_id(device_id, kind, glucose_identity(sequence_number, glucose_base_time(raw)))
    raise IdentityUnknown(f"no identity recipe for kind {kind!r}")
