"""Read queries for the pages: what the systems around the portal said about an order, and what we told them."""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.dateparse import parse_datetime

from inventory.models import StockLevel

from .models import Delivery, InboundEvent, ReportedStock, SystemKind

MESSAGES_LIMIT = 50


@dataclass(frozen=True)
class OrderMessages:
    events: list[InboundEvent]  # newest received first
    deliveries: list[Delivery]  # newest first
    more_events: bool  # the order has older events than those listed
    more_deliveries: bool

    @property
    def empty(self) -> bool:
        return not self.events and not self.deliveries


def _events():
    # The bodies and headers can be large and the pages show neither.
    return InboundEvent.objects.select_related("system").defer("body", "headers").order_by("-received_at", "-id")


def _deliveries():
    return Delivery.objects.select_related("message", "system").defer("message__payload").order_by("-created_at", "-id")


def _newest(rows: list, limit: int) -> tuple[list, bool]:
    return rows[:limit], len(rows) > limit


def _with(rows: list, pk: int | None, queryset, key) -> list:
    """`rows` and the row `pk` of `queryset`, in the rows' order, when it exists and is not among them already."""
    if pk is None or any(row.pk == pk for row in rows):
        return rows
    extra = queryset.filter(pk=pk).first()
    return rows if extra is None else sorted([*rows, extra], key=key, reverse=True)


def messages_for_order(
    order_id: int | None,
    *,
    limit: int = MESSAGES_LIMIT,
    inbound_event_id: int | None = None,
    delivery_id: int | None = None,
) -> OrderMessages:
    """The order's newest `limit` inbound events and deliveries, in two to four queries however many there are.

    `inbound_event_id` and `delivery_id` name rows that must be listed even when they are older than
    the newest `limit` or belong to no order (an event that failed before it could name its order).
    """
    events, more_events = _newest(list(_events().filter(order_id=order_id)[: limit + 1]), limit) if order_id else ([], False)
    deliveries, more_deliveries = (
        _newest(list(_deliveries().filter(message__order_id=order_id)[: limit + 1]), limit) if order_id else ([], False)
    )
    return OrderMessages(
        events=_with(events, inbound_event_id, _events(), key=lambda e: (e.received_at, e.pk)),
        deliveries=_with(deliveries, delivery_id, _deliveries(), key=lambda d: (d.created_at, d.pk)),
        more_events=more_events,
        more_deliveries=more_deliveries,
    )


@dataclass(frozen=True)
class StockViews:
    location: object
    sku: object
    ours: StockLevel | None
    ours_then: int | None  # our figure when the WMS counted
    counted: int | None
    counted_at: object
    system: str
    storefront: ReportedStock | None

    @property
    def difference(self) -> int | None:
        return None if self.counted is None else self.counted - (self.ours.on_hand if self.ours else 0)

    @property
    def differs(self) -> bool:
        return bool(self.difference)


def storefront_figure(*, location_id: int, sku_id: int) -> ReportedStock | None:
    """The storefront's last available figure for the SKU at the location, where it names both as we do."""
    return (
        ReportedStock.objects.select_related("system")
        .filter(system__kind=SystemKind.STOREFRONT, location_id=location_id, sku_id=sku_id)
        .order_by("-reported_at")
        .first()
    )


def stock_views(exception) -> StockViews:
    """Ours (live), the WMS's count (from the exception), and the storefront's last figure, in three queries."""
    detail = exception.detail if isinstance(exception.detail, dict) else {}
    ours = StockLevel.objects.filter(location_id=exception.location_id, sku_id=exception.sku_id).first()
    storefront = storefront_figure(location_id=exception.location_id, sku_id=exception.sku_id)
    counted_at = detail.get("counted_at")
    return StockViews(
        location=exception.location,
        sku=exception.sku,
        ours=ours,
        ours_then=detail.get("ours"),
        counted=detail.get("counted"),
        counted_at=parse_datetime(counted_at) if isinstance(counted_at, str) else None,
        system=str(detail.get("system") or ""),
        storefront=storefront,
    )
