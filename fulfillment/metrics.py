"""The dashboard's figures for a period and, optionally, a site. Reads only, each group a fixed number of queries.

Definitions (so that each figure can be checked by hand against the rows):

- Period: from the start of the `start` day to the end of the `end` day (UTC, the project's time zone).
- Site: an exception belongs to a site when it is at that location, its shipment leaves from it, or its order has a
  shipment from it; an order belongs to a site when it has a shipment from it.
- Orders in the period: orders placed (`placed_at`) in the period.
- Exceptions in the period: exceptions created (`created_at`) in the period.
- Exceptions per 100 orders (by stage, by source system, by type): exceptions in the period / orders in the period
  x 100. Stage is the exception type's stage; source system is the system that raised it (`source_system`).
- Open exceptions by queue and by age band: exceptions open now (open, in progress, waiting), whatever the period,
  by queue and by age since `detected_at`: under 4 h, 4-24 h, 1-3 days, over 3 days.
- SLA warned: exceptions in the period whose warning went out (`warned_at` set). SLA breached: exceptions in the
  period that were escalated, were resolved after `due_at`, or are open with `due_at` passed. Rates: / exceptions in
  the period x 100.
- Time to first response: `first_response_at - detected_at`, over exceptions in the period that had a response; time
  to resolve: `resolved_at - detected_at`, over exceptions in the period that were resolved (not dismissed). Median and
  90th percentile (continuous, interpolated as PERCENTILE_CONT does), in hours.
- Operator minutes: the sum of `operator_minutes` of exceptions in the period, in total and per type.
- Fill rate: of the lines of orders in the period that were routed at least once, the share their first routing
  decision (lowest id) did not name as short, i.e. lines the stock covered at first allocation. lines - short lines
  of that decision, / lines x 100.
- Perfect-order rate: of the orders in the period that are finished (shipped, delivered or cancelled), the share that
  is shipped or delivered in full, whose last shipment left by `promised_ship_by` when the order has one, and that
  never had an exception. x 100.
- On-time ship rate: of the orders in the period that are shipped or delivered and have a `promised_ship_by`, the
  share whose last shipment (`shipped_at`) left by then. x 100.
- Processing time: `placed_at` to the order's first transition to released (ship-ready, the order event), over orders
  in the period that were released; median and 90th percentile in hours.
- Integration failure rate per external system: dead deliveries / deliveries created in the period, and failed
  inbound events / inbound events received in the period, x 100.
- Top 10 SKUs, locations and partners by exceptions in the period (a location as a site, above: an exception at
  two sites counts at each).
- Daily trend: exceptions created per day and exceptions resolved or dismissed (`resolved_at`) per day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from urllib.parse import urlencode

from django.db import connection
from django.db.models import (
    Aggregate,
    Count,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    Func,
    IntegerField,
    OuterRef,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from exceptions.filters import AGE_BANDS, age_band_condition, at_site_condition, sla_breached_condition, sla_warned_condition
from exceptions.models import OPEN_STATUSES, ExceptionStatus, FulfillmentException, Stage
from integrations.models import Delivery, DeliveryStatus, ExternalSystem, InboundEvent, InboundStatus
from inventory.models import Location
from orders import measures
from orders.models import Order, OrderEvent, OrderLine, OrderStatus, RoutingDecision, Shipment

DEFAULT_DAYS = 30
TOP = 10


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # inclusive
    site: Location | None = None

    @property
    def starts_at(self) -> datetime:
        return datetime.combine(self.start, time.min, tzinfo=timezone.get_current_timezone())

    @property
    def ends_at(self) -> datetime:
        """The first moment after the period."""
        return datetime.combine(self.end + timedelta(days=1), time.min, tzinfo=timezone.get_current_timezone())

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range((self.end - self.start).days + 1)]


def default_period(today: date | None = None) -> tuple[date, date]:
    today = today or timezone.localdate()
    return today - timedelta(days=DEFAULT_DAYS - 1), today


def rate(part: int | None, whole: int | None) -> float | None:
    """part / whole x 100, or None when there is nothing to divide by."""
    return round(100 * (part or 0) / whole, 1) if whole else None


# --- what belongs to the period and the site ------------------------------------------------------------------


def _orders_shipping_from(site: Location):
    return Shipment.objects.filter(location=site).values("order_id")


def orders_in(period: Period) -> QuerySet[Order]:
    orders = Order.objects.filter(placed_at__gte=period.starts_at, placed_at__lt=period.ends_at)
    if period.site:
        orders = orders.filter(Exists(Shipment.objects.filter(order=OuterRef("pk"), location=period.site)))
    return orders


def _at_site(exceptions: QuerySet[FulfillmentException], site: Location | None) -> QuerySet[FulfillmentException]:
    return exceptions.filter(at_site_condition(site)) if site else exceptions


def exceptions_in(period: Period) -> QuerySet[FulfillmentException]:
    exceptions = FulfillmentException.objects.filter(created_at__gte=period.starts_at, created_at__lt=period.ends_at)
    return _at_site(exceptions, period.site)


# --- percentiles ------------------------------------------------------------------------------------------------


class PercentileCont(Aggregate):
    """PostgreSQL's ordered-set aggregate: the interpolated value below which `percentile` of the rows lie."""

    function = "PERCENTILE_CONT"
    template = "%(function)s(%(percentile)s) WITHIN GROUP (ORDER BY %(expressions)s)"

    def __init__(self, expression, percentile: float, **extra):
        super().__init__(expression, percentile=float(percentile), **extra)


