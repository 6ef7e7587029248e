"""Reads for the order pages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from django.db.models import Prefetch, QuerySet
from django.utils import timezone

from core.models import country_working_calendar
from exceptions.models import OPEN_STATUSES, FulfillmentException

from .models import Order, OrderStatus, RoutingDecision, Shipment, ShipmentStatus

# Carrier days after hand-over, until a carrier integration gives real transit times.
TRANSIT_DAYS_DOMESTIC = 2
TRANSIT_DAYS_INTERNATIONAL = 5


def orders_changed_after(orders: QuerySet[Order], moment: datetime) -> QuerySet[Order]:
    """Orders whose answer may differ since `moment`: the order row, or anything on it that changed (the
    database keeps `changed_at` so: see the order's migration 0015)."""
    return orders.filter(changed_at__gt=moment)


@dataclass(frozen=True)
class Promise:
    ships_by: date
    arrives_by: date


def shipment_promise(shipment: Shipment, order: Order, today: date | None = None) -> Promise:
    """When a planned shipment would leave (the site's handling days) and arrive (domestic or cross-border transit).

    Handling days are the site's working days: those of its business calendar, or else Monday to
    Friday except its country's public holidays. Transit days are the destination country's working
    days, since carriers do not deliver on its public holidays. Read the shipment with its location's
    calendar and that calendar's holidays prefetched, as splits_awaiting_approval does, to keep a page
    of promises at a fixed number of queries.
    """
    today = today or timezone.localdate()
    # A promise reaches days ahead (handling days plus at most a week of transit), so this year's and
    # next year's holidays cover it, also when it crosses New Year.
    years = range(today.year, today.year + 2)
    location = shipment.location
    site = (
        location.calendar.working_calendar(years=years)
        if location.calendar_id is not None
        else country_working_calendar(location.country, years)
    )
    ships_by = site.add_working_days(today, location.handling_days)
    destination = (order.ship_country or "").upper()
    transit = TRANSIT_DAYS_DOMESTIC if location.country.upper() == destination else TRANSIT_DAYS_INTERNATIONAL
    return Promise(ships_by, country_working_calendar(destination, years).add_working_days(ships_by, transit))


def order_get(pk: int) -> Order:
    return (
        Order.objects.select_related("partner")
        .prefetch_related(
            "lines__sku",
            Prefetch(
                "shipments",
                queryset=Shipment.objects.select_related("location").prefetch_related("lines__order_line").order_by("pk"),
            ),
            Prefetch("routing_decisions", queryset=RoutingDecision.objects.order_by("-at", "-id")),
            Prefetch(
                "exceptions",
                queryset=FulfillmentException.objects.select_related("type", "owner", "queue").order_by("-created_at"),
            ),
        )
        .get(pk=pk)
    )


def splits_awaiting_approval() -> QuerySet[Order]:
    return (
        Order.objects.filter(status=OrderStatus.AWAITING_APPROVAL)
        .select_related("partner")
        .prefetch_related(
            Prefetch(
                "shipments",
                queryset=Shipment.objects.filter(status=ShipmentStatus.PLANNED)
                .select_related("location__calendar")
                .prefetch_related("lines__order_line", "location__calendar__holidays")
                .order_by("pk"),
                to_attr="planned_shipments",
            ),
            Prefetch("lines", to_attr="all_lines"),
            Prefetch(
                "exceptions",
                queryset=FulfillmentException.objects.filter(
                    type__code="split_approval_required", status__in=OPEN_STATUSES
                ).select_related("type"),
                to_attr="split_exceptions",
            ),
        )
        .order_by("placed_at", "pk")
    )
