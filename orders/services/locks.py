"""The locks every order use case takes, always in this order: the order, then its shipments, then
the stock levels they draw on (in location and SKU order), so two of them wait for each other
rather than deadlock. And the one step every status change is made of: a transition and its event.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from django.db.models import Q

from core.actors import Actor
from core.fsm import run_transition
from inventory.models import StockLevel

from .. import events
from ..models import Order, OrderLine, Shipment, ShipmentLine


def order_lock(order: Order | int) -> Order:
    """Fetch the order with a row lock; the caller must be inside a transaction."""
    pk = order.pk if isinstance(order, Order) else order
    return Order.objects.select_for_update(of=("self",)).select_related("partner").get(pk=pk)


def shipment_lock(shipment: Shipment | int) -> tuple[Order, Shipment]:
    """Lock the shipment's order, then the shipment (the order first, always)."""
    pk = shipment.pk if isinstance(shipment, Shipment) else shipment
    order_id = Shipment.objects.values_list("order_id", flat=True).get(pk=pk)
    order = order_lock(order_id)
    return order, Shipment.objects.select_for_update(of=("self",)).select_related("location").get(pk=pk)


def shipments_locked(order: Order, statuses: Sequence[str]) -> list[Shipment]:
    """The order's shipments in `statuses`, locked in id order; the caller holds the order's lock."""
    return list(Shipment.objects.select_for_update().filter(order=order, status__in=statuses).order_by("pk"))


def lock_stock_of(shipments: Sequence[Shipment], *, line: OrderLine | None = None) -> None:
    """Lock the stock levels the shipments' lines (or only `line`'s) draw on, in location and SKU order,
    before any of them changes; the caller holds the order's and the shipments' locks.

    Every path that changes several stock levels in one transaction takes them in this order
    (inventory's stock_reserve_many too). Taken line by line instead, two orders listing the same
    SKUs in opposite order would each hold a row the other waits for.
    """
    if not shipments:
        return
    drawn = ShipmentLine.objects.filter(shipment__in=[shipment.pk for shipment in shipments])
    if line is not None:
        drawn = drawn.filter(order_line=line)
    pairs = set(drawn.values_list("shipment__location_id", "order_line__sku_id"))
    if not pairs:
        return
    # Each level by its (location, sku) key, so the unique index finds them whatever the planner knows of the
    # tables (a semi-join over shipment lines went scanning inside one long transaction, where nothing is analysed).
    wanted = Q()
    for location_id, sku_id in sorted(pairs):
        wanted |= Q(location_id=location_id, sku_id=sku_id)
    levels = StockLevel.objects.filter(wanted).order_by("location_id", "sku_id")
    list(levels.select_for_update(of=("self",)).values_list("pk", flat=True))


def reserved_for_locked(shipment: Shipment, line: ShipmentLine) -> int:
    """How much of a shipment line its stock level still holds reserved (and not picked), locking the level;
    the caller holds the order's and the shipment's locks.

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


def order_transition_locked(
    order: Order, name: str, *, actor: Actor, fields: Iterable[str] = (), data: dict | None = None, **kwargs
) -> Order:
    """Run transition `name` on an order the caller holds locked, and write its event."""
    from_status = run_transition(order, name, fields=fields, **kwargs)
    events.order_transitioned(order, name=name, from_status=from_status, actor=actor, data=data)
    return order


def shipment_transition_locked(
    shipment: Shipment, name: str, *, actor: Actor, fields: Iterable[str] = (), data: dict | None = None, **kwargs
) -> Shipment:
    """Run transition `name` on a shipment the caller holds locked (with its order), and write its event."""
    from_status = run_transition(shipment, name, fields=fields, **kwargs)
    events.shipment_transitioned(shipment, name=name, from_status=from_status, actor=actor, data=data)
    return shipment
