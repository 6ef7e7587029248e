"""Creators of OrderEvent rows; services call them inside their transaction."""

from __future__ import annotations

from fulfillment.actors import Actor

from .models import Order, OrderEvent, Shipment


def order_created(order: Order, *, actor: Actor, data: dict | None = None) -> OrderEvent:
    return OrderEvent.objects.create(
        order=order, kind=OrderEvent.Kind.CREATED, name="created", to_status=order.status, actor=str(actor), data=data or {}
    )


def order_transitioned(order: Order, *, name: str, from_status: str, actor: Actor, data: dict | None = None) -> OrderEvent:
    return OrderEvent.objects.create(
        order=order, kind=OrderEvent.Kind.TRANSITION, name=name, from_status=from_status, to_status=order.status,
        actor=str(actor), data=data or {},
    )


def shipment_transitioned(shipment: Shipment, *, name: str, from_status: str, actor: Actor, data: dict | None = None) -> OrderEvent:
    return OrderEvent.objects.create(
        order_id=shipment.order_id, shipment=shipment, kind=OrderEvent.Kind.SHIPMENT, name=name,
        from_status=from_status, to_status=shipment.status, actor=str(actor), data=data or {},
    )
