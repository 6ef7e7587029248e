"""Order and shipment use cases.

Each public function is one transaction: it locks the order (then its
shipments, always in that order), runs one FSM transition, moves stock through
the inventory services and writes the OrderEvent rows that explain it.
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Case, Exists, F, IntegerField, OuterRef, Q, Value, When
from django.utils import timezone
from django_fsm import ConcurrentTransition, TransitionNotAllowed, can_proceed
from rest_framework.authtoken.models import Token

from exceptions import services as exception_services
from exceptions.models import OPEN_STATUSES, FulfillmentException
from fulfillment.actors import Actor
from fulfillment.errors import Conflict, InvalidInput
from inventory.models import Sku, StockLevel
from inventory.services import stock_pick, stock_release, stock_reserve_many, stock_ship

from . import events
from .addresses import address_problems
from .errors import OrderError
from .models import (
    BASE_QUANTITY_LIMIT,
    HOLDABLE,
    Order,
    OrderEvent,
    OrderLine,
    OrderStatus,
    Partner,
    Shipment,
    ShipmentLine,
    ShipmentStatus,
    forget_related,
    no_blocking_exception_open,
    prefetched,
    remember_related,
)

# The hold reason of an order held by its blocking exceptions: the hold lifts itself when the last one closes.
HOLD_FOR_EXCEPTIONS = "Open blocking exception"


class IllegalTransition(Conflict):
    def __init__(self, obj: Order | Shipment, name: str, reason: str = "") -> None:
        what = "Order" if isinstance(obj, Order) else "Shipment"
        label = _transition_label(obj, name)
        message = f"{what} {obj.pk} is {obj.get_status_display().lower()}; '{label}' is not possible"
        message += f": {reason}" if reason else " from that status."
        super().__init__(OrderError.ILLEGAL_TRANSITION, message, status=obj.status, transition=name)


def _transition_label(obj, name: str) -> str:
    for t in obj._meta.get_field("status").get_all_transitions(type(obj)):
        if t.name == name:
            return t.custom.get("label", name)
    return name


def _failed_condition(obj, name: str) -> str:
    meta = getattr(type(obj), name)._django_fsm
    current = meta.get_transition(obj.status)
    for condition in current.conditions if current else ():
        if not condition(obj):
            return (condition.__doc__ or condition.__name__).strip()
    return ""


def _transition(obj: Order | Shipment, name: str, *, fields: Iterable[str] = (), **kwargs) -> str:
    """Run transition `name` on a locked instance and save it; return the status it left."""
    method = getattr(obj, name)
    from_status = obj.status
    if not can_proceed(method, check_conditions=False):
        raise IllegalTransition(obj, name)
    try:
        method(**kwargs)
    except TransitionNotAllowed:
        raise IllegalTransition(obj, name, _failed_condition(obj, name)) from None
    try:
        obj.save(update_fields=["status", "updated_at", *fields])
    except ConcurrentTransition:
        raise Conflict(
            OrderError.CONCURRENT_UPDATE, "Someone else changed this at the same moment; reload and try again."
        ) from None
    return from_status


def order_lock(order: Order | int) -> Order:
    """Fetch the order with a row lock; the caller must be inside a transaction."""
    pk = order.pk if isinstance(order, Order) else order
    return Order.objects.select_for_update(of=("self",)).select_related("partner").get(pk=pk)


def _shipments_locked(order: Order, statuses: Sequence[str]) -> list[Shipment]:
    return list(Shipment.objects.select_for_update().filter(order=order, status__in=statuses).order_by("pk"))


def _run_order_transition(
    order: Order, name: str, *, actor: Actor, fields: Iterable[str] = (), data: dict | None = None, **kwargs
) -> Order:
    from_status = _transition(order, name, fields=fields, **kwargs)
    events.order_transitioned(order, name=name, from_status=from_status, actor=actor, data=data)
    return order


def _run_shipment_transition(
    shipment: Shipment, name: str, *, actor: Actor, fields: Iterable[str] = (), data: dict | None = None, **kwargs
) -> Shipment:
    from_status = _transition(shipment, name, fields=fields, **kwargs)
    events.shipment_transitioned(shipment, name=name, from_status=from_status, actor=actor, data=data)
    return shipment


# --- creating orders ---------------------------------------------------------


@dataclass(frozen=True)
class Address:
    name: str = ""
    line1: str = ""
    line2: str = ""
    city: str = ""
    region: str = ""
    postal_code: str = ""
    country: str = ""


@dataclass(frozen=True)
class LineInput:
    sku_code: str
    quantity: int
    uom: str = "each"
    unit_price: Decimal = Decimal("0")


@dataclass(frozen=True)
class PlannedShipment:
    """Base units of order lines to reserve and ship from one location."""

    location_id: int
    lines: tuple[tuple[int, int], ...] = field(default_factory=tuple)  # (order_line_id, quantity)


@transaction.atomic
def order_create(**fields) -> Order:
    """Store a received order and its lines (see order_store) in a transaction of its own."""
    order, _ = order_store(**fields)
    # Callers keep this instance around while other services change the order: let it read afresh.
    forget_related(order)
    return order


def _beyond_a_line(quantity: int, uom: str, sku: Sku | None, per_unit: int | None) -> str:
    """Why `quantity` `uom` of `sku` cannot be stored on a line (too many base units), or ""."""
    if not per_unit or quantity * per_unit <= BASE_QUANTITY_LIMIT:
        return ""
    return (
        f"{quantity:,} {uom} of {sku.code} is {quantity * per_unit:,} base units; a line holds at most {BASE_QUANTITY_LIMIT:,}."
    )


def order_store(
    *,
    partner: Partner,
    external_id: str,
    placed_at: datetime,
    customer_name: str,
    lines: Sequence[LineInput],
    actor: Actor,
    address: Address = Address(),
    customer_email: str = "",
    customer_tier: str = "standard",
    service_level: str = "standard",
    currency: str = "USD",
    priority: str | None = None,
    promised_ship_by: datetime | None = None,
    intake_fingerprint: str = "",
) -> tuple[Order, list[OrderLine]]:
    """Store a received order and its lines in the caller's transaction. Lines keep the SKU
    code as sent; the SKU and the base quantity are filled in when the code and unit are known.

    The order comes back with its lines (SKUs loaded) and its empty shipments and exceptions
    recorded as prefetched, so the services that follow read none of them again.
    """
    if not lines:
        raise InvalidInput(
            OrderError.INVALID_ORDER, "An order needs at least one line.", fields={"lines": ["At least one line is required."]}
        )
    for number, line in enumerate(lines, start=1):
        if not isinstance(line.quantity, int) or line.quantity <= 0:
            raise InvalidInput(
                OrderError.INVALID_ORDER,
                f"Line {number}: quantity must be above zero.",
                fields={"lines": {number: ["Quantity must be above zero."]}},
            )
    order = Order(
        partner=partner,
        external_id=external_id,
        placed_at=placed_at,
        customer_name=customer_name,
        customer_email=customer_email,
        customer_tier=customer_tier,
        service_level=service_level,
        currency=currency.upper(),
        priority=priority or partner.default_priority,
        promised_ship_by=promised_ship_by,
        ship_name=address.name,
        ship_line1=address.line1,
        ship_line2=address.line2,
        ship_city=address.city,
        ship_region=address.region,
        ship_postal_code=address.postal_code,
        ship_country=address.country.upper(),
        total_amount=sum((Decimal(line.unit_price) * line.quantity for line in lines), Decimal("0")),
        intake_fingerprint=intake_fingerprint,
    )
    try:
        # The partner is a loaded instance: skip re-checking that it exists (one query less per order).
        order.full_clean(exclude=["status", "partner"], validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        raise InvalidInput(OrderError.INVALID_ORDER, "The order is not valid.", fields=exc.message_dict) from None
    try:
        with transaction.atomic():
            order.save()
    except IntegrityError:
        raise Conflict(OrderError.DUPLICATE_ORDER, f"Partner {partner.code} already sent an order {external_id}.") from None
    skus = {sku.code: sku for sku in Sku.objects.filter(code__in={line.sku_code for line in lines}, active=True).order_by()}
    rows = []
    for number, line in enumerate(lines, start=1):
        sku = skus.get(line.sku_code)
        per_unit = sku.base_units_per(line.uom) if sku else None
        too_many = _beyond_a_line(line.quantity, line.uom, sku, per_unit)
        if too_many:
            # Keyed like the serializer's line errors (from 0), as the partner sent the lines.
            raise InvalidInput(
                OrderError.INVALID_ORDER,
                f"Line {number}: {too_many}",
                fields={"lines": {str(number - 1): {"quantity": [too_many]}}},
            )
        rows.append(
            OrderLine(
                order=order,
                line_number=number,
                sku_code=line.sku_code,
                sku=sku,
                quantity=line.quantity,
                uom=line.uom,
                unit_price=line.unit_price,
                base_quantity=line.quantity * per_unit if per_unit else None,
            )
        )
    OrderLine.objects.bulk_create(rows)
    events.order_created(order, actor=actor, data={"lines": len(rows)})
    remember_related(order, "lines", rows)
    remember_related(order, "shipments", [])
    remember_related(order, "exceptions", [])
    return order, rows


# --- lifecycle -----------------------------------------------------------------


@transaction.atomic
def order_mark_ready(*, order: Order, actor: Actor) -> Order:
    return order_mark_ready_locked(order_lock(order), actor=actor)


def order_mark_ready_locked(order: Order, *, actor: Actor) -> Order:
    """order_mark_ready for an order the caller holds locked (or has just stored) in its transaction."""
    return _run_order_transition(order, "mark_ready", actor=actor)


@transaction.atomic
def order_hold(*, order: Order, reason: str, actor: Actor) -> Order:
    order = order_lock(order)
    return _run_order_transition(order, "hold", actor=actor, fields=["hold_reason"], data={"reason": reason}, reason=reason)


@transaction.atomic
def order_release_hold(*, order: Order, actor: Actor) -> Order:
    order = order_lock(order)
    return _run_order_transition(order, "release_hold", actor=actor, fields=["hold_reason"])


def _validate_plan(order: Order, plan: Sequence[PlannedShipment]) -> dict[int, OrderLine]:
    known = prefetched(order, "lines")
    lines = {line.pk: line for line in (order.lines.select_related("sku") if known is None else known)}
    planned: dict[int, int] = defaultdict(int)
    if not plan:
        raise InvalidInput(OrderError.INVALID_PLAN, "A plan needs at least one shipment.")
    for shipment in plan:
        if not shipment.lines:
            raise InvalidInput(OrderError.INVALID_PLAN, "Every planned shipment needs at least one line.")
        for line_id, quantity in shipment.lines:
            if line_id not in lines:
                raise InvalidInput(OrderError.INVALID_PLAN, f"Line {line_id} is not part of order {order.pk}.")
            if quantity <= 0:
                raise InvalidInput(OrderError.INVALID_PLAN, "Planned quantities must be above zero.")
            planned[line_id] += quantity
    for line in lines.values():
        if planned[line.pk] != line.quantity_open:
            raise InvalidInput(
                OrderError.INVALID_PLAN,
                f"Line {line.line_number} ({line.sku_code}) has {line.quantity_open} open; the plan covers {planned[line.pk]}.",
            )
    return lines


def _reserve_plan(order: Order, plan: Sequence[PlannedShipment], lines: dict[int, OrderLine], actor: Actor) -> list[Shipment]:
    """Reserve and record the plan: one reservation statement for all of it, whatever the number of lines.

    The reservation comes first: when it falls short (InsufficientStock) nothing has been written yet.
    """
    stock_reserve_many(
        items=[(planned.location_id, lines[line_id].sku_id, quantity) for planned in plan for line_id, quantity in planned.lines],
        actor=actor,
        reference=f"order:{order.pk}",
    )
    shipments, shipment_lines, allocated = [], [], defaultdict(int)
    for planned in plan:
        shipment = Shipment.objects.create(order=order, location_id=planned.location_id)
        remember_related(shipment, "lines", [])
        for line_id, quantity in planned.lines:
            shipment_line = ShipmentLine(shipment=shipment, order_line_id=line_id, quantity=quantity)
            shipment_lines.append(shipment_line)
            prefetched(shipment, "lines").append(shipment_line)
            allocated[line_id] += quantity
        shipments.append(shipment)
    ShipmentLine.objects.bulk_create(shipment_lines)
    OrderLine.objects.filter(pk__in=allocated).update(
        quantity_allocated=F("quantity_allocated")
        + Case(*(When(pk=pk, then=Value(q)) for pk, q in allocated.items()), output_field=IntegerField())
    )
    # Everything is stored: keep the caller's loaded order in step (nothing above changed it if a reservation failed).
    for line_id, quantity in allocated.items():
        lines[line_id].quantity_allocated += quantity
    if prefetched(order, "shipments") is not None:
        prefetched(order, "shipments").extend(shipments)
    return shipments


@transaction.atomic
def order_allocate(
    *, order: Order, plan: Sequence[PlannedShipment], actor: Actor, requires_approval: bool = False, data: dict | None = None
) -> Order:
    """Reserve the plan's stock and create its planned shipments.

    The order becomes allocated, or awaiting approval when a split needs a
    person's yes (the stock stays reserved meanwhile). If any reservation
    fails, InsufficientStock rolls the whole plan back.
    """
    return order_allocate_locked(order_lock(order), plan=plan, actor=actor, requires_approval=requires_approval, data=data)


def order_allocate_locked(
    order: Order, *, plan: Sequence[PlannedShipment], actor: Actor, requires_approval: bool = False, data: dict | None = None
) -> Order:
    """order_allocate for an order the caller holds locked (or has just stored) in its transaction."""
    name = "propose_split" if requires_approval else "allocate"
    if not can_proceed(getattr(order, name), check_conditions=False):
        raise IllegalTransition(order, name)
    lines = _validate_plan(order, plan)
    shipments = _reserve_plan(order, plan, lines, actor)
    payload = {"shipments": [{"id": s.pk, "location_id": s.location_id} for s in shipments], **(data or {})}
    return _run_order_transition(order, name, actor=actor, data=payload)


@transaction.atomic
def order_backorder(*, order: Order, actor: Actor, short: dict | None = None) -> Order:
    order = order_lock(order)
    return _run_order_transition(order, "backorder", actor=actor, data={"short": short or {}})


@transaction.atomic
def order_retry_allocation(*, order: Order, actor: Actor) -> Order:
    order = order_lock(order)
    return _run_order_transition(order, "retry_allocation", actor=actor)


@transaction.atomic
def order_approve_split(*, order: Order, actor: Actor) -> Order:
    order = order_lock(order)
    return _run_order_transition(order, "approve_split", actor=actor)


def _lock_stock_of(shipments: Sequence[Shipment], *, line: OrderLine | None = None) -> None:
    """Lock the stock levels the shipments' lines (or only `line`'s) draw on, in location and SKU order,
    before any of them changes.

    Every path that changes several stock levels in one transaction takes them in this order
    (inventory's stock_reserve_many too). Taken line by line instead, two orders listing the same
    SKUs in opposite order would each hold a row the other waits for.
    """
    if not shipments:
        return
    drawn = ShipmentLine.objects.filter(
        shipment__in=[shipment.pk for shipment in shipments],
        shipment__location_id=OuterRef("location_id"),
        order_line__sku_id=OuterRef("sku_id"),
    )
    if line is not None:
        drawn = drawn.filter(order_line=line)
    levels = StockLevel.objects.filter(Exists(drawn)).order_by("location_id", "sku_id")
    list(levels.select_for_update(of=("self",)).values_list("pk", flat=True))


def reserved_for(shipment: Shipment, line: ShipmentLine) -> int:
    """How much of a shipment line the stock level still holds reserved (and not picked), with the level locked.

    A physical count (stock_count_correction) may have shrunk reservations below what shipments planned.
    """
    # No ordering: StockLevel's default one joins location and SKU, and FOR UPDATE would lock their rows too.
    level = (
        StockLevel.objects.select_for_update(of=("self",))
        .filter(location_id=shipment.location_id, sku_id=line.order_line.sku_id)
        .order_by("pk")
        .first()
    )
    return min(line.quantity, (level.reserved - level.picked) if level else 0)


def _release_backed(shipment: Shipment, line: ShipmentLine, *, actor: Actor, reason: str) -> int:
    """Release a shipment line's reservation, or as much of it as the stock level still holds.

    A physical count (stock_count_correction) may have shrunk reservations below
    what shipments planned; what is no longer reserved cannot be released twice.
    """
    backed = reserved_for(shipment, line)
    if backed > 0:
        stock_release(
            location_id=shipment.location_id,
            sku_id=line.order_line.sku_id,
            quantity=backed,
            actor=actor,
            reference=f"order:{shipment.order_id}",
            reason=reason,
        )
    return backed


def _cancel_shipment_releasing_stock(shipment: Shipment, *, actor: Actor, reason: str) -> None:
    """Give back a not-yet-picked shipment's reservations and cancel it (caller holds the locks)."""
    _run_shipment_transition(shipment, "cancel", actor=actor, data={"reason": reason})
    for line in shipment.lines.select_related("order_line"):
        _release_backed(shipment, line, actor=actor, reason=reason)
        OrderLine.objects.filter(pk=line.order_line_id).update(quantity_allocated=F("quantity_allocated") - line.quantity)


def order_give_back_plan(order: Order, *, actor: Actor, reason: str) -> None:
    """Cancel the order's planned (not yet released) shipments and release their stock; caller holds the order lock."""
    shipments = _shipments_locked(order, [ShipmentStatus.PLANNED])
    _lock_stock_of(shipments)
    for shipment in shipments:
        _cancel_shipment_releasing_stock(shipment, actor=actor, reason=reason)


@transaction.atomic
def order_replan_start(*, order: Order, actor: Actor, reason: str) -> Order:
    """A proposed split no longer holds: give its stock back and make the order ready to plan again."""
    order = order_lock(order)
    _run_order_transition(order, "replan", actor=actor, data={"reason": reason})
    order_give_back_plan(order, actor=actor, reason=reason)
    return order


@transaction.atomic
def order_reallocate_start(*, order: Order, actor: Actor, reason: str) -> Order:
    """Give back what the order holds (before release) and make it ready to allocate afresh."""
    order = order_lock(order)
    _run_order_transition(order, "reallocate", actor=actor, data={"reason": reason})
    order_give_back_plan(order, actor=actor, reason=reason)
    return order


@transaction.atomic
def order_allocate_remainder(*, order: Order, plan: Sequence[PlannedShipment], actor: Actor, release: bool) -> list[Shipment]:
    """Reserve more shipments for an order already past allocation (e.g. after a short pick), without a status change."""
    order = order_lock(order)
    lines = {line.pk: line for line in order.lines.select_related("sku")}
    for planned in plan:
        for line_id, quantity in planned.lines:
            if line_id not in lines or quantity <= 0 or quantity > lines[line_id].quantity_open:
                raise InvalidInput(OrderError.INVALID_PLAN, "The plan asks for more than the line has open.")
    shipments = _reserve_plan(order, plan, lines, actor)
    for shipment in shipments:
        events.shipment_transitioned(shipment, name="planned", from_status="", actor=actor, data={"reason": "remainder"})
    if release:
        _release_to_warehouse(order, shipments, actor=actor)
    return shipments


@transaction.atomic
def order_line_substitute(*, order: Order, line: OrderLine, substitute: Sku, actor: Actor) -> Order:
    """Ship a configured substitute instead of a line's SKU, the quantity converted to its base unit."""
    order = order_lock(order)
    line = OrderLine.objects.select_for_update(of=("self",)).select_related("sku").filter(pk=line.pk, order=order).first()
    if line is None or line.sku is None:
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
    too_many = _beyond_a_line(line.quantity, line.uom, substitute, per_unit)
    if too_many:
        raise InvalidInput(OrderError.INVALID_ORDER, too_many, fields={"substitute": [too_many]})
    before = {"sku": line.sku.code, "base_quantity": line.base_quantity}
    line.sku, line.sku_code, line.base_quantity = substitute, substitute.code, line.quantity * per_unit
    line.save(update_fields=["sku", "sku_code", "base_quantity"])
    _order_action_event(
        order,
        "substitute_sku",
        actor=actor,
        data={"line": line.line_number, "before": before, "after": {"sku": substitute.code, "base_quantity": line.base_quantity}},
    )
    return order


@transaction.atomic
def order_reject_split(*, order: Order, actor: Actor, reason: str = "Split rejected; waiting for full stock") -> Order:
    order = order_lock(order)
    _run_order_transition(order, "reject_split", actor=actor, data={"reason": reason})
    order_give_back_plan(order, actor=actor, reason=reason)
    return order


@transaction.atomic
def order_release(*, order: Order, actor: Actor) -> Order:
    """Hand an allocated order to the warehouse: it and its planned shipments become released."""
    order = order_lock(order)
    _run_order_transition(order, "release", actor=actor)
    _release_to_warehouse(order, _shipments_locked(order, [ShipmentStatus.PLANNED]), actor=actor)
    return order


def _release_to_warehouse(order: Order, shipments: Iterable[Shipment], *, actor: Actor) -> None:
    """Release the shipments and record the one message that tells the warehouse system about them."""
    released = []
    for shipment in shipments:
        _run_shipment_transition(shipment, "release", actor=actor)
        released.append(
            {
                "shipment": shipment.pk,
                "location": shipment.location_id,
                "lines": [{"line": line.order_line_id, "quantity": line.quantity} for line in shipment.lines.all()],
            }
        )
    events.order_sent(order, name="release_to_wms", actor=actor, data={"shipments": released})


@transaction.atomic
def order_cancel(*, order: Order, reason: str, actor: Actor, operator_minutes: int = 0) -> Order:
    """Cancel the order, release every reservation it holds, cancel its open shipments
    and close its open exceptions (there is nothing left to fix)."""
    order = order_lock(order)
    _run_order_transition(order, "cancel", actor=actor, fields=["cancel_reason"], data={"reason": reason}, reason=reason)
    shipments = _shipments_locked(order, [ShipmentStatus.PLANNED, ShipmentStatus.RELEASED])
    at_the_warehouse = [
        {"shipment": shipment.pk, "location": shipment.location_id, "cancelled": True}
        for shipment in shipments
        if shipment.status == ShipmentStatus.RELEASED
    ]
    _lock_stock_of(shipments)
    for shipment in shipments:
        _cancel_shipment_releasing_stock(shipment, actor=actor, reason=reason)
    _tell_warehouse_of_cancellation(order, at_the_warehouse, actor=actor, reason=reason)
    OrderLine.objects.filter(order=order, base_quantity__isnull=False).update(
        quantity_cancelled=F("base_quantity") - F("quantity_shipped"), quantity_allocated=0, cancelled=True
    )
    OrderLine.objects.filter(order=order, base_quantity__isnull=True).update(cancelled=True)
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


def _tell_warehouse_of_cancellation(order: Order, shipments: list[dict], *, actor: Actor, reason: str) -> None:
    """Record the message that tells the warehouse system to stop work it was given (the release told it of these shipments)."""
    if shipments:
        events.order_sent(order, name="cancel_to_wms", actor=actor, data={"shipments": shipments, "reason": reason})


def _order_action_event(order: Order, name: str, *, actor: Actor, data: dict) -> OrderEvent:
    return events.order_action(order, name=name, actor=actor, data=data)


@transaction.atomic
def order_line_cancel(*, order: Order, line: OrderLine, reason: str, actor: Actor) -> Order:
    """Cancel what is still open of one line, releasing its reservations; the last line cancels the order."""
    order = order_lock(order)
    line = OrderLine.objects.select_for_update().filter(pk=line.pk, order=order).first()
    if line is None:
        raise InvalidInput(
            OrderError.INVALID_ORDER, "That line is not part of this order.", fields={"line": ["Not a line of this order."]}
        )
    if line.cancelled:
        raise Conflict(OrderError.ILLEGAL_TRANSITION, f"Line {line.line_number} is already cancelled.")
    if order.status in (OrderStatus.SHIPPED, OrderStatus.DELIVERED, OrderStatus.CANCELLED):
        raise IllegalTransition(order, "cancel", "its lines can no longer change.")
    shipments = _shipments_locked(order, Shipment.ACTIVE)
    if any(
        sh.status in (ShipmentStatus.PICKED, ShipmentStatus.PACKED) and sh.lines.filter(order_line=line).exists()
        for sh in shipments
    ):
        raise Conflict(
            OrderError.ILLEGAL_TRANSITION, f"Line {line.line_number} is already picked; the warehouse must put it away first."
        )
    released, at_the_warehouse = 0, []
    _lock_stock_of(shipments, line=line)
    for shipment in shipments:
        dropped = []
        for shipment_line in shipment.lines.select_related("order_line").filter(order_line=line):
            released += _release_backed(shipment, shipment_line, actor=actor, reason=reason)
            dropped.append({"line": shipment_line.order_line_id, "quantity": shipment_line.quantity})
            shipment_line.delete()
        told = shipment.status == ShipmentStatus.RELEASED
        emptied = not shipment.lines.exists()
        if emptied:
            _run_shipment_transition(shipment, "cancel", actor=actor, data={"reason": f"line {line.line_number} cancelled"})
        if told and dropped:
            at_the_warehouse.append(
                {"shipment": shipment.pk, "location": shipment.location_id, "cancelled": emptied, "lines": dropped}
            )
    _tell_warehouse_of_cancellation(order, at_the_warehouse, actor=actor, reason=reason)
    cancelled_units = (line.base_quantity - line.quantity_shipped) if line.base_quantity is not None else 0
    OrderLine.objects.filter(pk=line.pk).update(quantity_allocated=0, quantity_cancelled=cancelled_units, cancelled=True)
    _order_action_event(
        order,
        "cancel_line",
        actor=actor,
        data={"line": line.line_number, "sku": line.sku_code, "reason": reason, "released": released},
    )
    return _after_a_line_cancelled(order, actor=actor, reason=reason, what=f"line {line.line_number} cancelled")


def _after_a_line_cancelled(order: Order, *, actor: Actor, reason: str, what: str) -> Order:
    """With nothing of it shipped and every line cancelled, the order is cancelled. Units that shipped stay
    shipped: an order with some is shipped once nothing more is owed, never cancelled."""
    if not order.lines.filter(Q(cancelled=False) | Q(quantity_shipped__gt=0)).exists():
        return order_cancel(order=order, reason=f"Every line cancelled: {reason}", actor=actor)
    return _shipped_once_nothing_is_owed(order, actor=actor, reason=what)


@transaction.atomic
def order_line_cancel_owed(*, order: Order, line: OrderLine, reason: str, actor: Actor) -> Order:
    """Cancel the units of a line that no shipment carries any more (a short pick left them owed).

    Units on a shipment still ship; the order is shipped once nothing more is owed, or cancelled
    if nothing of it shipped and nothing is left.
    """
    order = order_lock(order)
    line = OrderLine.objects.select_for_update().filter(pk=line.pk, order=order).first()
    if line is None:
        raise InvalidInput(
            OrderError.INVALID_ORDER, "That line is not part of this order.", fields={"line": ["Not a line of this order."]}
        )
    if order.status in (OrderStatus.SHIPPED, OrderStatus.DELIVERED, OrderStatus.CANCELLED):
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
    _order_action_event(
        order,
        "cancel_line",
        actor=actor,
        data={"line": line.line_number, "sku": line.sku_code, "reason": reason, "owed_units": owed},
    )
    return _after_a_line_cancelled(order, actor=actor, reason=reason, what=f"line {line.line_number}'s owed units cancelled")


EDITABLE_ADDRESS = [
    OrderStatus.RECEIVED,
    OrderStatus.READY,
    OrderStatus.ON_HOLD,
    OrderStatus.ALLOCATED,
    OrderStatus.AWAITING_APPROVAL,
    OrderStatus.BACKORDERED,
]


# Statuses in which an order holds a plan (or a backorder) made for the address it had.
PLANNED_FOR_ITS_ADDRESS = [OrderStatus.ALLOCATED, OrderStatus.AWAITING_APPROVAL, OrderStatus.BACKORDERED]


def _destination(address: dict) -> tuple[str, str]:
    """What routing reads from an address: rules match the country and the postal prefix, sites ship to countries."""
    return address["country"].upper(), address["postal_code"].replace(" ", "").upper()


@dataclass(frozen=True)
class AddressChange:
    order: Order
    applied: bool  # False: too late to change here, a person follows it up (202)
    # The order still holds a plan made for another country or postal code: its site may not ship
    # there and another rule may match, so it must be planned again. (An order the change put on
    # hold, or whose hold it lifted, is planned again when it comes off hold.)
    plan_outdated: bool = False


def _address_change(order: Order, *, status_before: str, before: dict, after: dict) -> AddressChange:
    outdated = (
        order.status == status_before and status_before in PLANNED_FOR_ITS_ADDRESS and _destination(before) != _destination(after)
    )
    return AddressChange(order, applied=True, plan_outdated=outdated)


@transaction.atomic
def order_correct_address(*, order: Order, address: Address, actor: Actor) -> AddressChange:
    """Replace the shipping address, provided it passes the country's rules; before release only."""
    order = order_lock(order)
    if order.status not in EDITABLE_ADDRESS:
        raise IllegalTransition(order, "correct_address", "the order is with the warehouse already.")
    problems = address_problems(
        line1=address.line1, city=address.city, region=address.region, postal_code=address.postal_code, country=address.country
    )
    if problems:
        raise InvalidInput(
            OrderError.INVALID_ADDRESS,
            " ".join(p.message for p in problems),
            fields={p.field: [p.message] for p in problems},
        )
    before = {f: getattr(order, f"ship_{f}") for f in ("name", "line1", "line2", "city", "region", "postal_code", "country")}
    for field_name, value in vars(address).items():
        setattr(order, f"ship_{field_name}", value.upper() if field_name == "country" else value)
    order.save(update_fields=[f"ship_{f}" for f in before] + ["updated_at"])
    after = {f: getattr(order, f"ship_{f}") for f in before}
    _order_action_event(order, "correct_address", actor=actor, data={"before": before, "after": after})
    return _address_change(order, status_before=order.status, before=before, after=after)


AFTER_RELEASE = [OrderStatus.RELEASED, OrderStatus.PARTIALLY_SHIPPED]


@transaction.atomic
def order_change_address(*, order: Order, changes: dict, actor: Actor) -> AddressChange:
    """A partner changes the shipping address.

    Before release the address is replaced and checked again: problems hold the
    order with invalid_address exceptions, a clean address closes the old ones.
    After release the warehouse may already be packing it, so a person must step
    in: an address_change_after_release exception carries the request. Once
    shipped, it is too late (409).
    """
    order = order_lock(order)
    unknown = set(changes) - {"name", "line1", "line2", "city", "region", "postal_code", "country"}
    if unknown:
        raise InvalidInput(
            OrderError.INVALID_ADDRESS, "Unknown address fields.", fields={f: ["Unknown field."] for f in sorted(unknown)}
        )
    if order.status in AFTER_RELEASE:
        # Changes are partial: what the person must carry out is every field asked for so far, the latest value of each.
        asked_before = (
            FulfillmentException.objects.filter(order=order, type__code="address_change_after_release", status__in=OPEN_STATUSES)
            .values_list("detail__requested", flat=True)
            .first()
        )
        exception_services.exception_raise(
            code="address_change_after_release",
            order=order,
            actor=actor,
            source_system="api",
            summary="The customer changed the shipping address after the order went to the warehouse",
            detail={"requested": {**(asked_before or {}), **changes}},
            dedupe_key=f"order:{order.pk}|address-change",
        )
        _order_action_event(order, "address_change_requested", actor=actor, data={"requested": changes})
        return AddressChange(order, applied=False)
    if order.status not in EDITABLE_ADDRESS:
        raise IllegalTransition(order, "change_address", "it has left the warehouse; the address can no longer change.")
    status_before = order.status
    before = {f: getattr(order, f"ship_{f}") for f in ("name", "line1", "line2", "city", "region", "postal_code", "country")}
    for field_name, value in changes.items():
        setattr(order, f"ship_{field_name}", value.upper() if field_name == "country" else value)
    order.save(update_fields=[f"ship_{f}" for f in before] + ["updated_at"])
    after = {f: getattr(order, f"ship_{f}") for f in before}
    _order_action_event(order, "change_address", actor=actor, data={"before": before, "after": after})
    raise_address_problems(order, actor=actor, source_system="api")
    close_corrected_address_exceptions(order, actor=actor, note="The partner sent a corrected address.", action="address_changed")
    return _address_change(order_lock(order), status_before=status_before, before=before, after=after)


def close_corrected_address_exceptions(order: Order, *, actor: Actor, note: str, action: str) -> None:
    """Resolve the order's open invalid_address exceptions its address no longer has (caller's transaction).

    One exception per field: a corrected field closes its own even while another is still wrong.
    """
    still_wrong = {problem.field for problem in address_problems_of(order)}
    for exception in FulfillmentException.objects.filter(order=order, type__code="invalid_address", status__in=OPEN_STATUSES):
        field = exception.detail.get("field")
        if not still_wrong if field is None else field not in still_wrong:
            exception_services.exception_resolve(exception=exception, note=note, action=action, actor=actor)


def address_problems_of(order: Order) -> list:
    return address_problems(
        line1=order.ship_line1,
        city=order.ship_city,
        region=order.ship_region,
        postal_code=order.ship_postal_code,
        country=order.ship_country,
    )


def raise_address_problems(order: Order, *, actor: Actor, source_system: str) -> int:
    """One invalid_address exception per problem with the order's shipping address."""
    problems = address_problems_of(order)
    for problem in problems:
        exception_services.exception_raise(
            code="invalid_address",
            order=order,
            actor=actor,
            source_system=source_system,
            summary=problem.message,
            detail={"field": problem.field},
            dedupe_key=f"order:{order.pk}|address:{problem.field}",
        )
    return len(problems)


# --- the exceptions app's hooks (registered in OrdersConfig.ready) -----------------


def hold_for_blocking_exception(exception: FulfillmentException, actor: Actor) -> None:
    """A blocking exception opened: hold the order if it can still be held."""
    order = order_lock(exception.order_id)
    if order.status in HOLDABLE:
        _run_order_transition(
            order,
            "hold",
            actor=actor,
            fields=["hold_reason"],
            reason=HOLD_FOR_EXCEPTIONS,
            data={"exception": exception.pk, "type": exception.type.code},
        )


def release_hold_when_clear(exception: FulfillmentException, actor: Actor) -> None:
    """An exception closed: lift a hold it caused once no blocking exception is left."""
    order = order_lock(exception.order_id)
    if order.status != OrderStatus.ON_HOLD or order.hold_reason != HOLD_FOR_EXCEPTIONS:
        return
    if no_blocking_exception_open(order) and can_proceed(order.release_hold):
        _run_order_transition(order, "release_hold", actor=actor, fields=["hold_reason"], data={"exception": exception.pk})


# --- shipments -----------------------------------------------------------------


def shipment_lock(shipment: Shipment | int) -> tuple[Order, Shipment]:
    """Lock the shipment's order, then the shipment (the order first, always)."""
    pk = shipment.pk if isinstance(shipment, Shipment) else shipment
    order_id = Shipment.objects.values_list("order_id", flat=True).get(pk=pk)
    order = order_lock(order_id)
    return order, Shipment.objects.select_for_update(of=("self",)).select_related("location").get(pk=pk)


def _shipment_stock(shipment: Shipment, service, *, actor: Actor, source_system: str) -> list[ShipmentLine]:
    lines = list(shipment.lines.select_related("order_line"))
    if len(lines) > 1:
        _lock_stock_of([shipment])
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
    _run_shipment_transition(shipment, "pick", actor=actor)
    _shipment_stock(shipment, stock_pick, actor=actor, source_system=source_system)
    return shipment


@transaction.atomic
def shipment_pack(*, shipment: Shipment, actor: Actor) -> Shipment:
    _, shipment = shipment_lock(shipment)
    return _run_shipment_transition(shipment, "pack", actor=actor)


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
    exception_services.exception_raise(
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
    _run_shipment_transition(
        shipment,
        "ship",
        actor=actor,
        fields=["carrier", "tracking_number", "shipped_at"],
        data={"carrier": carrier, "tracking_number": tracking_number},
        carrier=carrier,
        tracking_number=tracking_number,
        shipped_at=timezone.now(),
    )
    for line in _shipment_stock(shipment, stock_ship, actor=actor, source_system=source_system):
        OrderLine.objects.filter(pk=line.order_line_id).update(
            quantity_allocated=F("quantity_allocated") - line.quantity, quantity_shipped=F("quantity_shipped") + line.quantity
        )
    _run_order_transition(
        order, "ship" if _nothing_left_to_ship(order) else "ship_part", actor=actor, data={"shipment": shipment.pk}
    )
    return shipment


def _nothing_left_to_ship(order: Order) -> bool:
    """No shipment is on its way, and every line still wanted shipped in full.

    A short pick the playbook could not place elsewhere leaves units owed outside any shipment:
    the order stays partially shipped until they ship or a person cancels them.
    """
    if order.shipments.filter(status__in=Shipment.ACTIVE).exists():
        return False
    return not order.lines.filter(cancelled=False, base_quantity__gt=F("quantity_shipped") + F("quantity_cancelled")).exists()


def _shipped_once_nothing_is_owed(order: Order, *, actor: Actor, reason: str) -> Order:
    """A partially shipped order whose last owed units were just cancelled is shipped (and delivered, if all of it was)."""
    if order.status != OrderStatus.PARTIALLY_SHIPPED or not _nothing_left_to_ship(order):
        return order
    _run_order_transition(order, "ship", actor=actor, data={"reason": reason})
    if not order.shipments.exclude(status__in=[ShipmentStatus.DELIVERED, ShipmentStatus.CANCELLED]).exists():
        _run_order_transition(order, "deliver", actor=actor)
    return order


@transaction.atomic
def shipment_deliver(*, shipment: Shipment, actor: Actor) -> Shipment:
    order, shipment = shipment_lock(shipment)
    _run_shipment_transition(shipment, "deliver", actor=actor, fields=["delivered_at"], delivered_at=timezone.now())
    undelivered = order.shipments.exclude(status__in=[ShipmentStatus.DELIVERED, ShipmentStatus.CANCELLED]).exists()
    if order.status == OrderStatus.SHIPPED and not undelivered:
        _run_order_transition(order, "deliver", actor=actor)
    return shipment


# --- partners --------------------------------------------------------------------


@transaction.atomic
def partner_ensure(*, code: str, name: str, kind: str = Partner.Kind.STOREFRONT) -> tuple[Partner, str, bool]:
    """Create the partner and its API user, or return the existing one; gives (partner, API token, created)."""
    if kind not in Partner.Kind.values:
        raise InvalidInput(
            OrderError.UNKNOWN_PARTNER, f"Unknown partner kind {kind!r}; use one of {', '.join(Partner.Kind.values)}."
        )
    partner = Partner.objects.select_for_update().filter(code=code).first()
    created = partner is None
    if created:
        partner = Partner(code=code, name=name, kind=kind, webhook_secret=secrets.token_urlsafe(32))
        try:
            partner.full_clean()
        except ValidationError as exc:
            raise InvalidInput(OrderError.UNKNOWN_PARTNER, "The partner is not valid.", fields=exc.message_dict) from None
        partner.save()
    if partner.api_user_id is None:
        user_model = get_user_model()
        user, _ = user_model.objects.get_or_create(username=f"partner-{code}")
        if user.has_usable_password():
            user.set_unusable_password()
            user.save(update_fields=["password"])
        partner.api_user = user
        partner.save(update_fields=["api_user"])
    token, _ = Token.objects.get_or_create(user_id=partner.api_user_id)
    return partner, token.key, created
