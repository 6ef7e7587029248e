"""Reads for the order pages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet
from django.utils import timezone

from exceptions.models import OPEN_STATUSES, FulfillmentException

from .models import Order, OrderEvent, OrderStatus, RoutingDecision, Shipment, ShipmentStatus

# Carrier days after hand-over, until a carrier integration gives real transit times.
TRANSIT_DAYS_DOMESTIC = 2
TRANSIT_DAYS_INTERNATIONAL = 5


def orders_changed_after(orders: QuerySet[Order], moment: datetime) -> QuerySet[Order]:
    """Orders whose answer may differ since `moment`: the order row, or anything on it that changed.

    Shipments, lines and actions change without saving the order row, but every change of an
    order writes an event; exceptions carry their own updated_at.
    """
    return orders.filter(
        Q(updated_at__gt=moment)
        | Exists(OrderEvent.objects.filter(order=OuterRef("pk"), at__gt=moment))
        | Exists(FulfillmentException.objects.filter(order=OuterRef("pk"), updated_at__gt=moment))
    )


def add_working_days(start: date, days: int) -> date:
    current = start
    while days > 0:
        current += timedelta(days=1)
        if current.weekday() < 5:
            days -= 1
    return current


@dataclass(frozen=True)
class Promise:
    ships_by: date
    arrives_by: date


def shipment_promise(shipment: Shipment, order: Order, today: date | None = None) -> Promise:
    """When a planned shipment would leave (the site's handling days) and arrive (domestic or cross-border transit)."""
    today = today or timezone.localdate()
    ships_by = add_working_days(today, shipment.location.handling_days)
    transit = (
        TRANSIT_DAYS_DOMESTIC
        if shipment.location.country.upper() == (order.ship_country or "").upper()
        else TRANSIT_DAYS_INTERNATIONAL
    )
    return Promise(ships_by, add_working_days(ships_by, transit))


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
                .select_related("location")
                .prefetch_related("lines__order_line")
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
