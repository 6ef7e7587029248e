"""The order's lifecycle: ready, hold and release, backorder, hand-over to the warehouse, cancellation of
the order or of a line, and a line's SKU substituted.

Each public function is one transaction: it locks the order (then its shipments, then their stock),
runs one transition and writes the events that explain it.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import F, Q

from core.actors import Actor
from core.errors import Conflict, InvalidInput
from core.fsm import IllegalTransition
from exceptions import services as exception_services
from exceptions.models import OPEN_STATUSES, FulfillmentException
from inventory.models import Sku

from .. import events
from ..checks import too_many_base_units
from ..errors import OrderError
from ..models import (
    Order,
    OrderLine,
    OrderStatus,
    Shipment,
    ShipmentStatus,
    forget_loaded,
)
from .locks import lock_stock_of, order_lock, order_transition_locked, shipment_transition_locked, shipments_locked
from .reservations import cancel_shipment_locked, release_backed_locked

# The hold reason of an order held by its blocking exceptions: the hold lifts itself when the last one closes.
HOLD_FOR_EXCEPTIONS = "Open blocking exception"

FINISHED = [OrderStatus.SHIPPED, OrderStatus.DELIVERED, OrderStatus.CANCELLED]


@transaction.atomic
def order_mark_ready(*, order: Order, actor: Actor) -> Order:
    return order_mark_ready_locked(order_lock(order), actor=actor)


def order_mark_ready_locked(order: Order, *, actor: Actor) -> Order:
    """order_mark_ready for an order the caller holds locked (or has just stored) in its transaction."""
    return order_transition_locked(order, "mark_ready", actor=actor)


@transaction.atomic
def order_hold(*, order: Order, reason: str, actor: Actor) -> Order:
    return order_hold_locked(order_lock(order), reason=reason, actor=actor)


def order_hold_locked(order: Order, *, reason: str, actor: Actor, data: dict | None = None) -> Order:
    """order_hold for an order the caller holds locked."""
    return order_transition_locked(
        order, "hold", actor=actor, fields=["hold_reason"], data={"reason": reason, **(data or {})}, reason=reason
    )


@transaction.atomic
def order_release_hold(*, order: Order, actor: Actor) -> Order:
    return order_release_hold_locked(order_lock(order), actor=actor)


def order_release_hold_locked(order: Order, *, actor: Actor, data: dict | None = None) -> Order:
    """order_release_hold for an order the caller holds locked."""
    return order_transition_locked(order, "release_hold", actor=actor, fields=["hold_reason"], data=data)


@transaction.atomic
def order_backorder(*, order: Order, actor: Actor, short: dict | None = None) -> Order:
    return order_backorder_locked(order_lock(order), actor=actor, short=short)


def order_backorder_locked(order: Order, *, actor: Actor, short: dict | None = None) -> Order:
    """order_backorder for an order the caller holds locked."""
    return order_transition_locked(order, "backorder", actor=actor, data={"short": short or {}})


@transaction.atomic
def order_retry_allocation(*, order: Order, actor: Actor) -> Order:
    return order_transition_locked(order_lock(order), "retry_allocation", actor=actor)


@transaction.atomic
def order_approve_split(*, order: Order, actor: Actor) -> Order:
    return order_transition_locked(order_lock(order), "approve_split", actor=actor)


# --- to the warehouse ------------------------------------------------------------------------


@transaction.atomic
def order_release(*, order: Order, actor: Actor) -> Order:
    """Hand an allocated order to the warehouse: it and its planned shipments become released."""
    return order_release_locked(order_lock(order), actor=actor)


def order_release_locked(order: Order, *, actor: Actor) -> Order:
    """order_release for an order the caller holds locked."""
    order_transition_locked(order, "release", actor=actor)
    release_to_warehouse_locked(order, shipments_locked(order, [ShipmentStatus.PLANNED]), actor=actor)
    return order


def release_to_warehouse_locked(order: Order, shipments: list[Shipment], *, actor: Actor) -> None:
    """Release the shipments and record the one message that tells the warehouse system about them; the caller
    holds the order's and the shipments' locks."""
    released = []
    for shipment in shipments:
        shipment_transition_locked(shipment, "release", actor=actor)
        released.append(
            {
                "shipment": shipment.pk,
                "location": shipment.location_id,
                "lines": [{"line": line.order_line_id, "quantity": line.quantity} for line in shipment.lines.all()],
            }
        )
    events.order_sent(order, name="release_to_wms", actor=actor, data={"shipments": released})


RELEASE_WAVE = Actor.job("release_wave")


def release_wave(*, limit: int = 500, actor: Actor = RELEASE_WAVE) -> int:
    """Release allocated orders to the warehouse, oldest first, each in a transaction of its own.

    Orders that another worker is handling are skipped (SKIP LOCKED), and an order that may not go
    (a blocking exception opened meanwhile) stays allocated.
    """
    released = 0
    ids = list(
        Order.objects.filter(status=OrderStatus.ALLOCATED).order_by("created_at", "pk").values_list("pk", flat=True)[:limit]
    )
    for pk in ids:
        with transaction.atomic():
            order = (
                Order.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("partner")
                .filter(pk=pk, status=OrderStatus.ALLOCATED)
                .first()
            )
            if order is None:
                continue
            try:
                order_release_locked(order, actor=actor)
                released += 1
            except IllegalTransition:
                transaction.set_rollback(True)
    return released


def tell_warehouse_of_cancellation_locked(order: Order, shipments: list[dict], *, actor: Actor, reason: str) -> None:
    """Record the message that tells the warehouse system to stop work it was given (the release told it of these
    shipments); the caller holds the order's lock."""
    if shipments:
        events.order_sent(order, name="cancel_to_wms", actor=actor, data={"shipments": shipments, "reason": reason})