def _interpolated(sorted_values: list[float], fraction: float) -> float:
    """As PERCENTILE_CONT: linear between the two nearest ranks."""
    position = fraction * (len(sorted_values) - 1)
    below = int(position)
    above = min(below + 1, len(sorted_values) - 1)
    return sorted_values[below] + (sorted_values[above] - sorted_values[below]) * (position - below)


def _hours(value: timedelta | None) -> float | None:
    return None if value is None else round(value.total_seconds() / 3600, 2)


def median_and_p90(rows: QuerySet, duration) -> dict:
    """Median, 90th percentile (hours) and count of `duration` (a DurationField expression) over `rows`, in one query."""
    rows = rows.annotate(duration=ExpressionWrapper(duration, output_field=DurationField())).filter(duration__isnull=False)
    if connection.vendor == "postgresql":
        figures = rows.aggregate(
            count=Count("pk"),
            median=PercentileCont(F("duration"), 0.5, output_field=DurationField()),
            p90=PercentileCont(F("duration"), 0.9, output_field=DurationField()),
        )
        return {"count": figures["count"], "median": _hours(figures["median"]), "p90": _hours(figures["p90"])}
    # SQLite has no percentile aggregate: fetch the durations alone (one query) and interpolate here, as
    # PERCENTILE_CONT would.
    values = sorted(d.total_seconds() / 3600 for d in rows.values_list("duration", flat=True))
    if not values:
        return {"count": 0, "median": None, "p90": None}
    return {
        "count": len(values),
        "median": round(_interpolated(values, 0.5), 2),
        "p90": round(_interpolated(values, 0.9), 2),
    }


# --- exceptions -------------------------------------------------------------------------------------------------


def exception_rates(period: Period) -> dict:
    """Exceptions per 100 orders by stage, source system and type, with operator minutes. Two queries."""
    orders = orders_in(period).count()
    rows = list(
        exceptions_in(period)
        .order_by()
        .values("type_id", "type__code", "type__name", "type__stage", "source_system")
        .annotate(count=Count("pk"), minutes=Coalesce(Sum("operator_minutes"), 0))
    )
    by_stage: dict[str, dict] = {}
    by_source: dict[str, dict] = {}
    by_type: dict[int, dict] = {}
    for row in rows:
        for groups, key, label in (
            (by_stage, row["type__stage"], Stage(row["type__stage"]).label),
            (by_source, row["source_system"], row["source_system"]),
            (by_type, row["type_id"], row["type__name"]),
        ):
            group = groups.setdefault(key, {"key": key, "label": label, "count": 0, "minutes": 0})
            group["count"] += row["count"]
            group["minutes"] += row["minutes"]
        by_type[row["type_id"]]["code"] = row["type__code"]
        by_type[row["type_id"]]["stage"] = row["type__stage"]
    for groups in (by_stage, by_source, by_type):
        for group in groups.values():
            group["per_100_orders"] = rate(group["count"], orders)

    def ranked(groups: dict) -> list[dict]:
        return sorted(groups.values(), key=lambda g: (-g["count"], str(g["label"])))

    total = sum(row["count"] for row in rows)
    return {
        "orders": orders,
        "exceptions": total,
        "per_100_orders": rate(total, orders),
        "operator_minutes": sum(row["minutes"] for row in rows),
        "by_stage": ranked(by_stage),
        "by_source": ranked(by_source),
        "by_type": ranked(by_type),
    }


