"""What each inbound topic means, applied through the same services the API and the pages call.

A handler first names what the event is about (`Applying.about`): that locks the order, and an event older
than one already applied to the same subject is stale and goes no further. Then it calls one service.
Whatever cannot be read raises Unmappable; the caller records it and opens a sync_failure.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from core.actors import Actor
from exceptions.models import OPEN_STATUSES, FulfillmentException
from exceptions.services import exception_raise, exception_resolve
from inventory.models import Location, Sku
from orders.addresses import ADDRESS_FIELDS
from orders.models import Order, OrderStatus, Shipment
from orders.serializers import AddressChangeSerializer, OrderInputSerializer
from orders.services import addresses, intake, lifecycle, shipments
from orders.services.idempotency import fingerprint
from orders.services.locks import order_lock

from .models import Adapter, ExternalSystem, InboundEvent, Invoice, ReportedStock, ShippingMapping
from .services import drift, invoices


class Unmappable(Exception):
    """The payload cannot be applied as it stands: a field is missing, or it names something we do not know."""


class Stale(Exception):
    """A newer event about the same subject was applied already."""


@dataclass
class Applying:
    event: InboundEvent
    system: ExternalSystem
    payload: dict
    actor: Actor
    order: Order | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def source(self) -> str:
        return self.system.kind

    def about(self, subject: str, order: Order | None = None) -> Order | None:
        """Name the subject (and lock its order): raise Stale if a newer event of it was applied already."""
        self.event.subject = subject[:120]
        if order is not None:
            order = order_lock(order)
            self.order = self.event.order = order
        newer = (
            InboundEvent.objects.filter(
                system=self.system, subject=self.event.subject, status="applied", occurred_at__gt=self.event.occurred_at
            )
            .exclude(pk=self.event.pk)
            .order_by("-occurred_at")
            .values_list("sender_id", "topic")
            .first()
        )
        if newer:
            raise Stale(f"{newer[1]} {newer[0]}, stamped later, was applied already.")
        return order


# --- reading payloads -------------------------------------------------------------------


def need(mapping, *path: str):
    value = mapping
    for key in path:
        if not isinstance(value, dict) or value.get(key) in (None, ""):
            raise Unmappable(f"The payload has no {'.'.join(path)}.")
        value = value[key]
    return value


def _decimal(value, what: str) -> Decimal:
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise Unmappable(f"{what} is not a number: {value!r}.") from None


def _int(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise Unmappable(f"{what} is not a whole number: {value!r}.")
    try:
        return int(value)
    except ValueError:
        raise Unmappable(f"{what} is not a whole number: {value!r}.") from None


def shopify_id(payload: dict, kind: str) -> str:
    """Shopify's 64-bit id, exactly: the GraphQL id's, since JSON numbers above 2**53 were rounded on the way."""
    gid = payload.get("admin_graphql_api_id")
    prefix = f"gid://shopify/{kind}/"
    if isinstance(gid, str) and gid.startswith(prefix):
        return gid[len(prefix) :].split("?", 1)[0]
    return str(need(payload, "id"))


def _order_of(system: ExternalSystem, external_id: str) -> Order:
    order = Order.objects.filter(partner=system.partner, external_id=external_id).first()
    if order is None:
        raise Unmappable(f"There is no order {external_id} from {system.partner.code}.")
    return order


def _generic_order(ctx: Applying, data: dict) -> Order:
    """A generic sender names our order by `order_id`, or by the partner's `external_id` (and `partner`)."""
    if data.get("order_id") not in (None, ""):
        order = Order.objects.filter(pk=_int(data["order_id"], "order_id")).first()
        if order is None:
            raise Unmappable(f"There is no order {data['order_id']}.")
        return order
    external_id = str(need(data, "external_id"))
    partner_code = data.get("partner") or (ctx.system.partner.code if ctx.system.partner_id else None)
    order = Order.objects.filter(partner__code=partner_code, external_id=external_id).first()
    if order is None:
        raise Unmappable(f"There is no order {external_id} from {partner_code or 'any partner'}.")
    return order


def _shipment(ctx: Applying, data: dict) -> Shipment:
    pk = _int(need(data, "shipment_id"), "shipment_id")
    shipment = Shipment.objects.filter(pk=pk).select_related("location").first()
    if shipment is None:
        raise Unmappable(f"There is no shipment {pk}.")
    locations = set(ctx.system.locations.values_list("pk", flat=True))
    if locations and shipment.location_id not in locations:
        raise Unmappable(f"Shipment {pk} is at {shipment.location.code}, which {ctx.system.slug} does not run.")
    return shipment