# --- cancelling ---------------------------------------------------------------------------------


@transaction.atomic
def order_cancel(*, order: Order, reason: str, actor: Actor, operator_minutes: int = 0) -> Order:
    """Cancel the order, release every reservation it holds, cancel its open shipments and close its open
    exceptions (there is nothing left to fix)."""
    return order_cancel_locked(order_lock(order), reason=reason, actor=actor, operator_minutes=operator_minutes)


def order_cancel_locked(order: Order, *, reason: str, actor: Actor, operator_minutes: int = 0) -> Order:
    """order_cancel for an order the caller holds locked."""
    order_transition_locked(order, "cancel", actor=actor, fields=["cancel_reason"], data={"reason": reason}, reason=reason)
    shipments = shipments_locked(order, [ShipmentStatus.PLANNED, ShipmentStatus.RELEASED])
    at_the_warehouse = [
        {"shipment": shipment.pk, "location": shipment.location_id, "cancelled": True}
        for shipment in shipments
        if shipment.status == ShipmentStatus.RELEASED
    ]
    lock_stock_of(shipments)
    for shipment in shipments:
        cancel_shipment_locked(shipment, actor=actor, reason=reason)
    tell_warehouse_of_cancellation_locked(order, at_the_warehouse, actor=actor, reason=reason)
    OrderLine.objects.filter(order=order, base_quantity__isnull=False).update(
        quantity_cancelled=F("base_quantity") - F("quantity_shipped"), quantity_allocated=0, cancelled=True
    )
    OrderLine.objects.filter(order=order, base_quantity__isnull=True).update(cancelled=True)
    forget_loaded(order)
    open_exceptions = FulfillmentException.objects.filter(order=order, status__in=OPEN_STATUSES).order_by("pk")
    for number, exception in enumerate(open_exceptions):
        exception_services.exception_resolve(
            exception=exception,
            note=f"Order cancelled: {reason}",
            action="cancel_order",
            actor=actor,
            operator_minutes=operator_minutes if number == 0 else 0,
        )
    return order


