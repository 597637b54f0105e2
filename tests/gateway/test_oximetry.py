"""The continuous-oximetry summariser: per-window median and minimum, unusable samples left out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.gatt import parse_plx_continuous_measurement
from gateway.oximetry import ContinuousSummariser, OximetrySummary

T0 = datetime(2026, 3, 15, 2, 0, 0, tzinfo=UTC)


def sample(spo2: int, pulse: int, status: str | None = None) -> bytes:
    """A 0x2A5F frame by hand: flags, SpO2 and PR as SFLOAT exponent 0, optional status (flag b2)."""
    frame = bytes([0x04 if status else 0x00]) + spo2.to_bytes(2, "little") + pulse.to_bytes(2, "little")
    return frame + (bytes.fromhex(status) if status else b"")


def feed(
    s: ContinuousSummariser, frames: list[bytes], start: datetime, step_s: float = 1.0
) -> list[OximetrySummary]:
    out: list[OximetrySummary] = []
    for i, frame in enumerate(frames):
        out += s.add(parse_plx_continuous_measurement(frame), start + timedelta(seconds=i * step_s))
    return out


def test_one_minute_of_samples_is_one_summary() -> None:
    s = ContinuousSummariser(60)
    values = [95, 96, 94, 97, 85, 95]
    assert feed(s, [sample(v, 60 + i) for i, v in enumerate(values)], T0) == []
    (summary,) = s.flush()
    assert (summary.spo2_median, summary.spo2_min, summary.samples, summary.excluded) == (95.0, 85.0, 6, 0)
    assert summary.pulse_median == 62.5
    assert summary.window_start == T0
    assert summary.raw_hex == sample(85, 64).hex()  # the lowest sample's bytes


def test_windows_close_at_the_boundary() -> None:
    s = ContinuousSummariser(60)
    closed = feed(s, [sample(95, 60)] * 130, T0)  # 130 s at 1 Hz: two closed windows, one open
    assert [c.samples for c in closed] == [60, 60]
    assert [c.window_start for c in closed] == [T0, T0 + timedelta(seconds=60)]
    (last,) = s.flush()
    assert last.samples == 10
    assert s.flush() == []


@pytest.mark.parametrize(
    "frame",
    [
        bytes.fromhex("00ff07ff07"),  # NaN / NaN
        bytes.fromhex("00fe074800"),  # +INF SpO2
        sample(95, 60, "0020"),  # measurement unavailable (bit 13)
        sample(95, 60, "0080"),  # invalid (bit 15)
        sample(95, 60, "2000"),  # measurement ongoing (bit 5)
        sample(95, 60, "0004"),  # demonstration (bit 10)
        sample(95, 60, "0040"),  # questionable (bit 14)
    ],
)
def test_unusable_samples_are_counted_but_left_out(frame: bytes) -> None:
    s = ContinuousSummariser(60)
    feed(s, [sample(97, 70), frame, sample(97, 70)], T0)
    (summary,) = s.flush()
    assert (summary.samples, summary.excluded, summary.spo2_min) == (2, 1, 97.0)


def test_a_window_of_only_unusable_samples_publishes_nothing() -> None:
    s = ContinuousSummariser(60)
    feed(s, [bytes.fromhex("00ff07ff07")] * 5, T0)
    assert s.flush() == []
    assert s.empty_windows == 1


def test_window_must_be_positive() -> None:
    with pytest.raises(ValueError, match="window_s"):
        ContinuousSummariser(0)


def test_a_night_is_hundreds_of_readings_not_tens_of_thousands() -> None:
    s = ContinuousSummariser(60)
    closed = feed(s, [sample(95, 60)] * (8 * 3600), T0)
    assert len(closed) + len(s.flush()) == 8 * 60
