"""The chaos run's parts without the run: ground-truth trigger, per-kind report, devices, schedule.

The trigger is what the end-of-run check trusts, so it is checked against the real gateway outbox:
a continuous-oximetry summary must be told apart from a spot-check, and a rejected frame (never
published) must not count as produced.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.outbox import Outbox
from simulators.chaos import Chaos
from simulators.chaos_accounting import prepare_outbox, read_produced
from simulators.chaos_config import ChaosConfig
from simulators.chaos_report import ChaosReport, KindCount
from simulators.chaos_schedule import FAULT_KINDS, chosen_kinds


def _payload(sample_count: int | None) -> str:
    return json.dumps({"values": {"spo2_pct": 97.0, "sample_count": sample_count}})


def test_trigger_records_each_committed_message_with_its_accounting_kind(tmp_path: Path) -> None:
    path = tmp_path / "gw.sqlite3"
    prepare_outbox(path)
    box = Outbox(path, 100)
    try:
        box.add("m-bp", "blood_pressure", "CH-BP", json.dumps({"values": {}}))
        box.add("m-w", "weight", "CH-WS", json.dumps({"values": {"weight_kg": 80.1}}))
        box.add("m-spot", "spo2", "CH-OX", _payload(None))
        box.add("m-min", "spo2", "CH-OX", _payload(42))
        box.add_rejected("CH-OX", "2A5F", "short frame", "00", "2026-01-01T00:00:00Z")
    finally:
        box.close()
    produced, waiting = read_produced([path])
    assert produced == {"m-bp": "blood_pressure", "m-w": "weight", "m-spot": "spo2", "m-min": "spo2/minute"}
    assert waiting == 4  # the rejected frame is kept, but is not waiting to be sent


def test_table_prints_every_kind_in_order() -> None:
    report = ChaosReport(by_kind={"spo2/minute": KindCount(3, 3, 0, 0), "glucose": KindCount(5, 4, 1, 1)})
    lines = report.table().splitlines()
    kinds = [ln.split(":")[0].strip() for ln in lines if "produced / stored / duplicated / lost" in ln]
    assert kinds == ["glucose", "spo2/minute"]
    assert any(ln.endswith("5 / 4 / 1 / 1") for ln in lines)


@pytest.mark.parametrize(("every", "vitals_patients"), [(0, 0), (1, 4), (2, 2), (3, 2)])
def test_every_nth_patient_gets_a_scale_and_an_oximeter(tmp_path: Path, every: int,
                                                         vitals_patients: int) -> None:
    chaos = Chaos(ChaosConfig(gateways=1, vitals_every=every), tmp_path)
    kinds = [wire for _sim, _serial, wire in chaos._devices(0)]
    assert kinds.count("blood_pressure") == kinds.count("glucose") == 4
    assert kinds.count("weight") == kinds.count("spo2") == vitals_patients


def test_same_seed_plans_the_same_faults(tmp_path: Path) -> None:
    def plan(seed: int) -> list[tuple[float, str]]:
        chaos = Chaos(ChaosConfig(gateways=5, fault_seconds=30.0, seed=seed), tmp_path)
        chaos.schedule.plan(0.0)
        return sorted((round(when, 6), label) for when, _, label, _ in chaos.schedule.events)

    first = plan(3)
    assert first == plan(3) and first != plan(4)
    assert {label for _, label in first[:len(FAULT_KINDS)]} == set(FAULT_KINDS)


def test_unknown_fault_kind_is_named() -> None:
    assert chosen_kinds(" broker_kill ,") == ["broker_kill"]
    with pytest.raises(ValueError, match="broker_explode"):
        chosen_kinds("broker_kill,broker_explode")