def open_exceptions(period: Period, now: datetime | None = None) -> dict:
    """Exceptions open now, by queue and by age band. One query."""
    now = now or timezone.now()
    bands = {key: age_band_condition(key, now) for key, *_ in AGE_BANDS}
    rows = list(
        _at_site(FulfillmentException.objects.filter(status__in=OPEN_STATUSES), period.site)
        .order_by()
        .values("queue_id", "queue__name")
        .annotate(count=Count("pk"), **{band: Count("pk", filter=condition) for band, condition in bands.items()})
        .order_by("queue__name")
    )
    return {
        "total": sum(row["count"] for row in rows),
        "by_queue": [{"key": row["queue_id"], "label": row["queue__name"], "count": row["count"]} for row in rows],
        "by_age": [{"key": band, "label": label, "count": sum(row[band] for row in rows)} for band, label, *_ in AGE_BANDS],
    }


def sla(period: Period, now: datetime | None = None) -> dict:
    """Warned and breached exceptions of the period, as counts and rates. One query."""
    figures = exceptions_in(period).aggregate(
        total=Count("pk"),
        warned=Count("pk", filter=sla_warned_condition()),
        breached=Count("pk", filter=sla_breached_condition(now or timezone.now())),
    )
    return {
        **figures,
        "warned_rate": rate(figures["warned"], figures["total"]),
        "breached_rate": rate(figures["breached"], figures["total"]),
    }


def response_times(period: Period) -> dict:
    """Time to first response and to resolve, median and 90th percentile in hours. Two queries."""
    exceptions = exceptions_in(period).order_by()
    return {
        "first_response": median_and_p90(
            exceptions.filter(first_response_at__isnull=False), F("first_response_at") - F("detected_at")
        ),
        "resolve": median_and_p90(
            exceptions.filter(status=ExceptionStatus.RESOLVED, resolved_at__isnull=False), F("resolved_at") - F("detected_at")
        ),
    }


def top_tens(period: Period) -> dict:
    """The SKUs, locations and partners with the most exceptions in the period. Three queries."""
    exceptions = exceptions_in(period).order_by()
    skus = (
        exceptions.filter(sku__isnull=False)
        .values("sku_id", "sku__code")
        .annotate(count=Count("pk"))
        .order_by("-count", "sku__code")[:TOP]
    )
    partners = (
        exceptions.filter(order__isnull=False)
        .values("order__partner_id", "order__partner__code", "order__partner__name")
        .annotate(count=Count("pk"))
        .order_by("-count", "order__partner__code")[:TOP]
    )
    location_rows = _top_sites(exceptions)
    # The codes of at most ten locations, from the one extra query rather than a join in the grouping.
    codes = dict(Location.objects.filter(pk__in=[row["site_id"] for row in location_rows]).values_list("pk", "code"))
    return {
        "skus": [{"key": r["sku_id"], "label": r["sku__code"], "count": r["count"]} for r in skus],
        "locations": [{"key": r["site_id"], "label": codes.get(r["site_id"], ""), "count": r["count"]} for r in location_rows],
        "partners": [
            {
                "key": r["order__partner_id"],
                "code": r["order__partner__code"],
                "label": r["order__partner__name"],
                "count": r["count"],
            }
            for r in partners
        ],
    }


def _top_sites(exceptions: QuerySet[FulfillmentException]) -> list[dict]:
    """Exceptions per site as the site filter reads it (at it, its shipment leaving from it, or its order shipping
    from it), so each count is what the queue shows for that location. One query: the distinct (exception, site)
    pairs of the three ways, grouped."""
    pairs = (
        exceptions.filter(location__isnull=False)
        .values_list("pk", "location_id")
        .union(
            exceptions.filter(shipment__isnull=False).values_list("pk", "shipment__location_id"),
            exceptions.filter(order__shipments__isnull=False).values_list("pk", "order__shipments__location_id"),
        )
    )
    sql, params = pairs.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(
            # The union's columns are named after its first part's: id, location_id.
            f"SELECT location_id, COUNT(*) AS n FROM ({sql}) AS pairs GROUP BY location_id ORDER BY n DESC, location_id"
            f" LIMIT {TOP}",
            params,
        )
        return [{"site_id": site_id, "count": count} for site_id, count in cursor.fetchall()]


