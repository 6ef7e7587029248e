"""Reads for the order pages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import chain

from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet
from django.utils import timezone

from exceptions.models import OPEN_STATUSES, ExceptionEvent, FulfillmentException

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


def routing_explanation(decision: RoutingDecision) -> list[str]:
    """The decision in plain words, one sentence per line."""
    if decision.rule_id or not decision.rule_name.startswith("Built-in"):
        sentences = [f"Rule “{decision.rule_name}” matched this order."]
    else:
        sentences = ["No rule matched, so the built-in default ranked every active location that ships there, nearest first."]
    sites = [shipment["location"] for shipment in decision.plan]
    outcome = {
        RoutingDecision.Outcome.SINGLE: f"{sites[0]} fills the whole order." if sites else "",
        RoutingDecision.Outcome.SPLIT: (
            f"No single location has everything, so it ships in {len(sites)} parts: {', '.join(sites)}."
        ),
        RoutingDecision.Outcome.SPLIT_PENDING: (
            f"No single location has everything; a split over {', '.join(sites)} waits for customer service to approve it."
        ),
        RoutingDecision.Outcome.PARTIAL: f"The short quantity of a pick ships from {', '.join(sites)} instead.",
        RoutingDecision.Outcome.BACKORDER: (
            "Backordered: " + ", ".join(f"line {line} is short {units}" for line, units in decision.short.items()) + "."
            if decision.short
            else "Backordered: the stock exists, but only in more shipments than the rule allows."
        ),
    }[decision.outcome]
    sentences.append(outcome)
    for candidate in decision.candidates:
        verdict = {"chosen": "chosen", "not_used": "not used", "rejected": "ruled out"}[candidate["verdict"]]
        sentences.append(f"{candidate['location']}: {verdict} — {candidate['reason']}.")
    return sentences


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    source: str
    title: str
    actor: str
    note: str


def order_timeline(order: Order) -> list[TimelineEntry]:
    """The order's events and its exceptions' events, newest first."""
    order_events = order.events.select_related("shipment").order_by("at", "id")
    exception_events = ExceptionEvent.objects.filter(exception__order=order).select_related("exception__type")
    entries = chain(
        (
            TimelineEntry(
                e.at,
                "order",
                f"{'Shipment ' + str(e.shipment_id) + ' ' if e.shipment_id else ''}{e.name.replace('_', ' ')}"
                + (f": {e.from_status.replace('_', ' ')} → {e.to_status.replace('_', ' ')}" if e.from_status else ""),
                e.actor,
                e.data.get("reason", "") if isinstance(e.data, dict) else "",
            )
            for e in order_events
        ),
        (
            TimelineEntry(
                e.at,
                "exception",
                f"{e.exception.type.name}: {e.get_kind_display().lower()}" + (f" ({e.action})" if e.action else ""),
                e.actor,
                e.note,
            )
            for e in exception_events
        ),
    )
    return sorted(entries, key=lambda entry: entry.at, reverse=True)


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
