"""Taking a physical count as the truth when it leaves fewer units than are promised.

The WMS owns physical counts. When one is accepted and it no longer covers the reservations, the orders
that lose their units are handled as a short pick would be: their plan is given back and they are routed
again, to another site if one has the stock, or to a backorder with an out_of_stock exception for a person.
The orders still waiting to be released lose out first, the least urgent and then the youngest: their pick
tickets are not at the warehouse yet. Released shipments keep their claim; what the count takes from them
the warehouse finds as a short pick.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import transaction
from django_fsm import can_proceed

from core.actors import Actor
from inventory.models import Location, Sku, StockMovement
from inventory.services import stock_count_correction, stock_level_ensure

from ..models import OrderStatus, ShipmentLine, ShipmentStatus
from .allocation import order_replan_locked, order_route_locked
from .locks import order_lock


@dataclass
class CountOutcome:
    movement: StockMovement | None
    rerouted: dict[str, str] = field(default_factory=dict)  # the order as people know it -> routing outcome

    @property
    def summary(self) -> str:
        if self.movement is None:
            return "The count matches our figure; nothing changed."
        moved = f"On hand {self.movement.on_hand_delta:+d}"
        if self.rerouted:
            outcomes = ", ".join(f"{name}: {outcome}" for name, outcome in self.rerouted.items())
            moved += f"; {len(self.rerouted)} order(s) lost their units and were routed again ({outcomes})"
        return moved + "."


def _orders_losing_out(location: Location, sku: Sku, uncovered: int) -> list[int]:
    """The orders whose planned (unreleased) shipments at the location give up at least `uncovered` units of the
    SKU: least urgent first (P4 before P1), then youngest."""
    drawn = (
        ShipmentLine.objects.filter(
            shipment__location=location,
            shipment__status=ShipmentStatus.PLANNED,
            shipment__order__status__in=[OrderStatus.ALLOCATED, OrderStatus.AWAITING_APPROVAL],
            order_line__sku=sku,
        )
        .order_by("-shipment__order__priority", "-shipment__order__placed_at", "-shipment__order_id")
        .values_list("shipment__order_id", "quantity")
    )
    losing, freed = [], 0
    for order_id, quantity in drawn.iterator():
        if freed >= uncovered:
            break
        if order_id not in losing:
            losing.append(order_id)
        freed += quantity
    return losing


@transaction.atomic
def stock_count_accept(
    *, location: Location, sku: Sku, counted: int, actor: Actor, source_system: str = "wms", reference: str = ""
) -> CountOutcome:
    """Make on hand what was counted (a sync_correction in the ledger); orders whose reservations the count no
    longer covers are routed again. Stock that rose lets backorders fill (inventory's listeners)."""
    level = stock_level_ensure(location_id=location.pk, sku_id=sku.pk)
    uncovered = level.reserved - max(level.picked, min(level.reserved, counted))
    losing = []
    if uncovered > 0:
        # Orders first, then stock, as everywhere: lock them in id order, and keep those still planned here.
        for order_id in sorted(_orders_losing_out(location, sku, uncovered)):
            order = order_lock(order_id)
            if can_proceed(order.reallocate, check_conditions=False):
                losing.append(order)
        for order in losing:
            order_replan_locked(order, actor=actor, reason=f"a count found {counted} of {sku.code} at {location.code}")
    movement = stock_count_correction(
        location_id=location.pk, sku_id=sku.pk, counted=counted, actor=actor, source_system=source_system, reference=reference
    )
    outcome = CountOutcome(movement)
    for order in sorted(losing, key=lambda o: (o.priority, o.placed_at, o.pk)):
        outcome.rerouted[order.display_name] = order_route_locked(order, actor=actor).get_outcome_display().lower()
    return outcome
