"""Charts the console draws on the server as SVG (no script, nothing from another host): the
geometry of a stacked bar chart with a readable scale, and the shades of a week-by-hour grid.
The templates draw them; each chart's numbers are also shown as a table beside it."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

WIDTH = 720  # the viewBox's width: the chart scales to the page's
PLOT_TOP, PLOT_BOTTOM, PLOT_LEFT = 12, 170, 44  # the bars' area within the viewBox
HEIGHT = 200


def nice_scale(peak: int, ticks: int = 4) -> list[int]:
    """Round values from 0 to at least `peak` for an axis (steps of 1, 2 or 5 times a power of
    ten): `nice_scale(137)` is [0, 50, 100, 150]."""
    if peak <= 0:
        return [0, 1]
    raw = peak / ticks
    power = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    step = next(n * power for n in (1, 2, 5, 10) if n * power >= raw)
    step = max(1, int(step))
    top = -(-peak // step) * step
    return list(range(0, top + 1, step))


@dataclass(frozen=True)
class Segment:
    name: str  # its series (a CSS class)
    value: int
    y: float
    height: float


@dataclass(frozen=True)
class Bar:
    x: float
    width: float
    label: str  # under the bar ("" to leave it out)
    title: str  # what a pointer or a screen reader is told
    segments: list[Segment]


@dataclass(frozen=True)
class Tick:
    value: int
    y: float


@dataclass(frozen=True)
class StackedBars:
    bars: list[Bar]
    ticks: list[Tick]
    width: int = WIDTH
    height: int = HEIGHT
    left: int = PLOT_LEFT
    bottom: int = PLOT_BOTTOM


def stacked_bars(rows: Sequence[dict[str, Any]], series: Sequence[str], label: str, every: int = 0) -> StackedBars:
    """A bar per row, stacked by `series` (its fields), with the row's `label` field under every
    `every`th bar (0: as many as fit)."""
    peak = max((sum(row[name] for name in series) for row in rows), default=0)
    scale = nice_scale(peak)
    top = scale[-1]
    span = PLOT_BOTTOM - PLOT_TOP
    step = (WIDTH - PLOT_LEFT) / max(1, len(rows))
    every = every or max(1, math.ceil(len(rows) / 16))
    bars = []
    for index, row in enumerate(rows):
        y = float(PLOT_BOTTOM)
        segments = []
        for name in series:
            height = row[name] / top * span if top else 0.0
            y -= height
            if row[name]:
                segments.append(Segment(name, row[name], round(y, 2), round(height, 2)))
        total = sum(row[name] for name in series)
        parts = ", ".join(f"{row[name]} {name.replace('_', ' ')}" for name in series if row[name])
        bars.append(
            Bar(
                x=round(PLOT_LEFT + index * step + step * 0.12, 2),
                width=round(step * 0.76, 2),
                label=str(row[label])[5:] if index % every == 0 else "",  # 2026-11-20 -> 11-20
                title=f"{row[label]}: {total} calls" + (f" ({parts})" if parts else ""),
                segments=segments,
            )
        )
    ticks = [Tick(value, round(PLOT_BOTTOM - value / top * span, 2)) for value in scale] if top else []
    return StackedBars(bars, ticks)


@dataclass(frozen=True)
class Cell:
    weekday: int
    hour: int
    calls: int
    shade: int  # 0 (none) to 5 (the busiest hour of the week)


WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def week_grid(rows: Sequence[dict[str, Any]]) -> list[list[Cell]]:
    """Seven rows (Monday first) of 24 cells, shaded by calls relative to the busiest."""
    peak = max((row["calls"] for row in rows), default=0)
    grid = [[Cell(day, hour, 0, 0) for hour in range(24)] for day in range(7)]
    for row in rows:
        shade = math.ceil(row["calls"] / peak * 5) if peak and row["calls"] else 0
        grid[row["weekday"]][row["hour"]] = Cell(row["weekday"], row["hour"], row["calls"], shade)
    return grid
