"""Chart geometry for the console's server-rendered SVG: bars as rectangles with their
numbers, links and titles, computed here and drawn by ``templates/charts.html``.

Why not a charting library: the console's Content-Security-Policy allows styles from its own
stylesheet only (``style-src 'self'``), and the SVG of the maintained libraries we looked at
(pygal) carries inline ``<style>`` and script references; colours here come from CSS classes,
so the dark theme is the stylesheet's. Nothing in this module knows Flask: links are built by
the caller's ``href`` functions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

#: The drawing area in SVG units; the SVG scales to its container's width.
WIDTH = 720
HEIGHT = 220
SMALL_HEIGHT = 120
LEFT, RIGHT, TOP, BOTTOM = 44, 8, 8, 28


@dataclass(frozen=True)
class Series:
    """One kind of bar: its name (legend and table column), CSS class and values."""

    name: str
    css: str
    values: Sequence[float]
    href: Callable[[int], str | None] = lambda _index: None


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    css: str
    title: str
    href: str | None
    text: str = ""
    """Shown at the bar's end (horizontal bars)."""


@dataclass(frozen=True)
class Tick:
    x: float
    y: float
    label: str


@dataclass
class Chart:
    """What the template draws: bars, axis ticks and labels, and the table of numbers."""

    id: str
    title: str
    width: int
    height: int
    bars: list[Bar] = field(default_factory=list)
    y_ticks: list[Tick] = field(default_factory=list)
    x_ticks: list[Tick] = field(default_factory=list)
    legend: list[tuple[str, str]] = field(default_factory=list)
    header: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    kind: str = "columns"
    """``columns`` (time buckets, value gridlines) or ``bars`` (labelled rows)."""
    empty: bool = False
    plot_bottom: float = 0.0
    plot_left: float = LEFT


def nice_max(value: float) -> float:
    """The smallest 1, 2 or 5 times a power of ten at least ``value`` (1 for nothing)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return float(step * power)
    return float(10 * power)


def _number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.3g}"


def bucket_label(start: datetime, bucket: str) -> str:
    """A bucket's start as an axis label: the day for day buckets, else the time."""
    return start.strftime("%a %d %b") if bucket == "day" else start.strftime("%H:%M")


def column_chart(
    chart_id: str,
    title: str,
    starts: Sequence[datetime],
    bucket: str,
    series: Sequence[Series],
    *,
    stacked: bool = False,
    small: bool = False,
) -> Chart:
    """Bars per time bucket: side by side (grouped) or stacked, one colour per series."""
    height = SMALL_HEIGHT if small else HEIGHT
    chart = Chart(chart_id, title, WIDTH, height)
    chart.legend = [(s.name, s.css) for s in series]
    chart.header = ["bucket", *(s.name for s in series)]
    n = len(starts)
    totals = [sum(s.values[i] for s in series) for i in range(n)]
    tallest = (
        max(totals, default=0)
        if stacked
        else max((max(s.values, default=0) for s in series), default=0)
    )
    top = nice_max(tallest)
    chart.empty = not any(totals)
    plot_w: float = WIDTH - LEFT - RIGHT
    plot_h: float = height - TOP - BOTTOM
    chart.plot_bottom = TOP + plot_h
    slot = plot_w / max(n, 1)
    gap = min(slot * 0.2, 6)
    for i, start in enumerate(starts):
        label = f"{start.isoformat(timespec='minutes')}"
        chart.rows.append([label, *(_number(s.values[i]) for s in series)])
        x0 = LEFT + i * slot + gap / 2
        width = slot - gap
        base: float = TOP + plot_h
        for k, s in enumerate(series):
            value = s.values[i]
            if not value:
                continue
            h = plot_h * value / top
            x: float
            y: float
            if stacked:
                x, w = x0, width
                base -= h
                y = base
            else:
                w = width / len(series)
                x, y = x0 + k * w, TOP + plot_h - h
            chart.bars.append(
                Bar(x, y, w, max(h, 0.5), s.css, f"{label}: {_number(value)} {s.name}", s.href(i))
            )
    for fraction in (0, 0.5, 1):
        chart.y_ticks.append(Tick(LEFT - 6, TOP + plot_h * (1 - fraction), _number(top * fraction)))
    every = max(1, math.ceil(n / (6 if small else 12)))
    for i in range(0, n, every):
        chart.x_ticks.append(
            Tick(LEFT + (i + 0.5) * slot, height - 8, bucket_label(starts[i], bucket))
        )
    return chart


def bar_list(
    chart_id: str,
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    unit: str = "",
    extra: Sequence[tuple[str, Sequence[str]]] = (),
) -> Chart:
    """Horizontal bars, one row per label (one bar per series in it): rates, durations."""
    row_h = 22 * max(len(series), 1) + 10
    label_w = 150
    height = TOP + row_h * max(len(labels), 1) + 24
    chart = Chart(chart_id, title, WIDTH, height, plot_left=label_w, kind="bars")
    chart.legend = [(s.name, s.css) for s in series] if len(series) > 1 else []
    chart.header = ["", *(s.name for s in series), *(name for name, _ in extra)]
    top = nice_max(max((max(s.values, default=0) for s in series), default=0))
    plot_w = WIDTH - label_w - RIGHT - 60
    chart.empty = not labels
    chart.plot_bottom = height - 24
    for r, label in enumerate(labels):
        y0 = TOP + r * row_h
        chart.y_ticks.append(Tick(label_w - 8, y0 + row_h / 2, label))
        chart.rows.append(
            [label, *(_number(s.values[r]) + unit for s in series), *(v[r] for _, v in extra)]
        )
        for k, s in enumerate(series):
            value = s.values[r]
            w = plot_w * value / top
            chart.bars.append(
                Bar(
                    label_w,
                    y0 + 4 + k * 22,
                    max(w, 0.5),
                    18,
                    s.css,
                    f"{label}: {_number(value)}{unit} {s.name}",
                    s.href(r),
                    _number(value) + unit,
                )
            )
    for fraction in (0, 0.5, 1):
        chart.x_ticks.append(
            Tick(label_w + plot_w * fraction, height - 8, _number(top * fraction) + unit)
        )
    return chart