def _validated_order(body: dict) -> dict:
    serializer = OrderInputSerializer(data=body)
    if not serializer.is_valid():
        raise Unmappable(f"The order cannot be read: {json.dumps(serializer.errors, default=str)[:400]}")
    return serializer.validated_data


def _take_in(ctx: Applying, body: dict, *, is_test: bool = False) -> None:
    if not ctx.system.partner_id:
        raise Unmappable(f"{ctx.system.slug} names no partner whose orders it sends.")
    data = _validated_order(body)
    ctx.about(f"order:{data['external_id']}")
    outcome = intake.order_intake(
        partner=ctx.system.partner,
        data=data,
        body_fingerprint=fingerprint(body),
        actor=ctx.actor,
        source_system=ctx.source,
        is_test=is_test,
    )
    ctx.order = ctx.event.order = outcome.order
    if not outcome.created:
        ctx.notes.append(f"Order {data['external_id']} was received before.")


# --- Shopify ----------------------------------------------------------------------------


def shopify_address(address) -> dict:
    address = address if isinstance(address, dict) else {}
    names = " ".join(str(address.get(k) or "") for k in ("first_name", "last_name")).strip()
    return {
        "name": str(address.get("name") or names),
        "line1": str(address.get("address1") or ""),
        "line2": str(address.get("address2") or ""),
        "city": str(address.get("city") or ""),
        "region": str(address.get("province_code") or address.get("province") or ""),
        "postal_code": str(address.get("zip") or ""),
        "country": str(address.get("country_code") or ""),
    }


def shopify_service_level(system: ExternalSystem, payload: dict) -> str:
    for line in payload.get("shipping_lines") or []:
        for key in (line.get("code"), line.get("title")):
            if key:
                found = ShippingMapping.objects.filter(system=system, shipping_code__iexact=key).first()
                if found:
                    return found.service_level
    return "standard"


def shopify_order_create(ctx: Applying) -> None:
    payload = ctx.payload
    customer = payload.get("customer") if isinstance(payload.get("customer"), dict) else {}
    address = shopify_address(need(payload, "shipping_address"))
    lines = []
    for number, item in enumerate(need(payload, "line_items"), start=1):
        if not isinstance(item, dict) or not item.get("sku"):
            raise Unmappable(f"Line item {number} has no SKU.")
        lines.append({"sku": str(item["sku"]), "quantity": item.get("quantity"), "unit_price": str(item.get("price", "0"))})
    customer_name = " ".join(str(customer.get(k) or "") for k in ("first_name", "last_name")).strip()
    body = {
        "external_id": shopify_id(payload, "Order"),
        "placed_at": need(payload, "created_at"),
        "currency": need(payload, "currency"),
        "service_level": shopify_service_level(ctx.system, payload),
        "customer": {
            "name": customer_name or address["name"] or str(payload.get("email") or "Shopify customer"),
            "email": str(payload.get("email") or payload.get("contact_email") or customer.get("email") or ""),
        },
        "shipping_address": address,
        "lines": lines,
    }
    _take_in(ctx, body, is_test=payload.get("test") is True)


def _address_changes(order: Order, wanted: dict) -> dict:
    return {name: value for name, value in wanted.items() if name in ADDRESS_FIELDS and getattr(order, f"ship_{name}") != value}


def shopify_order_updated(ctx: Applying) -> None:
    order = ctx.about(f"order:{shopify_id(ctx.payload, 'Order')}", _order_of(ctx.system, shopify_id(ctx.payload, "Order")))
    changes = _address_changes(order, shopify_address(need(ctx.payload, "shipping_address")))
    if not changes:
        ctx.notes.append("No change to the shipping address.")
        return
    addresses.order_change_address(order=order, changes=changes, actor=ctx.actor, source_system=ctx.source)


def _cancel(ctx: Applying, order: Order, reason: str) -> None:
    if order.status == OrderStatus.CANCELLED:
        ctx.notes.append("The order was cancelled already.")
        return
    lifecycle.order_cancel(order=order, reason=reason[:200], actor=ctx.actor)


def shopify_order_cancelled(ctx: Applying) -> None:
    external_id = shopify_id(ctx.payload, "Order")
    order = ctx.about(f"order:{external_id}", _order_of(ctx.system, external_id))
    _cancel(ctx, order, f"Cancelled in the storefront ({ctx.payload.get('cancel_reason') or 'no reason given'})")