def daily_trend(period: Period) -> dict:
    """Exceptions created and resolved per day of the period: one query (two GROUP BYs joined by UNION ALL)."""
    site = period.site
    created = (
        _at_site(FulfillmentException.objects.filter(created_at__gte=period.starts_at, created_at__lt=period.ends_at), site)
        .order_by()
        .annotate(day=TruncDate("created_at"), series=Value("created"))
        .values("series", "day")
        .annotate(count=Count("pk"))
        .values_list("series", "day", "count")
    )
    resolved = (
        _at_site(FulfillmentException.objects.filter(resolved_at__gte=period.starts_at, resolved_at__lt=period.ends_at), site)
        .order_by()
        .annotate(day=TruncDate("resolved_at"), series=Value("resolved"))
        .values("series", "day")
        .annotate(count=Count("pk"))
        .values_list("series", "day", "count")
    )
    counts = {("created", day): 0 for day in period.days} | {("resolved", day): 0 for day in period.days}
    for series, day, count in created.union(resolved, all=True):
        if isinstance(day, str):  # SQLite returns the date of a UNION's column as text
            day = date.fromisoformat(day)
        counts[(series, day)] = count
    return {
        "days": period.days,
        "created": [counts[("created", day)] for day in period.days],
        "resolved": [counts[("resolved", day)] for day in period.days],
    }


# --- orders -----------------------------------------------------------------------------------------------------


class JsonKeyCount(Func):
    """The number of keys of a JSON object column."""

    output_field = IntegerField()

    def as_sql(self, compiler, connection, **extra_context):
        raise NotImplementedError(f"JsonKeyCount is written for PostgreSQL and SQLite, not {connection.vendor}")

    def as_postgresql(self, compiler, connection, **extra_context):
        return self.as_sql_template(compiler, connection, "(SELECT COUNT(*) FROM jsonb_object_keys(%(expressions)s))")

    def as_sqlite(self, compiler, connection, **extra_context):
        return self.as_sql_template(compiler, connection, "(SELECT COUNT(*) FROM json_each(%(expressions)s))")

    def as_sql_template(self, compiler, connection, template):
        return super().as_sql(compiler, connection, template=template)


def _subquery_int(queryset: QuerySet, expression) -> Coalesce:
    return Coalesce(Subquery(queryset.order_by().annotate(value=expression).values("value")[:1], output_field=IntegerField()), 0)


def order_figures(period: Period) -> dict:
    """Fill rate, perfect-order rate, on-time ship rate (one query) and processing time (one query)."""
    first_decision = RoutingDecision.objects.filter(order=OuterRef("pk")).order_by("pk")
    line_count = OrderLine.objects.filter(order=OuterRef("pk")).order_by().values("order").annotate(n=Count("pk")).values("n")[:1]
    orders = measures.with_outcome_facts(orders_in(period).order_by()).annotate(
        lines_routed=Coalesce(Subquery(line_count, output_field=IntegerField()), 0),
        lines_short=Coalesce(Subquery(first_decision.annotate(n=JsonKeyCount("short")).values("n")[:1]), 0),
    )
    routed = measures.outcome_condition("routed")
    figures = orders.aggregate(
        orders=Count("pk"),
        lines=Coalesce(Sum("lines_routed", filter=routed), 0),
        short=Coalesce(Sum("lines_short", filter=routed), 0),
        **{
            figure: Count("pk", filter=measures.outcome_condition(outcome))
            for figure, outcome in (
                ("finished", "finished"),
                ("perfect", "perfect"),
                ("promised_shipped", "promised_shipped"),
                ("shipped_on_time", "on_time"),
            )
        },
    )
    # The first release in the (order, at) index's order: the scan stops at it rather than grouping every event.
    released_at = Subquery(
        OrderEvent.objects.filter(order=OuterRef("pk"), kind=OrderEvent.Kind.TRANSITION, to_status=OrderStatus.RELEASED)
        .order_by("at")
        .values("at")[:1]
    )
    processing = median_and_p90(orders_in(period).order_by().annotate(released_at=released_at), F("released_at") - F("placed_at"))
    return {
        **figures,
        "filled": figures["lines"] - figures["short"],
        "fill_rate": rate(figures["lines"] - figures["short"], figures["lines"]),
        "perfect_rate": rate(figures["perfect"], figures["finished"]),
        "on_time_rate": rate(figures["shipped_on_time"], figures["promised_shipped"]),
        "processing": processing,
    }


