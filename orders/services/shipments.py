"""What the warehouse reports of a shipment: picked (in full or short), packed, a label that failed,
shipped, delivered. Each public function is one transaction that locks the order, then the shipment.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from core.actors import SYSTEM, Actor
from core.errors import Conflict, InvalidInput
from core.fsm import IllegalTransition
from exceptions.models import FulfillmentException
from exceptions.services import exception_raise
from inventory.services import InsufficientStock, stock_pick, stock_ship, stock_write_off_reserved

from .. import events
from ..errors import OrderError
from ..models import AFTER_RELEASE, Order, OrderLine, OrderStatus, RoutingDecision, Shipment, ShipmentLine, ShipmentStatus
from ..routing import active_rules, evaluate, matching_rule, remainder_rule
from .allocation import order_allocate_remainder_locked, record_decision_locked
from .lifecycle import nothing_left_to_ship_locked
from .locks import lock_stock_of, order_transition_locked, reserved_for_locked, shipment_lock, shipment_transition_locked
from .reservations import PlannedShipment


def _shipment_stock_locked(shipment: Shipment, service, *, actor: Actor, source_system: str) -> list[ShipmentLine]:
    lines = list(shipment.lines.select_related("order_line"))
    if len(lines) > 1:
        lock_stock_of([shipment])
    for line in lines:
        service(
            location_id=shipment.location_id,
            sku_id=line.order_line.sku_id,
            quantity=line.quantity,
            actor=actor,
            reference=f"shipment:{shipment.pk}",
            source_system=source_system,
        )
    return lines


@transaction.atomic
def shipment_pick(*, shipment: Shipment, actor: Actor, source_system: str = "portal") -> Shipment:
    _, shipment = shipment_lock(shipment)
    return _pick_locked(shipment, actor=actor, source_system=source_system)


def _pick_locked(shipment: Shipment, *, actor: Actor, source_system: str) -> Shipment:
    shipment_transition_locked(shipment, "pick", actor=actor)
    _shipment_stock_locked(shipment, stock_pick, actor=actor, source_system=source_system)
    return shipment


@transaction.atomic
def shipment_pack(*, shipment: Shipment, actor: Actor) -> Shipment:
    _, shipment = shipment_lock(shipment)
    return shipment_transition_locked(shipment, "pack", actor=actor)


@transaction.atomic
def shipment_label_failed(*, shipment: Shipment, reason: str, actor: Actor, source_system: str = "portal") -> Shipment:
    """The carrier label could not be made: a person must look (address, carrier, service).

    Only the warehouse makes labels, so only between release and leaving the building.
    """
    order, shipment = shipment_lock(shipment)
    if shipment.status not in (ShipmentStatus.RELEASED, ShipmentStatus.PICKED, ShipmentStatus.PACKED):
        raise Conflict(
            OrderError.ILLEGAL_TRANSITION,
            f"Shipment {shipment.pk} is {shipment.get_status_display().lower()}; labels fail only between release and shipping.",
            status=shipment.status,
            transition="label_failed",
        )
    exception_raise(
        code="label_failure",
        order=order,
        shipment=shipment,
        actor=actor,
        source_system=source_system,
        summary=f"Label failed at {shipment.location.code}: {reason}"[:300],
        detail={"reason": reason},
    )
    return shipment


@transaction.atomic
def shipment_ship(
    *, shipment: Shipment, carrier: str, tracking_number: str, actor: Actor, source_system: str = "portal"
) -> Shipment:
    """The shipment left the building; the order is shipped once nothing is left open."""
    order, shipment = shipment_lock(shipment)
    shipment_transition_locked(
        shipment,
        "ship",
        actor=actor,
        fields=["carrier", "tracking_number", "shipped_at"],
        data={"carrier": carrier, "tracking_number": tracking_number},
        carrier=carrier,
        tracking_number=tracking_number,
        shipped_at=timezone.now(),
    )
    for line in _shipment_stock_locked(shipment, stock_ship, actor=actor, source_system=source_system):
        OrderLine.objects.filter(pk=line.order_line_id).update(
            quantity_allocated=F("quantity_allocated") - line.quantity, quantity_shipped=F("quantity_shipped") + line.quantity
        )
    order_transition_locked(
        order, "ship" if nothing_left_to_ship_locked(order) else "ship_part", actor=actor, data={"shipment": shipment.pk}
    )
    return shipment


@transaction.atomic
def shipment_deliver(*, shipment: Shipment, actor: Actor) -> Shipment:
    order, shipment = shipment_lock(shipment)
    shipment_transition_locked(shipment, "deliver", actor=actor, fields=["delivered_at"], delivered_at=timezone.now())
    undelivered = order.shipments.exclude(status__in=[ShipmentStatus.DELIVERED, ShipmentStatus.CANCELLED]).exists()
    if order.status == OrderStatus.SHIPPED and not undelivered:
        order_transition_locked(order, "deliver", actor=actor)
    return shipment


# --- short picks ---------------------------------------------------------------------------


def _write_off_not_found_locked(shipment: Shipment, line: ShipmentLine, *, picked: int, actor: Actor, source_system: str) -> None:
    """Write off the reserved units of a shipment line the warehouse did not find; the caller holds the order's,
    the shipment's and its stock levels' locks.

    A stock count (stock_count_correction) may already have shrunk the reservation below what the
    shipment planned; those units left on_hand with the count and are not written off a second time.
    """
    still_reserved = reserved_for_locked(shipment, line)
    if still_reserved > picked:
        stock_write_off_reserved(
            location_id=shipment.location_id,
            sku_id=line.order_line.sku_id,
            quantity=still_reserved - picked,
            reason="short pick",
            actor=actor,
            reference=f"shipment:{shipment.pk}",
            source_system=source_system,
        )


@transaction.atomic
def shipment_short_pick(
    *, shipment: Shipment, picked: dict[int, int], actor: Actor = SYSTEM, source_system: str = "wms"
) -> RoutingDecision | FulfillmentException | None:
    """The warehouse picked fewer units than planned (`picked`: order line id -> units picked).

    The missing units are written off at that location; the rest is picked. Then the playbook: if the
    order's rule allows another shipment, the short quantity is re-allocated at another location and
    released at once; otherwise a short_pick exception opens for a person.
    """
    order, shipment = shipment_lock(shipment)
    if shipment.status != ShipmentStatus.RELEASED:
        raise IllegalTransition(shipment, "pick")
    lines = list(shipment.lines.select_related("order_line"))
    unknown = set(picked) - {line.order_line_id for line in lines}
    if unknown:
        message = f"Lines {sorted(unknown)} are not part of shipment {shipment.pk}."
        raise InvalidInput(OrderError.INVALID_PLAN, message, fields={"lines": [message]})
    shorts = {}
    if len(lines) > 1:
        lock_stock_of([shipment])
    for line in lines:
        got = picked.get(line.order_line_id, line.quantity)
        if not isinstance(got, int) or not 0 <= got <= line.quantity:
            message = f"Line {line.order_line.line_number}: picked must be between 0 and {line.quantity}."
            raise InvalidInput(OrderError.INVALID_PLAN, message, fields={"lines": [message]})
        if got < line.quantity:
            shorts[line.order_line_id] = line.quantity - got
            _write_off_not_found_locked(shipment, line, picked=got, actor=actor, source_system=source_system)
            OrderLine.objects.filter(pk=line.order_line_id).update(
                quantity_allocated=F("quantity_allocated") - (line.quantity - got)
            )
            if got:
                ShipmentLine.objects.filter(pk=line.pk).update(quantity=got)
            else:
                line.delete()
    short_by_line = {
        str(line.order_line.line_number): shorts[line.order_line_id] for line in lines if line.order_line_id in shorts
    }
    if shipment.lines.exists():
        _pick_locked(shipment, actor=actor, source_system=source_system)
    else:
        shipment_transition_locked(shipment, "cancel", actor=actor, data={"reason": "nothing could be picked"})
    events.order_action(order, name="short_pick", actor=actor, data={"shipment": shipment.pk, "short": short_by_line})
    if not shorts:
        return None
    placed = _place_the_units_short_locked(order, shipment, actor=actor)
    if placed is not None:
        return placed
    first_short = next(line for line in lines if line.order_line_id in shorts)
    return exception_raise(
        code="short_pick",
        order=order,
        line=first_short.order_line,
        shipment=shipment,
        actor=actor,
        source_system=source_system,
        summary=f"Short pick at {shipment.location.code}: " + ", ".join(f"line {n} short {u}" for n, u in short_by_line.items()),
        detail={"short": short_by_line},
    )


def _place_the_units_short_locked(order: Order, short_at: Shipment, *, actor: Actor) -> RoutingDecision | None:
    """The playbook: when the order's rule leaves room for more shipments, reserve the units short at another site
    and release them at once; None when it cannot. The caller holds the order's lock."""
    rule = matching_rule(order, active_rules())
    active = Shipment.objects.filter(order=order, status__in=Shipment.ACTIVE).count()
    room = rule.max_shipments - active if rule.allow_split else 0
    if room < 1:
        return None
    evaluation = evaluate(order, rules=[remainder_rule(rule, excluded_location_id=short_at.location_id, room=room)])
    if not evaluation.plan.filled:
        return None
    plan = [PlannedShipment(loc, assigned) for loc, assigned in evaluation.plan.shipments]
    try:
        with transaction.atomic():
            order_allocate_remainder_locked(order, plan=plan, actor=actor, release=order.status in AFTER_RELEASE)
    except InsufficientStock:
        return None
    return record_decision_locked(order, evaluation, actor, outcome=RoutingDecision.Outcome.PARTIAL)