def shopify_inventory_level(ctx: Applying) -> None:
    item, place = str(need(ctx.payload, "inventory_item_id")), str(need(ctx.payload, "location_id"))
    gid = ctx.payload.get("admin_graphql_api_id")
    if isinstance(gid, str) and "inventory_item_id=" in gid:  # exact, where the number was rounded
        item = gid.rsplit("inventory_item_id=", 1)[1]
    ctx.about(f"stock:{item}@{place}")
    available = ctx.payload.get("available")
    if available is not None:
        available = _int(available, "available")
    ReportedStock.objects.update_or_create(
        system=ctx.system,
        item_ref=item,
        location_ref=place,
        defaults={
            "quantity": available,
            "reported_at": ctx.event.occurred_at,
            "event": ctx.event,
            # Beside our figures where the storefront names the item and the place as we do.
            "sku": Sku.objects.filter(code=item).first(),
            "location": Location.objects.filter(code=place).first(),
        },
    )
    if available is None:
        ctx.notes.append("The storefront does not track this item's stock.")


# --- generic envelopes -----------------------------------------------------------------


def _data(ctx: Applying) -> dict:
    data = ctx.payload.get("data")
    if not isinstance(data, dict):
        raise Unmappable("The envelope has no data object.")
    return data


def _shipment_subject(ctx: Applying) -> Shipment:
    shipment = _shipment(ctx, _data(ctx))
    ctx.about(f"shipment:{shipment.pk}", shipment.order_id)
    return shipment


def wms_picked(ctx: Applying) -> None:
    shipments.shipment_pick(shipment=_shipment_subject(ctx), actor=ctx.actor, source_system=ctx.source)


def wms_short_picked(ctx: Applying) -> None:
    shipment = _shipment_subject(ctx)
    picked = {}
    for entry in need(_data(ctx), "lines"):
        if not isinstance(entry, dict):
            raise Unmappable("Each of data.lines needs order_line_id and picked.")
        picked[_int(need(entry, "order_line_id"), "order_line_id")] = _int(entry.get("picked", 0), "picked")
    shipments.shipment_short_pick(shipment=shipment, picked=picked, actor=ctx.actor, source_system=ctx.source)


def wms_packed(ctx: Applying) -> None:
    shipments.shipment_pack(shipment=_shipment_subject(ctx), actor=ctx.actor)


def wms_shipped(ctx: Applying) -> None:
    shipment = _shipment_subject(ctx)
    data = _data(ctx)
    shipments.shipment_ship(
        shipment=shipment,
        carrier=str(data.get("carrier") or shipment.carrier or "")[:64],
        tracking_number=str(need(data, "tracking_number"))[:100],
        actor=ctx.actor,
        source_system=ctx.source,
    )


def wms_label_failed(ctx: Applying) -> None:
    shipment = _shipment_subject(ctx)
    reason = str(_data(ctx).get("reason") or "no reason given")
    shipments.shipment_label_failed(shipment=shipment, reason=reason, actor=ctx.actor, source_system=ctx.source)


def wms_delivered(ctx: Applying) -> None:
    shipments.shipment_deliver(shipment=_shipment_subject(ctx), actor=ctx.actor)


def wms_counted(ctx: Applying) -> None:
    try:
        location, counts = drift.read_counts(ctx.system, _data(ctx))
    except drift.UnreadableCounts as unreadable:
        raise Unmappable(str(unreadable)) from None
    ctx.about(f"count:{location.code}")
    result = drift.counts_reconcile_locked(
        system=ctx.system, location=location, counts=counts, counted_at=ctx.event.occurred_at, event=ctx.event
    )
    ctx.notes.append(f"Counts: {result}.")


def erp_invoice_posted(ctx: Applying) -> None:
    data = _data(ctx)
    shipment = _shipment(ctx, data) if data.get("shipment_id") not in (None, "") else None
    number = str(need(data, "invoice_number"))[:100]
    order = ctx.about(f"invoice:{number}", shipment.order_id if shipment else _generic_order(ctx, data))
    posted = Invoice.objects.filter(system=ctx.system, number=number).exclude(order=order, shipment=shipment).first()
    if posted is not None:
        raise Unmappable(f"Invoice {number} was posted before for another order or shipment (order {posted.order.display_name}).")
    invoice, _ = Invoice.objects.update_or_create(
        system=ctx.system,
        number=number,
        defaults={
            "order": order,
            "shipment": shipment,
            "amount": _decimal(data["amount"], "amount") if data.get("amount") is not None else None,
            "currency": str(data.get("currency") or "")[:3],
            "posted_at": ctx.event.occurred_at,
            "event": ctx.event,
        },
    )
    if invoices.invoice_settles_locked(invoice, actor=ctx.actor):
        ctx.notes.append("It answers a shipment that was waiting for its invoice.")


