"""The playbook "stock received → re-allocate backorders": when stock of a SKU rises somewhere (a receipt, a
positive adjustment, a count that found more), the orders backordered on that SKU are routed again, the most
urgent and then the oldest first, and their out_of_stock exceptions close with actor system.

Inventory tells us inside its transaction (inventory.listeners); the work runs after it commits, as a task,
in transactions of its own, one per order: locks are taken order first, then stock, as everywhere else.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django_fsm import can_proceed

from core.actors import SYSTEM, Actor
from core.db import atomic_retrying_deadlocks

from ..models import Order, OrderStatus, RoutingDecision
from ..routing import active_rules, evaluate
from .allocation import order_route_locked
from .locks import order_lock, order_transition_locked

# What the playbook records as the resolution of the out_of_stock exceptions it closes.
STOCK_RECEIVED = "stock_received"
# Orders looked at per run; a larger backlog is taken up by the next receipt.
REFILL_BATCH = 500


@dataclass(frozen=True)
class Refill:
    order_id: int
    outcome: str  # a RoutingDecision outcome, or "backorder" when it still cannot fill


def backordered_on(sku_id: int, *, limit: int = REFILL_BATCH) -> list[int]:
    """The orders backordered with an open line of this SKU, most urgent first (P1 before P4), then oldest."""
    return list(
        Order.objects.filter(status=OrderStatus.BACKORDERED, lines__sku_id=sku_id, lines__cancelled=False)
        .order_by("priority", "placed_at", "pk")
        .values_list("pk", flat=True)
        .distinct()[:limit]
    )


def backorders_refill(*, sku_id: int, actor: Actor = SYSTEM) -> list[Refill]:
    """Route again every order backordered on the SKU that the stock now fills (alone or split), in turn.

    An order the stock still cannot fill is left as it is, untouched: backordered, its exception open. Each
    order is one transaction, so one that fails changes nothing of the others.
    """
    rules = active_rules()
    refills = []
    for order_id in backordered_on(sku_id):
        refill = atomic_retrying_deadlocks(lambda order_id=order_id: _refill_one(order_id, rules=rules, actor=actor))
        if refill is not None:
            refills.append(refill)
    return refills


def _refill_one(order_id: int, *, rules, actor: Actor) -> Refill | None:
    with transaction.atomic():
        order = order_lock(order_id)
        if order.status != OrderStatus.BACKORDERED or not can_proceed(order.retry_allocation):
            return None  # taken up meanwhile, or something else holds it: its own exception says what
        if evaluate(order, rules=rules).outcome == RoutingDecision.Outcome.BACKORDER:
            return Refill(order.pk, RoutingDecision.Outcome.BACKORDER)
        order_transition_locked(order, "retry_allocation", actor=actor, data={"reason": "stock received"})
        decision = order_route_locked(order, actor=actor, rules=rules, action=STOCK_RECEIVED)
        return Refill(order.pk, decision.outcome)


def on_stock_raised(location_id: int, sku_id: int, actor: Actor) -> None:
    """inventory.listeners: stock of a SKU rose; refill its backorders once that commits."""
    transaction.on_commit(lambda: _refill_soon(sku_id))


def _refill_soon(sku_id: int) -> None:
    from ..tasks import backorders_refill_task  # tasks call services; this is the one way back

    backorders_refill_task.delay(sku_id)
