"""Server-rendered SVG time-series charts (no JavaScript, no third-party code).

Pure: takes points and thresholds, returns markup. Every text that reaches the SVG goes through
``markupsafe.escape``. Colours are presentation attributes, so a strict CSP (no inline styles) holds.
The SVG scales to its container (``viewBox``, ``width="100%"``): fixed pixel widths overflowed
phones. Labels in the right margin (thresholds, averages) are spread apart so none overlap, and
every text colour reaches 4.5:1 on white (WCAG AA).
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
    line: bool = True  # False: markers only (e.g. flagged readings over daily averages)
    average: float | None = None  # drawn as a dotted line labelled "avg"


@dataclass(frozen=True)
class Threshold:
    value: float
    label: str
    color: str = "#b45309"  # amber-700: 5.0:1 on white


@dataclass(frozen=True)
class Box:
    width: int = 640
    height: int = 260
    left: int = 40
    right: int = 128
    top: int = 24
    bottom: int = 44

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


LABEL_GAP = 13.0  # px between label baselines (font size 12)


def spread_labels(ys: Sequence[float], *, lo: float, hi: float, gap: float = LABEL_GAP) -> list[float]:
    """Label positions near ``ys`` (same order) at least ``gap`` apart, kept within [lo, hi].

    Sorted top to bottom, each label is pushed down below its predecessor; if the last one spills
    past ``hi`` the whole stack is shifted up (and clipped at ``lo`` only when it cannot fit).
    """
    order = sorted(range(len(ys)), key=lambda i: ys[i])
    placed: list[float] = []
    for i in order:
        y = max(ys[i], lo)
        if placed:
            y = max(y, placed[-1] + gap)
        placed.append(y)
    overflow = placed[-1] - hi if placed else 0.0
    if overflow > 0:
        placed = [max(y - overflow, lo + k * gap) for k, y in enumerate(placed)]
    out = [0.0] * len(ys)
    for i, y in zip(order, placed, strict=True):
        out[i] = y
    return out


def _fmt(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".")


@dataclass(frozen=True)
class _Frame:
    """The scales of one chart."""

    b: Box
    start: datetime
    span: float
    y_lo: float
    y_hi: float

    def x(self, at: datetime) -> float:
        frac = min(max((at - self.start).total_seconds() / self.span, 0.0), 1.0)
        return self.b.left + frac * self.b.plot_w

    def y(self, v: float) -> float:
        return self.b.top + (1.0 - (v - self.y_lo) / (self.y_hi - self.y_lo)) * self.b.plot_h


def _axes(f: _Frame, ticks: Sequence[float], end: datetime) -> list[str]:
    b = f.b
    out: list[str] = []
    for t in ticks:
        yy = f.y(t)
        out.append(
            f'<line x1="{b.left}" x2="{b.left + b.plot_w:.1f}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="#eee"/>'
            f'<text x="{b.left - 4}" y="{yy + 4:.1f}" font-size="12" text-anchor="end" fill="#4b5563">'
            f"{_fmt(t)}</text>"
        )
    days = max(int(f.span // 86400), 1)
    step_days = max(days // 5, 1)
    d = f.start
    while d <= end:
        xx = f.x(d)
        out.append(
            f'<line x1="{xx:.1f}" x2="{xx:.1f}" y1="{b.top}" y2="{b.top + b.plot_h:.1f}" stroke="#f3f3f3"/>'
            f'<text x="{xx:.1f}" y="{b.top + b.plot_h + 16:.1f}" font-size="12" text-anchor="middle"'
            f' fill="#4b5563">{d:%b %d}</text>'
        )
        d += timedelta(days=step_days)
    return out


def _margin_labels(f: _Frame, thresholds: Sequence[Threshold], series: Sequence[Series]) -> list[str]:
    """Dashed threshold lines, dotted average lines, and their labels spread in the right margin."""
    b = f.b
    lines: list[tuple[float, str, str, str]] = [(t.value, f"{t.label} {_fmt(t.value)}", t.color, "5,4")
                                                for t in thresholds]
    lines += [(s.average, f"{s.name.split(' (')[0]} avg {s.average:.0f}", s.color, "2,3")
              for s in series if s.average is not None]
    ys = spread_labels([f.y(v) + 4 for v, *_ in lines], lo=b.top + 8, hi=b.top + b.plot_h + 4)
    out: list[str] = []
    for (v, text, color, dash), ly in zip(lines, ys, strict=True):
        yy = f.y(v)
        cls = "threshold" if dash == "5,4" else "average"
        out.append(
            f'<line class="{cls}" x1="{b.left}" x2="{b.left + b.plot_w:.1f}" y1="{yy:.1f}" y2="{yy:.1f}"'
            f' stroke="{escape(color)}" stroke-dasharray="{dash}"/>'
            f'<text class="{cls}-label" x="{b.left + b.plot_w + 4:.1f}" y="{ly:.1f}" font-size="12"'
            f' fill="{escape(color)}">{escape(text)}</text>'
        )
    return out


def _marks(f: _Frame, s: Series, unit: str) -> list[str]:
    out: list[str] = []
    pts = sorted(s.points, key=lambda p: p.at)
    valid = [p for p in pts if p.quality == "valid"]
    if s.line and len(valid) > 1:
        coords = " ".join(f"{f.x(p.at):.1f},{f.y(p.value):.1f}" for p in valid)
        out.append(f'<polyline points="{coords}" fill="none" stroke="{escape(s.color)}" stroke-width="1.5"/>')
    for p in pts:
        cx, cy = f.x(p.at), f.y(p.value)
        tip = f"{s.name} {_fmt(p.value)} {unit} at {p.at:%Y-%m-%d %H:%M} UTC"
        if p.quality != "valid":
            out.append(
                f'<rect class="quarantined" x="{cx - 3:.1f}" y="{cy - 3:.1f}" width="6" height="6"'
                f' fill="none" stroke="#6b7280"><title>{escape(tip + f" ({p.quality})")}</title></rect>'
            )
            continue
        if p.flagged:
            tip += " (flagged)"
            out.append(
                f'<circle class="flagged" cx="{cx:.1f}" cy="{cy:.1f}" r="6" fill="none" stroke="#b91c1c"'
                f' stroke-width="2"><title>{escape(tip)}</title></circle>'
            )
        if s.line:
            out.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="2.5" fill="{escape(s.color)}">'
                       f"<title>{escape(tip)}</title></circle>")
    return out


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
    f = _Frame(b, start, max((end - start).total_seconds(), 1.0), y_lo, max(y_hi, y_lo + 1.0))
    label = f"{title} ({unit}), {start:%Y-%m-%d} to {end:%Y-%m-%d}"
    out: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {b.width} {b.height}"'
        f' width="100%" preserveAspectRatio="xMinYMin meet" role="img" aria-label="{escape(label)}">',
        f"<title>{escape(label)}</title>",
        f'<text x="{b.left}" y="15" font-size="13" font-weight="bold" fill="#111">'
        f"{escape(title)} ({escape(unit)})</text>",
        f'<rect x="{b.left}" y="{b.top}" width="{b.plot_w:.1f}" height="{b.plot_h:.1f}"'
        ' fill="#fff" stroke="#ccc"/>',
        *_axes(f, ticks, end),
        *_margin_labels(f, thresholds, series),
    ]
    for s in series:
        out.extend(_marks(f, s, unit))
    legend_y = b.height - 6
    lx = float(b.left)
    entries = [(s.name, f'fill="{escape(s.color)}"', 4) for s in series if s.points and s.line]
    if any(p.flagged for s in series for p in s.points):
        entries.append(("flagged", 'fill="none" stroke="#b91c1c" stroke-width="2"', 5))
    for name, paint, r in entries:
        out.append(
            f'<circle cx="{lx + 4:.1f}" cy="{legend_y - 4}" r="{r}" {paint}/>'
            f'<text x="{lx + 12:.1f}" y="{legend_y}" font-size="12" fill="#111">{escape(name)}</text>'
        )
        lx += 24 + 7 * len(name)
    if not any(s.points for s in series):
        out.append(
            f'<text x="{b.left + b.plot_w / 2:.1f}" y="{b.top + b.plot_h / 2:.1f}" font-size="13"'
            ' text-anchor="middle" fill="#4b5563">no readings in this period</text>'
        )
    out.append("</svg>")
    return Markup("".join(out))  # noqa: S704 - every interpolated text above is escaped


def stacked_bar(parts: Sequence[tuple[float, str, str]], *, height: int = 20) -> Markup:
    """A horizontal 100 % bar of (share 0..1, colour, label) parts, top band first (left).

    Used for glucose time in range; the shares are also printed as text beside it, so the bar is
    decoration for sighted readers and carries its own text alternative.
    """
    out: list[str] = []
    x = 0.0
    for share, color, label in parts:
        w = max(share, 0.0) * 100
        if w > 0:
            out.append(f'<rect x="{x:.2f}" y="0" width="{w:.2f}" height="{height}" fill="{escape(color)}">'
                       f"<title>{escape(label)} {share * 100:.0f} %</title></rect>")
        x += w
    alt = ", ".join(f"{label} {share * 100:.0f} %" for share, _, label in parts)
    return Markup(  # noqa: S704 - every interpolated text is escaped
        f'<svg xmlns="http://www.w3.org/2000/svg" class="bar" viewBox="0 0 100 {height}" width="100%"'
        f' height="{height}" preserveAspectRatio="none" role="img" aria-label="{escape(alt)}">'
        + "".join(out) + "</svg>"
    )
