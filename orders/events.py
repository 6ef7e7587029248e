"""Creators of OrderEvent rows; services call them inside their transaction.

Inside `batched()` the rows are kept and written with one INSERT when the block ends,
still inside the transaction; each keeps the moment it happened (`at`) and its place
in the sequence.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from fulfillment.actors import Actor

from .models import Order, OrderEvent, Shipment

_pending: ContextVar[list[OrderEvent] | None] = ContextVar("pending_order_events", default=None)


@contextmanager
def batched() -> Iterator[None]:
    """Write the events of the block with one INSERT at its end; nothing if it raises. Nested blocks join the outer one."""
    if _pending.get() is not None:
        yield
        return
    pending: list[OrderEvent] = []
    token = _pending.set(pending)
    try:
        yield
    finally:
        _pending.reset(token)
    OrderEvent.objects.bulk_create(pending)


def _record(event: OrderEvent) -> OrderEvent:
    pending = _pending.get()
    if pending is None:
        event.save(force_insert=True)
    else:
        pending.append(event)
    return event


def order_created(order: Order, *, actor: Actor, data: dict | None = None) -> OrderEvent:
    return _record(
        OrderEvent(
            order=order, kind=OrderEvent.Kind.CREATED, name="created", to_status=order.status, actor=str(actor), data=data or {}
        )
    )


def order_transitioned(order: Order, *, name: str, from_status: str, actor: Actor, data: dict | None = None) -> OrderEvent:
    return _record(
        OrderEvent(
            order=order,
            kind=OrderEvent.Kind.TRANSITION,
            name=name,
            from_status=from_status,
            to_status=order.status,
            actor=str(actor),
            data=data or {},
        )
    )


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


def order_action(order: Order, *, name: str, actor: Actor, data: dict) -> OrderEvent:
    return _record(OrderEvent(order=order, kind=OrderEvent.Kind.ACTION, name=name, actor=str(actor), data=data))
