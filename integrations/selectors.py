"""Read queries for the pages: what the systems around the portal said about an order, and what we told them."""

from __future__ import annotations

from dataclasses import dataclass

from .models import Delivery, InboundEvent

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
