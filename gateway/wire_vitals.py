"""Readings of kinds ``weight`` and ``spo2`` (wire contract v1, extended compatibly).

- **weight** (0x2A9D): ``values.weight_kg`` (canonical kg, exact from the device's unit), ``bmi``
  and ``height_m`` when sent; a scale weighing in pounds keeps ``original = {"unit": "lb",
  "weight": …}`` for display.  0xFFFF "measurement unsuccessful" → ``measurement: "failed"`` with
  null values.  Identity: the raw bytes (with the receive time when the scale sent no time
  stamp).  A time stamp before 2015 (a clock never set: Xiaomi's 1970) gives ``device_time: null``
  (receive time) and the status ``device_clock_not_set``, as for an oximeter.
- **spo2** spot-check (0x2A5E): ``values.spo2_pct`` and ``pulse_bpm``; status lists the
  measurement and device/sensor status names.  A device whose clock is not set gives
  ``device_time: null`` (receive time) and the status ``device_clock_not_set``.  A status that
  says "not a reading" (unavailable, invalid, ongoing, early estimate, calibration) is a failed
  measurement.
- **spo2** continuous summary (0x2A5F, :mod:`gateway.oximetry`): ``spo2_pct`` and ``pulse_bpm``
  are the window's medians, ``spo2_min_pct`` its minimum, ``sample_count`` the samples summarised;
  measured when its first sample arrived (no time stamp in 0x2A5F); ``raw`` is the lowest sample's
  bytes.
"""

from __future__ import annotations

from datetime import datetime

from gateway import contract, wire
from gateway.gatt import MeasurementOutcome, PlxSpotCheckMeasurement, WeightMeasurement, WeightUnit
from gateway.gatt.pulse_oximeter import NOT_A_READING, NOT_PATIENT_DATA
from gateway.oximetry import OximetrySummary

__all__ = [
    "KIND_SPO2",
    "KIND_WEIGHT",
    "is_patient_data",
    "spo2_reading",
    "spo2_summary_reading",
    "weight_reading",
]

KIND_WEIGHT = contract.KIND_WEIGHT
KIND_SPO2 = contract.KIND_SPO2


def weight_reading(
    m: WeightMeasurement, *, gateway_id: str, device: wire.DeviceIdentity, timing: wire.Timing
) -> wire.JsonDict:
    """The reading for one 0x2A9D value."""
    identity = contract.weight_identity(m.raw_hex, wire.iso_utc(timing.received_at))
    device_time = _trusted(m.timestamp)
    msg = wire._envelope(gateway_id, device, KIND_WEIGHT, device_time, timing, identity)
    failed = m.outcome is MeasurementOutcome.FAILED
    original = None
    if m.unit is WeightUnit.LB and not failed:
        original = {"unit": contract.UNIT_LB, "weight": m.weight}
    msg.update(
        {
            "sequence_number": None,
            "values": {
                "weight_kg": m.weight_kg,
                "bmi": None if failed else m.bmi,
                "height_m": None if failed else m.height_m,
            },
            "original": original,
            "status": [] if device_time == m.timestamp else ["device_clock_not_set"],
            "measurement": m.outcome.value,
            "user_id": m.user_id,
            "context": None,
            "raw": m.raw_hex,
        }
    )
    return msg


def _trusted(timestamp: datetime | None) -> datetime | None:
    """The device's time stamp, or None (receive time) when it comes from a clock never set."""
    if timestamp is not None and timestamp < contract.UNTRUSTED_BEFORE:
        return None
    return timestamp


def is_patient_data(m: PlxSpotCheckMeasurement) -> bool:
    """Demonstration and testing data never reach patient data (DOMAIN-weight-plx A9.3)."""
    return not NOT_PATIENT_DATA.intersection(m.measurement_status or ())


def _spot_outcome(m: PlxSpotCheckMeasurement) -> MeasurementOutcome:
    if NOT_A_READING.intersection(m.measurement_status or ()):
        return MeasurementOutcome.FAILED
    return m.outcome


def spo2_reading(
    m: PlxSpotCheckMeasurement, *, gateway_id: str, device: wire.DeviceIdentity, timing: wire.Timing
) -> wire.JsonDict:
    """The reading for one 0x2A5E value (callers drop demonstration/testing data first)."""
    identity = contract.spo2_identity(m.raw_hex, wire.iso_utc(timing.received_at))
    device_time = None if m.device_clock_not_set else _trusted(m.timestamp)
    msg = wire._envelope(gateway_id, device, KIND_SPO2, device_time, timing, identity)
    outcome = _spot_outcome(m)
    ok = outcome is MeasurementOutcome.OK
    status = [*(m.measurement_status or ()), *(m.device_and_sensor_status or ())]
    if m.device_clock_not_set or device_time != m.timestamp:
        status.append("device_clock_not_set")
    msg.update(
        {
            "sequence_number": None,
            "values": {
                "spo2_pct": m.spo2.value if ok else None,
                "pulse_bpm": m.pulse_rate.value if ok else None,
                "spo2_min_pct": None,
                "sample_count": None,
            },
            "original": None,
            "status": status,
            "measurement": outcome.value,
            "user_id": None,
            "context": None,
            "raw": m.raw_hex,
        }
    )
    return msg


def spo2_summary_reading(
    s: OximetrySummary, *, gateway_id: str, device: wire.DeviceIdentity, timing: wire.Timing
) -> wire.JsonDict:
    """The reading for one window of continuous oximetry (``timing.received_at``: its first sample)."""
    identity = contract.summary_identity(wire.iso_utc(timing.received_at), s.samples)
    msg = wire._envelope(gateway_id, device, KIND_SPO2, None, timing, identity)
    msg.update(
        {
            "sequence_number": None,
            "values": {
                "spo2_pct": s.spo2_median,
                "pulse_bpm": s.pulse_median,
                "spo2_min_pct": s.spo2_min,
                "sample_count": s.samples,
            },
            "original": None,
            "status": list(s.device_status),
            "measurement": MeasurementOutcome.OK.value,
            "user_id": None,
            "context": None,
            "raw": s.raw_hex,
        }
    )
    return msg