# --- integrations -----------------------------------------------------------------------------------------------


def integration_failures(period: Period) -> list[dict]:
    """Per external system: deliveries and dead ones, inbound events and failed ones, in the period. One query."""
    deliveries = Delivery.objects.filter(system=OuterRef("pk"), created_at__gte=period.starts_at, created_at__lt=period.ends_at)
    inbound = InboundEvent.objects.filter(
        system=OuterRef("pk"), received_at__gte=period.starts_at, received_at__lt=period.ends_at
    )
    if period.site:
        deliveries = deliveries.filter(message__order_id__in=_orders_shipping_from(period.site))
        inbound = inbound.filter(order_id__in=_orders_shipping_from(period.site))

    def counted(rows: QuerySet) -> Coalesce:
        return _subquery_int(rows.values("system"), Count("pk"))

    systems = ExternalSystem.objects.order_by("slug").annotate(
        delivery_count=counted(deliveries),
        dead_count=counted(deliveries.filter(status=DeliveryStatus.DEAD)),
        inbound_count=counted(inbound),
        failed_count=counted(inbound.filter(status=InboundStatus.FAILED)),
    )
    return [
        {
            "key": system.pk,
            "label": system.name,
            "slug": system.slug,
            "kind": system.get_kind_display(),
            "deliveries": system.delivery_count,
            "dead": system.dead_count,
            "dead_rate": rate(system.dead_count, system.delivery_count),
            "inbound": system.inbound_count,
            "failed": system.failed_count,
            "failed_rate": rate(system.failed_count, system.inbound_count),
        }
        for system in systems
    ]


# --- all of it --------------------------------------------------------------------------------------------------


def dashboard(period: Period, now: datetime | None = None) -> dict:
    now = now or timezone.now()
    return {
        "rates": exception_rates(period),
        "open": open_exceptions(period, now),
        "sla": sla(period, now),
        "times": response_times(period),
        "orders": order_figures(period),
        "integrations": integration_failures(period),
        "top": top_tens(period),
        "trend": daily_trend(period),
    }


# --- the period a request asks for ------------------------------------------------------------------------------

MAX_DAYS = 3 * 366


def _day(raw: str) -> date:
    if len(raw) != 10:
        raise ValueError(raw)
    return date.fromisoformat(raw)


def period_from(params, today: date | None = None) -> tuple[Period, list[str]]:
    """The period and site `params` ask for (`from`, `to`, `site`), and what was wrong with them in words.

    A date that is not YYYY-MM-DD, a period that ends before it starts or is longer than MAX_DAYS falls back to the
    default period; an unknown site to all sites."""
    errors = []
    start, end = default_period(today)
    raw_start, raw_end = (params.get("from") or "").strip(), (params.get("to") or "").strip()
    try:
        asked_start = _day(raw_start) if raw_start else start
        asked_end = _day(raw_end) if raw_end else (end if not raw_start else max(end, asked_start))
    except ValueError:
        bad = raw_start if raw_start and not _is_day(raw_start) else raw_end
        errors.append(f"“{bad}” is not a date as YYYY-MM-DD; showing the last {DEFAULT_DAYS} days.")
    else:
        if asked_end < asked_start:
            errors.append(
                f"The period ends ({asked_end}) before it starts ({asked_start}); showing the last {DEFAULT_DAYS} days."
            )
        elif (asked_end - asked_start).days + 1 > MAX_DAYS:
            errors.append(f"A period can be at most {MAX_DAYS} days; showing the last {DEFAULT_DAYS} days.")
        else:
            start, end = asked_start, asked_end
    site = None
    raw_site = (params.get("site") or "").strip()
    if raw_site:
        site = Location.objects.filter(pk=int(raw_site)).first() if raw_site.isdigit() and len(raw_site) < 10 else None
        if site is None:
            errors.append(f"There is no site “{raw_site}”; showing all sites.")
    return Period(start=start, end=end, site=site), errors


def _is_day(raw: str) -> bool:
    try:
        _day(raw)
    except ValueError:
        return False
    return True


# --- the tables the page shows and the CSV exports ------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    value: object  # None where there is nothing to divide by: "—" on the page, empty in the CSV
    url: str = ""


