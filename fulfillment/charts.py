"""Small charts drawn on the server as SVG: coordinates computed here, the template writes the elements."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

WIDTH, HEIGHT, PAD = 520, 80, 3


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    day: date
    value: int


@dataclass(frozen=True)
class Sparkline:
    points: str  # the polyline's "x,y x,y ..." attribute
    bars: list[Bar]
    maximum: int
    total: int
    width: int = WIDTH
    height: int = HEIGHT

    @property
    def has_points(self) -> bool:
        return bool(self.points)


def sparkline(days: list[date], values: list[int]) -> Sparkline:
    """A line over the daily values, with a bar per day (each bar's title tells its day and value)."""
    maximum = max(values, default=0)
    count = len(values)
    if not count:
        return Sparkline(points="", bars=[], maximum=0, total=0)
    drawable_height = HEIGHT - 2 * PAD
    step = (WIDTH - 2 * PAD) / max(count - 1, 1)
    bar_width = max((WIDTH - 2 * PAD) / count - 1, 1)

    def y_of(value: int) -> float:
        return round(HEIGHT - PAD - (drawable_height * value / maximum if maximum else 0), 1)

    points = " ".join(f"{round(PAD + index * step, 1)},{y_of(value)}" for index, value in enumerate(values))
    if count == 1:  # one day: a flat line across, so the chart still shows something
        points = f"{PAD},{y_of(values[0])} {WIDTH - PAD},{y_of(values[0])}"
    bars = [
        Bar(
            x=round(PAD + index * (WIDTH - 2 * PAD) / count, 1),
            y=y_of(value),
            width=round(bar_width, 1),
            height=round(HEIGHT - PAD - y_of(value), 1),
            day=day,
            value=value,
        )
        for index, (day, value) in enumerate(zip(days, values, strict=True))
    ]
    return Sparkline(points=points, bars=bars, maximum=maximum, total=sum(values))