def erp_credit_hold_placed(ctx: Applying) -> None:
    data = _data(ctx)
    order = _generic_order(ctx, data)
    order = ctx.about(f"credit:{order.pk}", order)
    exception_raise(
        code="credit_hold",
        order=order,
        actor=ctx.actor,
        source_system=ctx.source,
        summary=f"The ERP placed a credit hold: {data.get('reason') or 'no reason given'}"[:300],
        detail={"reason": str(data.get("reason") or ""), "inbound_event": ctx.event.pk},
    )


def erp_credit_hold_released(ctx: Applying) -> None:
    data = _data(ctx)
    order = _generic_order(ctx, data)
    order = ctx.about(f"credit:{order.pk}", order)
    holds = FulfillmentException.objects.filter(order=order, type__code="credit_hold", status__in=OPEN_STATUSES)
    if not holds.exists():
        ctx.notes.append("There was no open credit hold.")
    for hold in holds.order_by("pk"):
        exception_resolve(
            exception=hold,
            note=f"The ERP released the credit hold{': ' + str(data['reason']) if data.get('reason') else ''}.",
            action="credit_hold_released",
            actor=ctx.actor,
        )


def storefront_order_created(ctx: Applying) -> None:
    data = _data(ctx)
    _take_in(ctx, {key: value for key, value in data.items() if key != "test"}, is_test=data.get("test") is True)


def storefront_order_cancelled(ctx: Applying) -> None:
    data = _data(ctx)
    order = _generic_order(ctx, data)
    order = ctx.about(f"order:{order.external_id}", order)
    _cancel(ctx, order, f"Cancelled in the storefront ({data.get('reason') or 'no reason given'})")


def storefront_address_changed(ctx: Applying) -> None:
    data = _data(ctx)
    order = _generic_order(ctx, data)
    order = ctx.about(f"order:{order.external_id}", order)
    serializer = AddressChangeSerializer(data=need(data, "shipping_address"), partial=True)
    if not serializer.is_valid():
        raise Unmappable(f"The address cannot be read: {json.dumps(serializer.errors, default=str)[:400]}")
    changes = _address_changes(order, dict(serializer.validated_data))
    if not changes:
        ctx.notes.append("No change to the shipping address.")
        return
    addresses.order_change_address(order=order, changes=changes, actor=ctx.actor, source_system=ctx.source)


Handler = Callable[[Applying], None]

HANDLERS: dict[tuple[str, str], Handler] = {
    (Adapter.SHOPIFY, "orders/create"): shopify_order_create,
    (Adapter.SHOPIFY, "orders/updated"): shopify_order_updated,
    (Adapter.SHOPIFY, "orders/cancelled"): shopify_order_cancelled,
    (Adapter.SHOPIFY, "inventory_levels/update"): shopify_inventory_level,
    (Adapter.GENERIC_WMS, "shipment.picked"): wms_picked,
    (Adapter.GENERIC_WMS, "shipment.short_picked"): wms_short_picked,
    (Adapter.GENERIC_WMS, "shipment.packed"): wms_packed,
    (Adapter.GENERIC_WMS, "shipment.shipped"): wms_shipped,
    (Adapter.GENERIC_WMS, "shipment.label_failed"): wms_label_failed,
    (Adapter.GENERIC_WMS, "shipment.delivered"): wms_delivered,
    (Adapter.GENERIC_WMS, "inventory.counted"): wms_counted,
    (Adapter.GENERIC_ERP, "invoice.posted"): erp_invoice_posted,
    (Adapter.GENERIC_ERP, "credit_hold.placed"): erp_credit_hold_placed,
    (Adapter.GENERIC_ERP, "credit_hold.released"): erp_credit_hold_released,
    (Adapter.GENERIC_STOREFRONT, "order.created"): storefront_order_created,
    (Adapter.GENERIC_STOREFRONT, "order.cancelled"): storefront_order_cancelled,
    (Adapter.GENERIC_STOREFRONT, "order.address_changed"): storefront_address_changed,
}


def handler_for(system: ExternalSystem, topic: str) -> Handler:
    handler = HANDLERS.get((system.adapter, topic))
    if handler is None:
        raise Unmappable(f"{system.get_adapter_display()} sends no topic {topic or '(none)'!r} that we know.")
    return handler