@dataclass(frozen=True)
class Table:
    name: str
    title: str
    columns: list[str]
    rows: list[list[Cell]]


def _query(**params) -> str:
    return urlencode({key: value for key, value in params.items() if value not in (None, "")})


class Links:
    """Where each figure's rows are, filtered as the figure: the queue (all queues' exceptions for a user who sees
    them all), the orders list, or the admin's delivery and inbound event lists."""

    def __init__(self, period: Period):
        self.period = period

    def _site(self) -> dict:
        return {"location": self.period.site.pk} if self.period.site else {}

    def open(self, **filters) -> str:
        """Exceptions open now, whatever the period."""
        return "/queues/?" + _query(**{"tab": "team", **self._site(), **filters})

    def exceptions(self, **filters) -> str:
        """Exceptions created in the period, open or closed."""
        # A figure's own location (a top location) stands in for the period's site.
        return "/queues/?" + _query(
            **{
                "tab": "team",
                "state": "all",
                "created_from": self.period.start.isoformat(),
                "created_to": self.period.end.isoformat(),
                **self._site(),
                **filters,
            }
        )

    def orders(self, **filters) -> str:
        site = self.period.site.code if self.period.site else None
        return "/orders/?" + _query(
            placed_from=self.period.start.isoformat(), placed_to=self.period.end.isoformat(), location=site, **filters
        )

    @property
    def tiles(self) -> dict[str, str]:
        """The headline tiles' links: each opens the rows its figure counts."""
        return {
            "rate": self.exceptions(),
            "open": self.open(),
            "breached": self.exceptions(sla="breached"),
            "minutes": self.exceptions(),
            "fill": self.orders(outcome="routed"),
            "perfect": self.orders(outcome="finished"),
        }

    def _admin(self, model: str, at: str, **filters) -> str:
        # The admin's own lookups: the period as a half-open range of moments, as the figure counts it.
        return f"/admin/integrations/{model}/?" + _query(
            **{f"{at}__gte": self.period.starts_at.isoformat(), f"{at}__lt": self.period.ends_at.isoformat()},
            ships_from=self.period.site.pk if self.period.site else None,
            **filters,
        )

    def deliveries(self, system_id: int, **filters) -> str:
        return self._admin("delivery", "created_at", system__id__exact=system_id, **filters)

    def inbound_events(self, system_id: int, **filters) -> str:
        return self._admin("inboundevent", "received_at", system__id__exact=system_id, **filters)


