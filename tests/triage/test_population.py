"""The simulated population is deterministic and its ground truth matches its readings."""

from __future__ import annotations

from simulators.population import generate
from simulators.population_model import RISE_DAYS


def test_same_seed_same_population() -> None:
    a, b = generate(30, 20, seed=5), generate(30, 20, seed=5)
    ra, rb = list(a.readings()), list(b.readings())
    assert ra == rb and a.events == b.events
    assert list(generate(30, 20, seed=6).readings()) != ra


def test_rows_have_the_readings_table_shape() -> None:
    pop = generate(20, 10, seed=2)
    row = next(pop.readings())
    for col in ("message_id", "gateway_id", "device_id", "patient_id", "kind", "measured_at", "received_at",
                "quality", "measurement", "transmission", "device_status", "raw_hex", "payload"):
        assert col in row
    assert row["measured_at"].tzinfo is not None
    bytes.fromhex(row["raw_hex"])


def test_injected_events_produce_readings() -> None:
    pop = generate(300, 40, seed=9)
    rows = list(pop.readings())
    for e in pop.events:
        if e.event in ("hypo_level2", "hypo_level1", "meter_lo") or e.event.startswith("bp_crisis"):
            assert any(r["patient_id"] == e.patient_id and r["measured_at"] == e.start for r in rows), e


def test_gradual_rise_ground_truth_is_visible_in_the_data() -> None:
    # A rise the readings cannot show (cut by the end of the data or by a drop-out) is no event.
    days = 60
    pop = generate(400, days, seed=7)
    profiles = {p.patient_id: p for p in pop.profiles}
    rises = [e for e in pop.events if e.event == "bp_gradual_rise"]
    assert rises
    for e in rises:
        prof = profiles[e.patient_id]
        assert prof.rise_start is not None
        assert (e.end - pop.start).days == prof.rise_start + RISE_DAYS <= days
        assert prof.dropout_day is None or prof.dropout_day >= prof.rise_start + RISE_DAYS
    flagged = {e.patient_id for e in rises}
    assert all(p.rise_start is None for p in pop.profiles if p.patient_id not in flagged)
