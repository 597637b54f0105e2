"""Named scenarios: which simulated devices a gateway sees and what they have stored.

``SIM_DEVICES`` names the devices (``bp:SIM-BP-0001,glucose:SIM-GL-0001``); the scenario decides
their behaviour. Everything is seeded (``random.Random(f"{seed}:{serial}")``) and the stored records
are anchored at ``epoch`` (device-local wall clock), so two builds with the same arguments produce
the same bytes: a test can rebuild the devices a gateway subprocess simulates and know exactly
which measurements must reach the broker.

- ``normal``: cuffs in mmHg with time stamps, pulse, user and status; meters in kg/L with
  time offsets and meal context on some records; clocks a few seconds off.
- ``demo``: each cuff holds one normal reading and gives a new one every ``interval_s``; the
  gateway's first cuff also holds a hypertensive-crisis reading (186/124) taken at start-up, so it
  arrives within the first seconds. Meters give a reading every ``2 × interval_s``.
- ``quirks``: models with known deviations (gateway/quirks.py): the first cuff is a Beurer BM85
  (big-endian pulse/status, unflagged user ID), the second an OMRON HEM-7342T that never
  advertises after pairing (it must be polled); the first meter is a Roche Accu-Chek Guide (clock
  on Date Time 0x2A08, notifies a reading taken while connected), the second a TaiDoc whose
  sequence numbers are reversed and which has no clock access.
- Scales (``scale:``) and oximeters (``oximeter:``): ``normal`` scales in kg with time stamp, user,
  BMI and height; oximeters with stored spot-checks (RACP) and a short continuous recording.
  ``demo``: the first scale gains 2.4 kg in a day, the first oximeter holds two low spot-checks
  (87 % then 86 %, ten minutes apart) and a desaturation in its continuous data.  ``faults``:
  pound scales with an unsuccessful weighing (0xFFFF) and a frame whose BMI comes without height;
  oximeters whose clock was never set, with a finger-out reading, demonstration data, a 16-bit
  device status and finger-out samples.
  ``quirks``: a Xiaomi-like scale with a vendor bit in an RFU position and no clock access.
- ``faults``: everything a field gateway meets at once: kPa cuffs that indicate every reading
  twice and drop the link after two; mol/L meters that drop mid-RACP download, with a control
  solution test, a "HI" result, a truncated frame and a failed (NaN) cuff reading; clocks several
  minutes off, one of them read-only.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from simulators.devices.bp_cuff import BpCuff
from simulators.devices.glucose_meter import MEAL_POSTPRANDIAL, MEAL_PREPRANDIAL, GlucoseMeter
from simulators.devices.pulse_oximeter import STATUS_DEMONSTRATION, PulseOximeter
from simulators.devices.radio import SimDevice, SimRecord, SimulatedRadio
from simulators.devices.weight_scale import WeightScale

DEVICE_KINDS = ("bp", "glucose", "scale", "oximeter")


@dataclass(frozen=True)
class DeviceSpec:
    kind: str  # "bp" | "glucose" | "scale" | "oximeter"
    serial: str


def parse_devices_spec(spec: str) -> list[DeviceSpec]:
    """``bp:SIM-BP-0001,glucose:SIM-GL-0001`` → device specs; raises ValueError naming the bad item."""
    out: list[DeviceSpec] = []
    for item in (s.strip() for s in spec.split(",")):
        if not item:
            continue
        kind, sep, serial = item.partition(":")
        if not sep or kind not in DEVICE_KINDS or not serial:
            kinds = " or ".join(f"{k}:<serial>" for k in DEVICE_KINDS)
            raise ValueError(f"bad simulated device {item!r}: expected {kinds}")
        out.append(DeviceSpec(kind, serial))
    return out


@dataclass(frozen=True)
class Build:
    """What every scenario needs to build a device."""

    index: int  # position among devices of the same kind
    serial: str
    zone: ZoneInfo
    epoch: datetime  # device-local anchor for stored records
    interval_s: float
    rng: random.Random


def _cuff(b: Build, **kw: object) -> BpCuff:
    return BpCuff(serial=b.serial, manufacturer="rpmflow-sim", model="SIM-BP-1", zone=b.zone, rng=b.rng,
                  **kw)  # type: ignore[arg-type]


def _meter(b: Build, **kw: object) -> GlucoseMeter:
    return GlucoseMeter(serial=b.serial, manufacturer="rpmflow-sim", model="SIM-GL-1", zone=b.zone,
                        rng=b.rng, **kw)  # type: ignore[arg-type]


def _normal_bp(b: Build) -> SimDevice:
    cuff = _cuff(b, clock_drift_s=b.rng.uniform(-5, 5), interval_s=b.interval_s)
    for i in range(4):
        cuff.store_normal(when=b.epoch - timedelta(hours=3 * (4 - i), minutes=b.index))
    return cuff


def _normal_glucose(b: Build) -> SimDevice:
    meter = _meter(b, clock_drift_s=b.rng.uniform(-5, 5), interval_s=b.interval_s,
                   next_seq=b.rng.randint(1, 500))
    for i in range(6):
        meter.store(b.rng.randint(85, 170), when=b.epoch - timedelta(hours=4 * (6 - i), minutes=b.index),
                    meal=(MEAL_PREPRANDIAL, None, MEAL_POSTPRANDIAL)[i % 3])
    return meter


def _demo_bp(b: Build) -> SimDevice:
    cuff = _cuff(b, interval_s=b.interval_s)
    cuff.store_normal(when=cuff.local_now() - timedelta(hours=2))
    if b.index == 0:
        cuff.store(186, 124, pulse=96, status=0x0004)  # hypertensive crisis, now, irregular pulse
    return cuff


def _demo_glucose(b: Build) -> SimDevice:
    meter = _meter(b, interval_s=2 * b.interval_s, next_seq=1)
    now = meter.local_now()
    for i in range(3):
        meter.store(b.rng.randint(90, 150), when=now - timedelta(hours=6 * (3 - i)), meal=MEAL_PREPRANDIAL)
    return meter


def _faults_bp(b: Build) -> SimDevice:
    cuff = _cuff(b, kpa=True, duplicate_indications=True, drop_after=2, clock_drift_s=300.0,
                 cts_writable=b.index % 2 == 1, interval_s=b.interval_s)
    cuff.store_normal(when=b.epoch - timedelta(hours=5))
    cuff.store(None, None, when=b.epoch - timedelta(hours=4), pulse=None)  # device "Err": NaN/NaN
    cuff.store_corrupt()
    cuff.store_normal(when=b.epoch - timedelta(hours=3))
    cuff.store(178, 101, when=b.epoch - timedelta(hours=1), status=0x0001 | 0x0008)
    return cuff


def _faults_glucose(b: Build) -> SimDevice:
    meter = _meter(b, mol=True, drop_after=3, clock_drift_s=-400.0, interval_s=b.interval_s,
                   next_seq=200 + 50 * b.index)
    base = b.epoch - timedelta(hours=10)
    meter.store(112, when=base, meal=MEAL_PREPRANDIAL, time_offset_min=-60)
    meter.store(131, when=base + timedelta(hours=1), status=0x0001)
    meter.store(100, when=base + timedelta(hours=2), control_solution=True)
    meter.store(140, when=base + timedelta(hours=3), meal=MEAL_POSTPRANDIAL)
    meter.store_corrupt()
    meter.store_high(when=base + timedelta(hours=4))
    meter.store(96, when=base + timedelta(hours=5), time_offset_min=None)
    meter.store(154, when=base + timedelta(hours=6), meal=MEAL_POSTPRANDIAL)
    return meter


def _quirks_bp(b: Build) -> SimDevice:
    if b.index % 2 == 0:
        cuff = BpCuff(serial=b.serial, manufacturer="Beurer", model="BM85", firmware="1.04", zone=b.zone,
                      rng=b.rng, interval_s=b.interval_s, beurer_bm85=True)
    else:
        cuff = BpCuff(serial=b.serial, manufacturer="OMRON", model="HEM-7342T", firmware="2.1",
                      zone=b.zone, rng=b.rng, interval_s=b.interval_s)
    for i in range(3):
        cuff.store_normal(when=b.epoch - timedelta(hours=3 * (3 - i), minutes=b.index))
    return cuff


def _quirks_glucose(b: Build) -> SimDevice:
    if b.index % 2 == 0:
        meter = GlucoseMeter(serial=b.serial, manufacturer="Roche", model="Accu-Chek Guide", firmware="3.0",
                             zone=b.zone, rng=b.rng, interval_s=b.interval_s, clock_char=0x2A08,
                             live_push=True, clock_drift_s=200.0, next_seq=40)
    else:
        meter = GlucoseMeter(serial=b.serial, manufacturer="TaiDoc", model="Diamond Mini DM30b",
                             firmware="1.2.4", zone=b.zone, rng=b.rng, interval_s=b.interval_s, clock_char=0,
                             reversed_sequence=True)
    for i in range(4):
        meter.store(b.rng.randint(85, 170), when=b.epoch - timedelta(hours=4 * (4 - i), minutes=b.index))
    return meter


def _scale(b: Build, **kw: object) -> WeightScale:
    return WeightScale(serial=b.serial, manufacturer="rpmflow-sim", model="SIM-WS-1", zone=b.zone, rng=b.rng,
                       dry_weight_kg=round(b.rng.uniform(60, 110), 1), **kw)  # type: ignore[arg-type]


def _oximeter(b: Build, **kw: object) -> PulseOximeter:
    return PulseOximeter(serial=b.serial, manufacturer="rpmflow-sim", model="SIM-OX-1", zone=b.zone,
                         rng=b.rng, **kw)  # type: ignore[arg-type]


def _night(ox: PulseOximeter, samples: int, dip_at: int | None = None) -> None:
    """``samples`` continuous samples around 95 %, with a desaturation to 84 % at ``dip_at``."""
    for i in range(samples):
        dip = dip_at is not None and dip_at <= i < dip_at + 5
        ox.queue_continuous(84.0 if dip else float(ox.rng.randint(93, 97)), float(ox.rng.randint(55, 75)))


def _normal_scale(b: Build) -> SimDevice:
    scale = _scale(b, clock_drift_s=b.rng.uniform(-5, 5), interval_s=b.interval_s)
    for i in range(3):
        scale.store_normal(when=b.epoch - timedelta(days=2 - i, minutes=b.index))
    return scale


def _normal_oximeter(b: Build) -> SimDevice:
    ox = _oximeter(b, clock_drift_s=b.rng.uniform(-5, 5), interval_s=b.interval_s)
    for i in range(3):
        ox.store_normal(when=b.epoch - timedelta(hours=8 * (3 - i), minutes=b.index))
    _night(ox, 30)
    return ox


def _demo_scale(b: Build) -> SimDevice:
    scale = _scale(b, interval_s=4 * b.interval_s)
    now = scale.local_now()
    scale.store(scale.dry_weight_kg, when=now - timedelta(days=1, hours=1))
    if b.index == 0:
        scale.store(scale.dry_weight_kg + 2.4, when=now)  # +2.4 kg in a day: heart-failure weight gain
    return scale


def _demo_oximeter(b: Build) -> SimDevice:
    ox = _oximeter(b, interval_s=4 * b.interval_s)
    now = ox.local_now()
    ox.store(96.0, 68.0, when=now - timedelta(hours=3))
    if b.index == 0:  # desaturation with tachycardia, on two spot-checks ten minutes apart (spo2_low)
        ox.store(87.0, 101.0, when=now - timedelta(minutes=10))
        ox.store(86.0, 104.0, when=now)
    _night(ox, 40, dip_at=20)
    return ox


def _faults_scale(b: Build) -> SimDevice:
    scale = _scale(b, imperial=True, clock_drift_s=300.0, cts_writable=b.index % 2 == 1,
                   interval_s=b.interval_s)
    scale.store_normal(when=b.epoch - timedelta(hours=5))
    scale.store(None, when=b.epoch - timedelta(hours=4))  # 0xFFFF: measurement unsuccessful
    scale.pending.append(SimRecord("corrupt", bytes.fromhex("0c983a01f500")))  # BMI without height
    scale.produced.append(scale.pending[-1])
    scale.store_normal(when=b.epoch - timedelta(hours=3))
    return scale


def _faults_oximeter(b: Build) -> SimDevice:
    ox = _oximeter(b, clock_not_set=True, drop_after=None, interval_s=b.interval_s)
    ox.store(95.0, 71.0, when=b.epoch - timedelta(hours=6))
    ox.store(None, None, when=b.epoch - timedelta(hours=5))  # finger out: NaN/NaN
    demo = ox.store(99.0, 60.0, when=b.epoch - timedelta(hours=4), extra_status=STATUS_DEMONSTRATION)
    demo.kind = "demonstration"  # never patient data: must not reach the broker
    ox.records.append(SimRecord("corrupt", bytes.fromhex("0462004800" + "0000")))  # 16-bit device status
    ox.produced.append(ox.records[-1])
    for i in range(20):
        finger_out = i % 4 == 0
        ox.queue_continuous(None if finger_out else 94.0, None if finger_out else 70.0)
    return ox


def _quirks_scale(b: Build) -> SimDevice:
    """A Xiaomi-like scale: vendor bits 5 (stabilised) in an RFU position, clock at 1970 when unset."""
    scale = WeightScale(serial=b.serial, manufacturer="Xiaomi", model="XMTZC04HM", zone=b.zone, rng=b.rng,
                        interval_s=b.interval_s, user_id=None, height_m=None, clock_char=0)
    for i in range(2):
        when = b.epoch - timedelta(hours=6 * (2 - i))
        scale.store(scale.dry_weight_kg + 0.2 * i, when=when, vendor_bits=0x20)
    return scale


Factory = Callable[[Build], SimDevice]
SCENARIOS: dict[str, dict[str, Factory]] = {
    "normal": {"bp": _normal_bp, "glucose": _normal_glucose, "scale": _normal_scale,
               "oximeter": _normal_oximeter},
    "demo": {"bp": _demo_bp, "glucose": _demo_glucose, "scale": _demo_scale, "oximeter": _demo_oximeter},
    "faults": {"bp": _faults_bp, "glucose": _faults_glucose, "scale": _faults_scale,
               "oximeter": _faults_oximeter},
    "quirks": {"bp": _quirks_bp, "glucose": _quirks_glucose, "scale": _quirks_scale,
               "oximeter": _normal_oximeter},
}


def default_epoch(zone: ZoneInfo) -> datetime:
    """The current local hour: stable across a gateway restart within the hour."""
    return datetime.now(zone).replace(tzinfo=None, minute=0, second=0, microsecond=0)


def build_devices(spec: str, scenario: str = "normal", seed: int = 1, interval_s: float = 0.0,
                  tz: str = "UTC", epoch: datetime | None = None) -> list[SimDevice]:
    """The devices of ``spec`` behaving as ``scenario`` (deterministic for equal arguments)."""
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; known: {', '.join(sorted(SCENARIOS))}")
    zone = ZoneInfo(tz)
    anchor = epoch or default_epoch(zone)
    counters: dict[str, int] = {}
    devices: list[SimDevice] = []
    for d in parse_devices_spec(spec):
        index = counters.get(d.kind, 0)
        counters[d.kind] = index + 1
        build = Build(index, d.serial, zone, anchor, interval_s, random.Random(f"{seed}:{d.serial}"))
        devices.append(SCENARIOS[scenario][d.kind](build))
    return devices


def build_radio(spec: str, scenario: str = "normal", seed: int = 1, interval_s: float = 0.0,
                tz: str = "UTC", epoch: datetime | None = None) -> SimulatedRadio:
    return SimulatedRadio(build_devices(spec, scenario, seed, interval_s, tz, epoch))
