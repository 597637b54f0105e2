"""Server-rendered SVG time-series charts (no JavaScript, no third-party code).

Pure: takes points and thresholds, returns markup. Every text that reaches the SVG goes through
``markupsafe.escape``. Colours are presentation attributes, so a strict CSP (no inline styles) holds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from markupsafe import Markup, escape


@dataclass(frozen=True)
class Point:
    at: datetime
    value: float
    flagged: bool = False
    quality: str = "valid"  # valid | quarantined (failed readings carry no value and are not plotted)


@dataclass(frozen=True)
class Series:
    name: str
    color: str
    points: Sequence[Point]


@dataclass(frozen=True)
class Threshold:
    value: float
    label: str
    color: str = "#b45309"


@dataclass(frozen=True)
class Box:
    width: int = 720
    height: int = 240
    left: int = 48
    right: int = 110
    top: int = 24
    bottom: int = 30

    @property
    def plot_w(self) -> float:
        return float(self.width - self.left - self.right)

    @property
    def plot_h(self) -> float:
        return float(self.height - self.top - self.bottom)


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering [lo, hi] (steps of 1, 2 or 5 × 10^k)."""
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / max(count, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    first = math.floor(lo / step) * step
    last = math.ceil(hi / step) * step
    count_ = round((last - first) / step)
    ticks = [round(first + i * step, 6) for i in range(count_ + 1)]
    return ticks


def _fmt(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".")


def line_chart(
    *,
    title: str,
    unit: str,
    series: Sequence[Series],
    thresholds: Sequence[Threshold],
    start: datetime,
    end: datetime,
    box: Box | None = None,
) -> Markup:
    """An SVG with one polyline per series, dashed threshold lines and flagged readings ringed."""
    b = box or Box()
    values = [p.value for s in series for p in s.points] + [t.value for t in thresholds]
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    pad = max((hi - lo) * 0.08, 1.0)
    ticks = nice_ticks(lo - pad, hi + pad)
    y_lo, y_hi = ticks[0], ticks[-1]
    if y_hi <= y_lo:
        y_hi = y_lo + 1.0
    span = max((end - start).total_seconds(), 1.0)

    def x(at: datetime) -> float:
        frac = min(max((at - start).total_seconds() / span, 0.0), 1.0)
        return b.left + frac * b.plot_w

    def y(v: float) -> float:
        return b.top + (1.0 - (v - y_lo) / (y_hi - y_lo)) * b.plot_h

    label = f"{title} ({unit}), {start:%Y-%m-%d} to {end:%Y-%m-%d}"
    out: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {b.width} {b.height}"'
        f' width="{b.width}" height="{b.height}" role="img" aria-label="{escape(label)}">',
        f"<title>{escape(label)}</title>",
        f'<text x="{b.left}" y="14" font-size="12" font-weight="bold" fill="#111">'
        f"{escape(title)} ({escape(unit)})</text>",
        f'<rect x="{b.left}" y="{b.top}" width="{b.plot_w:.1f}" height="{b.plot_h:.1f}"'
        ' fill="#fff" stroke="#ccc"/>',
    ]
    for t in ticks:
        yy = y(t)
        out.append(
            f'<line x1="{b.left}" x2="{b.left + b.plot_w:.1f}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="#eee"/>'
            f'<text x="{b.left - 4}" y="{yy + 4:.1f}" font-size="10" text-anchor="end" fill="#555">'
            f"{_fmt(t)}</text>"
        )
    days = max(int(span // 86400), 1)
    step_days = max(days // 6, 1)
    d = start
    while d <= end:
        xx = x(d)
        out.append(
            f'<line x1="{xx:.1f}" x2="{xx:.1f}" y1="{b.top}" y2="{b.top + b.plot_h:.1f}" stroke="#f3f3f3"/>'
            f'<text x="{xx:.1f}" y="{b.height - 10}" font-size="10" text-anchor="middle" fill="#555">'
            f"{d:%m-%d}</text>"
        )
        d += timedelta(days=step_days)
    for th in thresholds:
        yy = y(th.value)
        out.append(
            f'<line class="threshold" x1="{b.left}" x2="{b.left + b.plot_w:.1f}" y1="{yy:.1f}" y2="{yy:.1f}"'
            f' stroke="{escape(th.color)}" stroke-dasharray="5,4"/>'
            f'<text x="{b.left + b.plot_w + 4:.1f}" y="{yy + 4:.1f}" font-size="10"'
            f' fill="{escape(th.color)}">{escape(th.label)} {_fmt(th.value)}</text>'
        )
    for s in series:
        pts = sorted(s.points, key=lambda p: p.at)
        valid = [p for p in pts if p.quality == "valid"]
        if len(valid) > 1:
            coords = " ".join(f"{x(p.at):.1f},{y(p.value):.1f}" for p in valid)
            out.append(
                f'<polyline points="{coords}" fill="none" stroke="{escape(s.color)}" stroke-width="1.5"/>'
            )
        for p in pts:
            tip = f"{s.name} {_fmt(p.value)} {unit} at {p.at:%Y-%m-%d %H:%M} UTC"
            if p.quality != "valid":
                tip += f" ({p.quality})"
                out.append(
                    f'<rect class="quarantined" x="{x(p.at) - 3:.1f}" y="{y(p.value) - 3:.1f}" width="6"'
                    f' height="6" fill="none" stroke="#888"><title>{escape(tip)}</title></rect>'
                )
                continue
            if p.flagged:
                tip += " (flagged)"
                out.append(
                    f'<circle class="flagged" cx="{x(p.at):.1f}" cy="{y(p.value):.1f}" r="6" fill="none"'
                    f' stroke="#dc2626" stroke-width="2"><title>{escape(tip)}</title></circle>'
                )
            out.append(
                f'<circle cx="{x(p.at):.1f}" cy="{y(p.value):.1f}" r="2.5" fill="{escape(s.color)}">'
                f"<title>{escape(tip)}</title></circle>"
            )
    legend_y = b.top + b.plot_h + 26
    lx = float(b.left + 60)
    for s in series:
        out.append(
            f'<circle cx="{lx:.1f}" cy="{legend_y - 4}" r="4" fill="{escape(s.color)}"/>'
            f'<text x="{lx + 8:.1f}" y="{legend_y}" font-size="10" fill="#333">{escape(s.name)}</text>'
        )
        lx += 90
    if not any(s.points for s in series):
        out.append(
            f'<text x="{b.left + b.plot_w / 2:.1f}" y="{b.top + b.plot_h / 2:.1f}" font-size="12"'
            ' text-anchor="middle" fill="#777">no readings in this period</text>'
        )
    out.append("</svg>")
    return Markup("".join(out))  # noqa: S704 - every interpolated text above is escaped
