"""Exception mining: which causes cost the team most, how they move week by week, and what people said caused them.

A cause is an exception type from one source system (the type fixes the stage). Its cost is the operator
minutes people recorded on its exceptions in the period: count × mean minutes, which is the total. Three
queries whatever the period: the groups, their weekly buckets, their recorded root causes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.db.models import Count, Sum
from django.db.models.functions import TruncWeek
from django.utils import timezone

from exceptions.models import FulfillmentException, Stage

DEFAULT_DAYS = 90
NOT_RECORDED = "not recorded"
SHOWING_DEFAULT = f"showing the last {DEFAULT_DAYS} days."


@dataclass(frozen=True)
class Period:
    start: dt.date  # first day, inclusive
    end: dt.date  # last day, inclusive
    problem: str = ""  # why the asked-for period was not used, in words

    @property
    def since(self) -> dt.datetime:
        return timezone.make_aware(dt.datetime.combine(self.start, dt.time.min))

    @property
    def until(self) -> dt.datetime:
        """The first moment after the period."""
        return timezone.make_aware(dt.datetime.combine(self.end + dt.timedelta(days=1), dt.time.min))

    def weeks(self) -> list[dt.date]:
        """The Mondays of the weeks the period touches, oldest first."""
        monday = self.start - dt.timedelta(days=self.start.weekday())
        return [monday + dt.timedelta(weeks=n) for n in range((self.end - monday).days // 7 + 1)]


def _is_date(text: str) -> bool:
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return False
    return True


def period_from(params, *, today: dt.date | None = None) -> Period:
    """The period `?from=YYYY-MM-DD&to=YYYY-MM-DD` asks for, both days included; the last 90 days when either
    is missing, not a date, or they are the wrong way round (saying so)."""
    today = today or timezone.localdate()
    default = Period(today - dt.timedelta(days=DEFAULT_DAYS - 1), today)
    raw_from, raw_to = (params.get("from") or "").strip(), (params.get("to") or "").strip()
    if not raw_from and not raw_to:
        return default
    try:
        start = dt.date.fromisoformat(raw_from) if raw_from else default.start
        end = dt.date.fromisoformat(raw_to) if raw_to else today
    except ValueError:
        bad = raw_from if raw_from and not _is_date(raw_from) else raw_to
        return Period(default.start, default.end, f"“{bad}” is not a date like 2026-01-31; {SHOWING_DEFAULT}")
    if start > end:
        return Period(default.start, default.end, f"The period starts after it ends; {SHOWING_DEFAULT}")
    return Period(start, end)


@dataclass
class Cause:
    type_id: int
    type_code: str
    type_name: str
    stage: str
    source_system: str
    count: int
    minutes: int
    share: float | None = None  # of all the period's cost, 0..1; None when no minutes were recorded at all
    cumulative_share: float | None = None  # the Pareto line: this cause and every costlier one
    weekly: list[tuple[dt.date, int, int]] = field(default_factory=list)  # (Monday, exceptions, minutes)
    root_causes: list[tuple[str, int]] = field(default_factory=list)  # (name, exceptions), most first

    @property
    def cost(self) -> int:
        """Operator minutes: count × mean minutes per exception."""
        return self.minutes

    @property
    def mean_minutes(self) -> float:
        return self.minutes / self.count if self.count else 0.0

    @property
    def stage_label(self) -> str:
        return Stage(self.stage).label if self.stage in Stage.values else self.stage

    @property
    def key(self) -> tuple[int, str]:
        return (self.type_id, self.source_system)


@dataclass
class Pareto:
    period: Period
    causes: list[Cause]
    weeks: list[dt.date]

    @property
    def total_count(self) -> int:
        return sum(cause.count for cause in self.causes)

    @property
    def total_minutes(self) -> int:
        return sum(cause.minutes for cause in self.causes)


def exception_pareto(period: Period) -> Pareto:
    """Every (type, source system) with exceptions detected in the period, costliest first, with its share of the
    cost and the running share (the Pareto line), its weekly counts and minutes, and its recorded root causes."""
    in_period = FulfillmentException.objects.filter(detected_at__gte=period.since, detected_at__lt=period.until)
    rows = (
        in_period.values("type_id", "type__code", "type__name", "type__stage", "source_system")
        .annotate(count=Count("id"), minutes=Sum("operator_minutes"))
        .order_by()
    )
    causes = [
        Cause(
            type_id=row["type_id"],
            type_code=row["type__code"],
            type_name=row["type__name"],
            stage=row["type__stage"],
            source_system=row["source_system"],
            count=row["count"],
            minutes=row["minutes"] or 0,
        )
        for row in rows
    ]
    causes.sort(key=lambda cause: (-cause.cost, -cause.count, cause.type_code, cause.source_system))
    total = sum(cause.cost for cause in causes)
    running = 0
    for cause in causes:
        running += cause.cost
        if total:
            cause.share, cause.cumulative_share = cause.cost / total, running / total

    weeks = period.weeks()
    by_key = {cause.key: cause for cause in causes}
    buckets: dict[tuple[int, str], dict[dt.date, tuple[int, int]]] = {key: {} for key in by_key}
    weekly_rows = (
        in_period.annotate(week=TruncWeek("detected_at"))
        .values("type_id", "source_system", "week")
        .annotate(count=Count("id"), minutes=Sum("operator_minutes"))
        .order_by()
    )
    for row in weekly_rows:
        week = row["week"]
        week = timezone.localtime(week).date() if isinstance(week, dt.datetime) else week
        buckets[(row["type_id"], row["source_system"])][week] = (row["count"], row["minutes"] or 0)
    for key, cause in by_key.items():
        cause.weekly = [(week, *buckets[key].get(week, (0, 0))) for week in weeks]

    root_rows = in_period.values("type_id", "source_system", "root_cause").annotate(count=Count("id")).order_by()
    recorded: dict[tuple[int, str], dict[str, int]] = {key: {} for key in by_key}
    for row in root_rows:
        # Blank and whitespace-only both read "not recorded"; they are one line.
        name = row["root_cause"].strip() or NOT_RECORDED
        names = recorded[(row["type_id"], row["source_system"])]
        names[name] = names.get(name, 0) + row["count"]
    for key, cause in by_key.items():
        cause.root_causes = sorted(recorded[key].items(), key=lambda item: (-item[1], item[0]))
    return Pareto(period=period, causes=causes, weeks=weeks)