def tables(figures: dict, period: Period) -> dict[str, Table]:
    links = Links(period)
    rates, open_, sla_, times, orders = figures["rates"], figures["open"], figures["sla"], figures["times"], figures["orders"]
    per_100 = "Per 100 orders"

    def grouped(name, title, groups, link_of, label="") -> Table:
        return Table(
            name,
            title,
            [label, "Exceptions", per_100, "Operator minutes"],
            [
                [
                    Cell(g["label"], link_of(g)),
                    Cell(g["count"], link_of(g)),
                    Cell(g["per_100_orders"]),
                    Cell(g["minutes"]),
                ]
                for g in groups
            ],
        )

    built = [
        grouped("by_stage", "Exceptions by stage", rates["by_stage"], lambda g: links.exceptions(stage=g["key"]), "Stage"),
        grouped(
            "by_source",
            "Exceptions by source system",
            rates["by_source"],
            lambda g: links.exceptions(source=g["key"]),
            "Source system",
        ),
        grouped("by_type", "Exceptions by type", rates["by_type"], lambda g: links.exceptions(type=g["key"]), "Type"),
        Table(
            "open_by_queue",
            "Open exceptions by queue",
            ["Queue", "Open"],
            [_both_linked(q["label"], q["count"], links.open(queue=q["key"])) for q in open_["by_queue"]],
        ),
        Table(
            "open_by_age",
            "Open exceptions by age",
            ["Age", "Open"],
            [_both_linked(b["label"], b["count"], links.open(age=b["key"])) for b in open_["by_age"]],
        ),
        Table(
            "sla",
            "SLA",
            ["Measure", "Exceptions", "Rate (%)"],
            [
                [Cell("Created in the period"), Cell(sla_["total"], links.exceptions()), Cell("")],
                [Cell("Warned"), Cell(sla_["warned"], links.exceptions(sla="warned")), Cell(sla_["warned_rate"])],
                [Cell("Breached"), Cell(sla_["breached"], links.exceptions(sla="breached")), Cell(sla_["breached_rate"])],
            ],
        ),
        Table(
            "times",
            "Response and resolution times (hours)",
            ["Measure", "Median", "90th percentile", "Exceptions"],
            [
                [Cell(label), Cell(t["median"]), Cell(t["p90"]), Cell(t["count"], url)]
                for label, t, url in (
                    ("Time to first response", times["first_response"], links.exceptions(responded="yes")),
                    ("Time to resolve", times["resolve"], links.exceptions(status=ExceptionStatus.RESOLVED)),
                )
            ],
        ),
        Table(
            "orders",
            "Orders",
            ["Measure", "Value", "Counted", "Of"],
            [
                [
                    Cell("Fill rate (%)"),
                    Cell(orders["fill_rate"], links.orders(outcome="routed")),
                    Cell(orders["filled"]),
                    Cell(orders["lines"], links.orders(outcome="routed")),
                ],
                [
                    Cell("Perfect-order rate (%)"),
                    Cell(orders["perfect_rate"], links.orders(outcome="perfect")),
                    Cell(orders["perfect"], links.orders(outcome="perfect")),
                    Cell(orders["finished"], links.orders(outcome="finished")),
                ],
                [
                    Cell("On-time ship rate (%)"),
                    Cell(orders["on_time_rate"], links.orders(outcome="on_time")),
                    Cell(orders["shipped_on_time"], links.orders(outcome="on_time")),
                    Cell(orders["promised_shipped"], links.orders(outcome="promised_shipped")),
                ],
                [
                    Cell("Processing time, median (h)"),
                    Cell(orders["processing"]["median"], links.orders(outcome="released")),
                    Cell(orders["processing"]["count"], links.orders(outcome="released")),
                    Cell(orders["orders"], links.orders()),
                ],
                [
                    Cell("Processing time, 90th percentile (h)"),
                    Cell(orders["processing"]["p90"], links.orders(outcome="released")),
                    Cell(orders["processing"]["count"], links.orders(outcome="released")),
                    Cell(orders["orders"], links.orders()),
                ],
            ],
        ),
        Table(
            "integrations",
            "Integration failures",
            ["System", "Kind", "Deliveries", "Dead", "Dead (%)", "Inbound events", "Failed", "Failed (%)"],
            [
                [
                    Cell(s["label"]),
                    Cell(s["kind"]),
                    Cell(s["deliveries"], links.deliveries(s["key"])),
                    Cell(s["dead"], links.deliveries(s["key"], status__exact=DeliveryStatus.DEAD)),
                    Cell(s["dead_rate"]),
                    Cell(s["inbound"], links.inbound_events(s["key"])),
                    Cell(s["failed"], links.inbound_events(s["key"], status__exact=InboundStatus.FAILED)),
                    Cell(s["failed_rate"]),
                ]
                for s in figures["integrations"]
            ],
        ),
        Table(
            "top_skus",
            "Top 10 SKUs by exceptions",
            ["SKU", "Exceptions"],
            [_both_linked(r["label"], r["count"], links.exceptions(sku=r["label"])) for r in figures["top"]["skus"]],
        ),
        Table(
            "top_locations",
            "Top 10 locations by exceptions",
            ["Location", "Exceptions"],
            [_both_linked(r["label"], r["count"], links.exceptions(location=r["key"])) for r in figures["top"]["locations"]],
        ),
        Table(
            "top_partners",
            "Top 10 partners by exceptions",
            ["Partner", "Exceptions"],
            [_both_linked(r["label"], r["count"], links.exceptions(partner=r["code"])) for r in figures["top"]["partners"]],
        ),
        Table(
            "trend",
            "Exceptions per day",
            ["Day", "Created", "Resolved"],
            [
                [Cell(day.isoformat()), Cell(created), Cell(resolved)]
                for day, created, resolved in zip(
                    figures["trend"]["days"], figures["trend"]["created"], figures["trend"]["resolved"], strict=True
                )
            ],
        ),
    ]
    return {table.name: table for table in built}


def _both_linked(label, count, url: str) -> list[Cell]:
    return [Cell(label, url), Cell(count, url)]


TABLE_NAMES = (
    "by_stage",
    "by_source",
    "by_type",
    "open_by_queue",
    "open_by_age",
    "sla",
    "times",
    "orders",
    "integrations",
    "top_skus",
    "top_locations",
    "top_partners",
    "trend",
)
