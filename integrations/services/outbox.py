"""Messages out: written by a subscriber to the order events, in the transaction of the change they tell of.

A release becomes a pick ticket for the WMS of each shipment's location; a cancellation after release tells
that WMS to stop; a shipment that left tells the order's storefront (a fulfillment with tracking) and every
ERP (an item fulfillment). Each message gets one delivery per receiving system, sent after commit.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import Q

from orders.addresses import Address
from orders.models import Order, OrderEvent, Shipment

from ..models import Delivery, ExternalSystem, OutboxMessage, SystemKind


class MessageType:
    PICK_TICKET = "pick_ticket.created"
    PICK_TICKET_CANCELLED = "pick_ticket.cancelled"
    FULFILLMENT = "fulfillment.created"  # to the storefront
    ITEM_FULFILLMENT = "item_fulfillment.created"  # to the ERP
    AVAILABILITY = "availability.changed"  # to the storefront
    COUNT_REQUESTED = "count.requested"  # to the WMS: count this SKU at this location again


def _receivers(kind: str, **where) -> list[ExternalSystem]:
    return list(ExternalSystem.objects.filter(kind=kind, active=True, **where).exclude(base_url="").order_by("pk"))


def wms_for(location_id: int) -> list[ExternalSystem]:
    """The WMSs that run this location: those naming it, and those naming none."""
    return list(
        ExternalSystem.objects.filter(kind=SystemKind.WMS, active=True)
        .exclude(base_url="")
        .filter(Q(locations=location_id) | Q(locations__isnull=True))
        .distinct()
        .order_by("pk")
    )


def outbox_write(
    *, type: str, payload: dict, receivers: list[ExternalSystem], order: Order | None = None
) -> OutboxMessage | None:
    """Write a message and its deliveries in the caller's transaction; they are sent once it commits."""
    if not receivers:
        return None
    message = OutboxMessage.objects.create(type=type, payload=payload, order=order)
    deliveries = Delivery.objects.bulk_create([Delivery(message=message, system=system) for system in receivers])
    ids = [delivery.pk for delivery in deliveries]
    transaction.on_commit(lambda: _send_soon(ids))
    return message


def outbox_write_many(*, type: str, payloads: list[dict], receivers: list[ExternalSystem]) -> list[OutboxMessage]:
    """outbox_write for many messages of one type, in two statements whatever their number."""
    if not receivers or not payloads:
        return []
    messages = OutboxMessage.objects.bulk_create([OutboxMessage(type=type, payload=payload) for payload in payloads])
    deliveries = Delivery.objects.bulk_create(
        [Delivery(message=message, system=system) for message in messages for system in receivers]
    )
    ids = [delivery.pk for delivery in deliveries]
    transaction.on_commit(lambda: _send_soon(ids))
    return messages


def _send_soon(ids: list[int]) -> None:
    from ..tasks import delivery_send_task  # tasks call services; this is the one way back

    for pk in ids:
        delivery_send_task.delay(pk)


# --- what the messages say ---------------------------------------------------------------------------


def _order_ref(order: Order) -> dict:
    return {"order_id": order.pk, "external_id": order.external_id, "partner": order.partner.code}


def pick_ticket(order: Order, shipment: Shipment) -> dict:
    lines = shipment.lines.select_related("order_line__sku").order_by("order_line__line_number")
    return {
        **_order_ref(order),
        "shipment_id": shipment.pk,
        "location": shipment.location.code,
        "service_level": order.service_level,
        "carrier": shipment.carrier,
        "service": shipment.service,
        "ship_to": Address.of(order).as_dict(),
        "lines": [
            {
                "order_line_id": line.order_line_id,
                "sku": line.order_line.sku.code if line.order_line.sku else line.order_line.sku_code,
                "quantity": line.quantity,
                "uom": "each",
            }
            for line in lines
        ],
    }


def _shipped(order: Order, shipment: Shipment) -> dict:
    return {
        **_order_ref(order),
        "shipment_id": shipment.pk,
        "location": shipment.location.code,
        "carrier": shipment.carrier,
        "tracking_number": shipment.tracking_number,
        "shipped_at": shipment.shipped_at.isoformat() if shipment.shipped_at else None,
        "lines": [
            {"order_line_id": line.order_line_id, "sku": line.order_line.sku_code, "quantity": line.quantity}
            for line in shipment.lines.select_related("order_line").order_by("order_line__line_number")
        ],
    }


def storefronts() -> list[ExternalSystem]:
    return _receivers(SystemKind.STOREFRONT)


def availability_payload(*, sku_code: str, location_code: str, available: int) -> dict:
    return {"sku": sku_code, "location": location_code, "available": available}


def availability_changed(*, sku_code: str, location_code: str, available: int) -> OutboxMessage | None:
    """Tell the storefronts how many units of a SKU are available to sell at a location."""
    return outbox_write(
        type=MessageType.AVAILABILITY,
        payload=availability_payload(sku_code=sku_code, location_code=location_code, available=available),
        receivers=storefronts(),
    )


# --- the subscriber ----------------------------------------------------------------------------------


def on_order_event(event: OrderEvent) -> None:
    """Called by orders.subscribers for every order event, inside the transaction that wrote it."""
    if event.kind == OrderEvent.Kind.OUTBOUND and event.name == "release_to_wms":
        _release(event)
    elif event.kind == OrderEvent.Kind.OUTBOUND and event.name == "cancel_to_wms":
        _cancel(event)
    elif event.kind == OrderEvent.Kind.SHIPMENT and event.to_status == "shipped":
        _ship(event)


def _release(event: OrderEvent) -> None:
    order = Order.objects.select_related("partner").get(pk=event.order_id)
    for entry in event.data.get("shipments", []):
        receivers = wms_for(entry["location"])
        if receivers:
            shipment = Shipment.objects.select_related("location").get(pk=entry["shipment"])
            outbox_write(type=MessageType.PICK_TICKET, payload=pick_ticket(order, shipment), receivers=receivers, order=order)


def _cancel(event: OrderEvent) -> None:
    order = Order.objects.select_related("partner").get(pk=event.order_id)
    for entry in event.data.get("shipments", []):
        outbox_write(
            type=MessageType.PICK_TICKET_CANCELLED,
            payload={**_order_ref(order), "shipment_id": entry["shipment"], "reason": event.data.get("reason", "")},
            receivers=wms_for(entry["location"]),
            order=order,
        )


def _ship(event: OrderEvent) -> None:
    order = Order.objects.select_related("partner").get(pk=event.order_id)
    shipment = Shipment.objects.select_related("location").get(pk=event.shipment_id)
    payload = _shipped(order, shipment)
    outbox_write(
        type=MessageType.FULFILLMENT,
        payload=payload,
        receivers=_receivers(SystemKind.STOREFRONT, partner=order.partner_id),
        order=order,
    )
    outbox_write(type=MessageType.ITEM_FULFILLMENT, payload=payload, receivers=_receivers(SystemKind.ERP), order=order)