def _line_locked(order: Order, line: OrderLine) -> OrderLine:
    found = OrderLine.objects.select_for_update(of=("self",)).select_related("sku").filter(pk=line.pk, order=order).first()
    if found is None:
        raise InvalidInput(
            OrderError.INVALID_ORDER, "That line is not part of this order.", fields={"line": ["Not a line of this order."]}
        )
    return found


@transaction.atomic
def order_line_cancel(*, order: Order, line: OrderLine, reason: str, actor: Actor) -> Order:
    """Cancel what is still open of one line, releasing its reservations; the last line cancels the order."""
    order = order_lock(order)
    line = _line_locked(order, line)
    if line.cancelled:
        raise Conflict(OrderError.ILLEGAL_TRANSITION, f"Line {line.line_number} is already cancelled.")
    if order.status in FINISHED:
        raise IllegalTransition(order, "cancel", "its lines can no longer change.")
    shipments = shipments_locked(order, Shipment.ACTIVE)
    if any(
        sh.status in (ShipmentStatus.PICKED, ShipmentStatus.PACKED) and sh.lines.filter(order_line=line).exists()
        for sh in shipments
    ):
        raise Conflict(
            OrderError.ILLEGAL_TRANSITION, f"Line {line.line_number} is already picked; the warehouse must put it away first."
        )
    released, at_the_warehouse = 0, []
    lock_stock_of(shipments, line=line)
    for shipment in shipments:
        dropped = []
        for shipment_line in shipment.lines.select_related("order_line").filter(order_line=line):
            released += release_backed_locked(shipment, shipment_line, actor=actor, reason=reason)
            dropped.append({"line": shipment_line.order_line_id, "quantity": shipment_line.quantity})
            shipment_line.delete()
        told = shipment.status == ShipmentStatus.RELEASED
        emptied = not shipment.lines.exists()
        if emptied:
            shipment_transition_locked(shipment, "cancel", actor=actor, data={"reason": f"line {line.line_number} cancelled"})
        if told and dropped:
            at_the_warehouse.append(
                {"shipment": shipment.pk, "location": shipment.location_id, "cancelled": emptied, "lines": dropped}
            )
    tell_warehouse_of_cancellation_locked(order, at_the_warehouse, actor=actor, reason=reason)
    cancelled_units = (line.base_quantity - line.quantity_shipped) if line.base_quantity is not None else 0
    OrderLine.objects.filter(pk=line.pk).update(quantity_allocated=0, quantity_cancelled=cancelled_units, cancelled=True)
    events.order_action(
        order,
        name="cancel_line",
        actor=actor,
        data={"line": line.line_number, "sku": line.sku_code, "reason": reason, "released": released},
    )
    return _after_a_line_cancelled_locked(order, actor=actor, reason=reason, what=f"line {line.line_number} cancelled")


@transaction.atomic
def order_line_cancel_owed(*, order: Order, line: OrderLine, reason: str, actor: Actor) -> Order:
    """Cancel the units of a line that no shipment carries any more (a short pick left them owed).

    Units on a shipment still ship; the order is shipped once nothing more is owed, or cancelled
    if nothing of it shipped and nothing is left.
    """
    order = order_lock(order)
    line = _line_locked(order, line)
    if order.status in FINISHED:
        raise IllegalTransition(order, "cancel", "its lines can no longer change.")
    owed = line.quantity_open if not line.cancelled else 0
    if owed <= 0:
        raise Conflict(
            OrderError.ILLEGAL_TRANSITION,
            f"Line {line.line_number} owes nothing: its units are on a shipment, shipped or cancelled.",
        )
    OrderLine.objects.filter(pk=line.pk).update(
        quantity_cancelled=F("quantity_cancelled") + owed, cancelled=line.quantity_allocated == 0
    )
    events.order_action(
        order,
        name="cancel_line",
        actor=actor,
        data={"line": line.line_number, "sku": line.sku_code, "reason": reason, "owed_units": owed},
    )
    return _after_a_line_cancelled_locked(
        order, actor=actor, reason=reason, what=f"line {line.line_number}'s owed units cancelled"
    )


