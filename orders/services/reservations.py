"""What an order's shipments hold of the stock: reserving a plan and giving it back.

These are steps of the use cases in lifecycle and allocation, inside their transaction.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.db import connection
from django.db.models import Case, F, IntegerField, Value, When

from core.actors import Actor
from core.errors import InvalidInput
from inventory.services import stock_release, stock_reserve_many

from ..errors import OrderError
from ..models import Order, OrderLine, Shipment, ShipmentLine, ShipmentStatus, loaded
from .locks import lock_stock_of, reserved_for_locked, shipment_transition_locked, shipments_locked


@dataclass(frozen=True)
class PlannedShipment:
    """Base units of order lines to reserve and ship from one location."""

    location_id: int
    lines: tuple[tuple[int, int], ...] = field(default_factory=tuple)  # (order_line_id, quantity)


def plan_lines_locked(order: Order, plan: Sequence[PlannedShipment]) -> dict[int, OrderLine]:
    """The order's lines by id, once the plan is checked to cover exactly what each has open; the caller holds
    the order's lock."""
    known = loaded(order, "lines")
    lines = {line.pk: line for line in (order.lines.select_related("sku") if known is None else known)}
    planned: dict[int, int] = defaultdict(int)
    if not plan:
        raise InvalidInput(OrderError.INVALID_PLAN, "A plan needs at least one shipment.")
    for shipment in plan:
        if not shipment.lines:
            raise InvalidInput(OrderError.INVALID_PLAN, "Every planned shipment needs at least one line.")
        for line_id, quantity in shipment.lines:
            if line_id not in lines:
                raise InvalidInput(
                    OrderError.INVALID_PLAN, f"Line {line_id} is not part of order {order.external_id}.", order=order.pk
                )
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


def reserve_plan_locked(
    order: Order, plan: Sequence[PlannedShipment], lines: dict[int, OrderLine], actor: Actor, *, before_reserving=None
) -> list[Shipment]:
    """Record and reserve the plan, in statements whose number does not grow with the lines; the caller holds the
    order's lock.

    The reservation comes last, after the shipments are written (and `before_reserving()`, when given, has
    written what else goes with them): a hot SKU's stock row stays locked from the reservation to the commit, so
    the less follows it, the sooner the next order gets that row. When it falls short (InsufficientStock) the
    caller rolls back to a savepoint taken before this call, and nothing in memory has changed: the new shipments
    come back with their lines loaded, and the order's loaded lines and shipments (if any) are made current only
    once the stock is reserved.
    """
    shipments = Shipment.objects.bulk_create([Shipment(order=order, location_id=planned.location_id) for planned in plan])
    shipment_lines, allocated = [], defaultdict(int)
    for planned, shipment in zip(plan, shipments, strict=True):
        shipment.loaded_lines = []
        for line_id, quantity in planned.lines:
            shipment_line = ShipmentLine(shipment=shipment, order_line_id=line_id, quantity=quantity)
            shipment_lines.append(shipment_line)
            shipment.loaded_lines.append(shipment_line)
            allocated[line_id] += quantity
    _write_lines(shipment_lines, allocated)
    if before_reserving is not None:
        before_reserving(shipments)
    stock_reserve_many(
        items=[(planned.location_id, lines[line_id].sku_id, quantity) for planned in plan for line_id, quantity in planned.lines],
        actor=actor,
        reference=f"order:{order.pk}",
    )
    for line_id, quantity in allocated.items():
        lines[line_id].quantity_allocated += quantity
    if loaded(order, "shipments") is not None:
        order.loaded_shipments.extend(shipments)
    return shipments


def _write_lines(shipment_lines: list[ShipmentLine], allocated: dict[int, int]) -> None:
    """Insert the shipment lines and raise each order line's allocated units by what they take: on PostgreSQL in
    one statement (the lines get their ids), elsewhere in two."""
    if connection.vendor != "postgresql":
        ShipmentLine.objects.bulk_create(shipment_lines)
        OrderLine.objects.filter(pk__in=allocated).update(
            quantity_allocated=F("quantity_allocated")
            + Case(*(When(pk=pk, then=Value(q)) for pk, q in allocated.items()), output_field=IntegerField())
        )
        return
    shipment_table = connection.ops.quote_name(ShipmentLine._meta.db_table)
    line_table = connection.ops.quote_name(OrderLine._meta.db_table)
    sql = (
        f"WITH added AS (INSERT INTO {shipment_table} (shipment_id, order_line_id, quantity) "
        f"  SELECT s, l, q FROM unnest(%s::bigint[], %s::bigint[], %s::integer[]) WITH ORDINALITY AS given(s, l, q, n) "
        f"  ORDER BY n RETURNING id), "
        f"raised AS (UPDATE {line_table} SET quantity_allocated = {line_table}.quantity_allocated + taken.quantity "
        f"  FROM unnest(%s::bigint[], %s::integer[]) AS taken(id, quantity) WHERE {line_table}.id = taken.id) "
        f"SELECT id FROM added ORDER BY id"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            [
                [line.shipment_id for line in shipment_lines],
                [line.order_line_id for line in shipment_lines],
                [line.quantity for line in shipment_lines],
                list(allocated),
                list(allocated.values()),
            ],
        )
        # A sequence hands out ids in the order the rows are inserted, and they are inserted in the given order.
        for line, (pk,) in zip(shipment_lines, cursor.fetchall(), strict=True):
            line.pk = pk
            line._state.adding, line._state.db = False, connection.alias


def release_backed_locked(shipment: Shipment, line: ShipmentLine, *, actor: Actor, reason: str) -> int:
    """Release a shipment line's reservation, or as much of it as the stock level still holds; the caller holds
    the order's and the shipment's locks.

    A physical count (stock_count_correction) may have shrunk reservations below what shipments
    planned; what is no longer reserved cannot be released twice.
    """
    backed = reserved_for_locked(shipment, line)
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


def cancel_shipment_locked(shipment: Shipment, *, actor: Actor, reason: str) -> None:
    """Give back a not-yet-picked shipment's reservations and cancel it; the caller holds the order's and the
    shipment's locks, and those of its stock levels (lock_stock_of)."""
    shipment_transition_locked(shipment, "cancel", actor=actor, data={"reason": reason})
    for line in shipment.lines.select_related("order_line"):
        release_backed_locked(shipment, line, actor=actor, reason=reason)
        OrderLine.objects.filter(pk=line.order_line_id).update(quantity_allocated=F("quantity_allocated") - line.quantity)


def give_back_plan_locked(order: Order, *, actor: Actor, reason: str) -> None:
    """Cancel the order's planned (not yet released) shipments and release their stock; the caller holds the
    order's lock. An order whose shipments are loaded and empty (just stored) has nothing to give back."""
    if loaded(order, "shipments") == []:
        return
    shipments = shipments_locked(order, [ShipmentStatus.PLANNED])
    lock_stock_of(shipments)
    for shipment in shipments:
        cancel_shipment_locked(shipment, actor=actor, reason=reason)
