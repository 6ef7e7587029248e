"""Creators of OrderEvent rows; services call them inside their transaction.

Each event is written when it happens and then handed to the subscribers (orders.subscribers),
in the same transaction: the audit trail and whatever subscribes to it (the outbox) stay in step.
"""

from __future__ import annotations

from core.actors import Actor

from . import subscribers
from .models import Order, OrderEvent, Shipment


def _record(event: OrderEvent) -> OrderEvent:
    event.save(force_insert=True)
    subscribers.notify(event)
    return event


def _record_together(events: list[OrderEvent]) -> list[OrderEvent]:
    OrderEvent.objects.bulk_create(events)
    for event in events:
        subscribers.notify(event)
    return events


def _created(order: Order, *, actor: Actor, data: dict | None, status: str) -> OrderEvent:
    return OrderEvent(
        order=order, kind=OrderEvent.Kind.CREATED, name="created", to_status=status, actor=str(actor), data=data or {}
    )


def _transitioned(order: Order, *, name: str, from_status: str, actor: Actor, data: dict | None) -> OrderEvent:
    return OrderEvent(
        order=order,
        kind=OrderEvent.Kind.TRANSITION,
        name=name,
        from_status=from_status,
        to_status=order.status,
        actor=str(actor),
        data=data or {},
    )


def order_created(order: Order, *, actor: Actor, data: dict | None = None) -> OrderEvent:
    return _record(_created(order, actor=actor, data=data, status=order.status))


def order_created_ready(order: Order, *, actor: Actor, data: dict | None = None) -> list[OrderEvent]:
    """An order stored ready, its checks having passed before it was stored: its creation (received) and its
    mark_ready, as if they had been two steps, in one INSERT."""
    received = Order._meta.get_field("status").default
    return _record_together(
        [
            _created(order, actor=actor, data=data, status=received),
            _transitioned(order, name="mark_ready", from_status=received, actor=actor, data=None),
        ]
    )


def order_transitioned(order: Order, *, name: str, from_status: str, actor: Actor, data: dict | None = None) -> OrderEvent:
    return _record(_transitioned(order, name=name, from_status=from_status, actor=actor, data=data))


def shipment_transitioned(
    shipment: Shipment, *, name: str, from_status: str, actor: Actor, data: dict | None = None
) -> OrderEvent:
    return _record(
        OrderEvent(
            order_id=shipment.order_id,
            shipment=shipment,
            kind=OrderEvent.Kind.SHIPMENT,
            name=name,
            from_status=from_status,
            to_status=shipment.status,
            actor=str(actor),
            data=data or {},
        )
    )


def order_sent(order: Order, *, name: str, actor: Actor, data: dict) -> OrderEvent:
    """A message to another system (the outbox that delivers it subscribes to these events)."""
    return _record(OrderEvent(order=order, kind=OrderEvent.Kind.OUTBOUND, name=name, actor=str(actor), data=data))


def order_received(order: Order, *, name: str, actor: Actor, data: dict) -> OrderEvent:
    """A message from another system that touched the order (what it said is kept by integrations)."""
    return _record(OrderEvent(order=order, kind=OrderEvent.Kind.INBOUND, name=name, actor=str(actor), data=data))


def order_action(order: Order, *, name: str, actor: Actor, data: dict) -> OrderEvent:
    return _record(OrderEvent(order=order, kind=OrderEvent.Kind.ACTION, name=name, actor=str(actor), data=data))