def _after_a_line_cancelled_locked(order: Order, *, actor: Actor, reason: str, what: str) -> Order:
    """What a cancelled line leaves of its order (the caller holds the order's lock). With nothing of it shipped
    and every line cancelled, the order is cancelled. Units that shipped stay shipped: an order with some is
    shipped once nothing more is owed, never cancelled."""
    forget_loaded(order)
    if not order.lines.filter(Q(cancelled=False) | Q(quantity_shipped__gt=0)).exists():
        return order_cancel_locked(order, reason=f"Every line cancelled: {reason}", actor=actor)
    return shipped_once_nothing_is_owed_locked(order, actor=actor, reason=what)


def nothing_left_to_ship_locked(order: Order) -> bool:
    """No shipment is on its way, and every line still wanted shipped in full (the caller holds the order's lock).

    A short pick the playbook could not place elsewhere leaves units owed outside any shipment:
    the order stays partially shipped until they ship or a person cancels them.
    """
    if order.shipments.filter(status__in=Shipment.ACTIVE).exists():
        return False
    return not order.lines.filter(cancelled=False, base_quantity__gt=F("quantity_shipped") + F("quantity_cancelled")).exists()


def shipped_once_nothing_is_owed_locked(order: Order, *, actor: Actor, reason: str) -> Order:
    """A partially shipped order whose last owed units were just cancelled is shipped (and delivered, if all of it
    was); the caller holds the order's lock."""
    if order.status != OrderStatus.PARTIALLY_SHIPPED or not nothing_left_to_ship_locked(order):
        return order
    order_transition_locked(order, "ship", actor=actor, data={"reason": reason})
    if not order.shipments.exclude(status__in=[ShipmentStatus.DELIVERED, ShipmentStatus.CANCELLED]).exists():
        order_transition_locked(order, "deliver", actor=actor)
    return order


# --- a line's SKU ----------------------------------------------------------------------------


@transaction.atomic
def order_line_substitute(*, order: Order, line: OrderLine, substitute: Sku, actor: Actor) -> Order:
    """Ship a configured substitute instead of a line's SKU, the quantity converted to its base unit."""
    order = order_lock(order)
    line = _line_locked(order, line)
    if line.sku is None:
        raise InvalidInput(
            OrderError.INVALID_ORDER, "Choose a line with a known SKU.", fields={"line": ["Not a line with a known SKU."]}
        )
    if line.quantity_allocated or line.quantity_shipped or line.cancelled:
        raise Conflict(
            OrderError.ILLEGAL_TRANSITION,
            f"Line {line.line_number} is already allocated, shipped or cancelled; release it first.",
        )
    if not line.sku.substitutes.filter(pk=substitute.pk).exists():
        raise InvalidInput(
            OrderError.INVALID_ORDER,
            f"{substitute.code} is not a configured substitute for {line.sku.code}.",
            fields={"substitute": ["Not a configured substitute."]},
        )
    per_unit = substitute.base_units_per(line.uom)
    if per_unit is None:
        raise InvalidInput(
            OrderError.INVALID_ORDER,
            f"{substitute.code} has no '{line.uom}' unit to convert {line.quantity} {line.uom} into.",
            fields={"substitute": ["Unit not convertible."]},
        )
    too_many = too_many_base_units(line.quantity, line.uom, substitute, per_unit)
    if too_many:
        raise InvalidInput(OrderError.INVALID_ORDER, too_many, fields={"substitute": [too_many]})
    before = {"sku": line.sku.code, "base_quantity": line.base_quantity}
    line.sku, line.sku_code, line.base_quantity = substitute, substitute.code, line.quantity * per_unit
    line.save(update_fields=["sku", "sku_code", "base_quantity"])
    forget_loaded(order)
    events.order_action(
        order,
        name="substitute_sku",
        actor=actor,
        data={"line": line.line_number, "before": before, "after": {"sku": substitute.code, "base_quantity": line.base_quantity}},
    )
    return order
