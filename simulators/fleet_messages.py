"""The fleet's messages, built pure: virtual devices and one valid reading each, per the wire contract.

Apart from the publishers (fleet.py) because the benchmarks and the demo history build readings
without any MQTT client.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from gateway.contract import (
    KIND_BLOOD_PRESSURE,
    KIND_SPO2,
    KIND_WEIGHT,
    READING_SCHEMA,
    bp_identity,
    glucose_identity,
    message_id,
    spo2_identity,
)


def sfloat(mantissa: int, exponent: int = 0) -> bytes:
    return (((exponent & 0xF) << 12) | (mantissa & 0x0FFF)).to_bytes(2, "little")


def date_time(t: datetime) -> bytes:
    return t.year.to_bytes(2, "little") + bytes([t.month, t.day, t.hour, t.minute, t.second])


def _iso_z(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class VirtualDevice:
    device_id: str
    kind: str
    model: str
    rng: random.Random
    seq: int = 0
    hi: int = 0  # latest measured second used (epoch s)
    lo: int = 0  # earliest measured second used

    def next_time(self, now: datetime) -> datetime:
        """A measurement second this device has not used yet, never in the future."""
        s = int(now.timestamp())
        if self.hi == 0 or s > self.hi:
            self.hi = s
            self.lo = self.lo or s
        else:
            self.lo -= 1
            s = self.lo
        return datetime.fromtimestamp(s, UTC)


def build_reading(gateway_id: str, dev: VirtualDevice, measured_at: datetime,
                  received_at: datetime) -> tuple[str, bytes]:
    """(message_id, payload bytes) of one valid reading, per the wire contract."""
    rng = dev.rng
    device_time = measured_at.replace(tzinfo=None).isoformat()
    base: dict[str, Any] = {
        "schema": READING_SCHEMA,
        "gateway_id": gateway_id,
        "device": {"id": dev.device_id, "manufacturer": "SIMULATED", "model": dev.model,
                   "serial": dev.device_id, "firmware": "1.0", "address": None},
        "kind": dev.kind,
        "measured_at": _iso_z(measured_at),
        "device_time": device_time,
        "clock_offset_s": 0.0,
        "received_at": _iso_z(received_at),
        "original": None,
        "status": [],
        "measurement": "ok",
        "transmission": "automatic",
        "context": None,
    }
    if dev.kind == KIND_BLOOD_PRESSURE:
        dia = rng.randint(60, 100)
        sys_ = dia + rng.randint(25, 70)
        mean = round(dia + (sys_ - dia) / 3)
        pulse = rng.randint(55, 95)
        raw = (bytes([0x1E]) + sfloat(sys_) + sfloat(dia) + sfloat(mean) + date_time(measured_at)
               + sfloat(pulse) + bytes([1]) + (0).to_bytes(2, "little")).hex()
        mid = message_id(dev.device_id, dev.kind, bp_identity(raw, True, _iso_z(received_at)))
        base.update(sequence_number=None, user_id=1, raw=raw, values={
            "systolic_mmhg": float(sys_), "diastolic_mmhg": float(dia),
            "mean_arterial_mmhg": float(mean), "pulse_bpm": float(pulse)})
    elif dev.kind == KIND_WEIGHT:
        grams5 = rng.randint(11_000, 24_000)  # raw units of 0.005 kg: 55-120 kg
        raw = (bytes([0x06]) + grams5.to_bytes(2, "little") + date_time(measured_at) + bytes([1])).hex()
        mid = message_id(dev.device_id, dev.kind, bp_identity(raw, True, _iso_z(received_at)))
        base.update(sequence_number=None, user_id=1, raw=raw, values={
            "weight_kg": float(Decimal(grams5) * Decimal("0.005")), "bmi": None, "height_m": None})
    elif dev.kind == KIND_SPO2:
        spo2, pulse = rng.randint(90, 99), rng.randint(55, 100)
        raw = (bytes([0x01]) + sfloat(spo2) + sfloat(pulse) + date_time(measured_at)).hex()
        mid = message_id(dev.device_id, dev.kind, spo2_identity(raw, _iso_z(received_at)))
        base.update(sequence_number=None, user_id=None, raw=raw, values={
            "spo2_pct": float(spo2), "pulse_bpm": float(pulse), "spo2_min_pct": None, "sample_count": None})
    else:
        dev.seq = (dev.seq + 1) % 65536
        mg = rng.randint(70, 250)
        raw = (bytes([0x02]) + dev.seq.to_bytes(2, "little") + date_time(measured_at)
               + sfloat(mg, -5) + bytes([0x11])).hex()
        mid = message_id(dev.device_id, dev.kind, glucose_identity(dev.seq, measured_at.replace(tzinfo=None)))
        base.update(sequence_number=dev.seq, user_id=None, raw=raw, values={
            "glucose_mg_dl": float(mg), "sample_type": "capillary_whole_blood",
            "sample_location": "finger", "meal": None})
    base["message_id"] = mid
    return mid, json.dumps(base, separators=(",", ":")).encode()
