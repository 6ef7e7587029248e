"""Allocation: turning the routing engine's plan into reservations and shipments, giving a plan back to plan
again, and what people and playbooks do with plans (approve or reject a split, move an order or the units a
short pick left owed to a location of their choice).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.db import transaction
from django_fsm import can_proceed

from core.actors import SYSTEM, Actor
from core.errors import Conflict, InvalidInput
from core.fsm import IllegalTransition, undo_transition_in_memory
from exceptions.models import OPEN_STATUSES, FulfillmentException
from exceptions.services import exception_raise, exception_resolve
from inventory.models import Location
from inventory.services import InsufficientStock

from .. import events
from ..errors import OrderError
from ..models import AFTER_RELEASE, Order, OrderStatus, RoutingDecision, ServiceLevel, Shipment, forget_loaded, loaded
from ..planner import Plan
from ..routing import Evaluation, RuleSpec, active_rules, chosen_location_rule, evaluate, stock_gone
from .lifecycle import order_backorder_locked, order_release_locked, release_to_warehouse_locked
from .locks import order_lock, order_transition_locked
from .reservations import PlannedShipment, give_back_plan_locked, plan_lines_locked, reserve_plan_locked

# A reservation can lose a race for the last units; look at the stock again this many times.
MAX_ATTEMPTS = 5
# What the engine records as the resolution of the exceptions a new plan makes moot.
REPLANNED = "reallocated"


@transaction.atomic
def order_allocate(
    *, order: Order, plan: Sequence[PlannedShipment], actor: Actor, requires_approval: bool = False, data: dict | None = None
) -> Order:
    """Reserve the plan's stock and create its planned shipments.

    The order becomes allocated, or awaiting approval when a split needs a person's yes (the stock
    stays reserved meanwhile). If any reservation fails, InsufficientStock rolls the whole plan back.
    """
    return order_allocate_locked(order_lock(order), plan=plan, actor=actor, requires_approval=requires_approval, data=data)


def order_allocate_locked(
    order: Order,
    *,
    plan: Sequence[PlannedShipment],
    actor: Actor,
    requires_approval: bool = False,
    data: dict | None = None,
    before_reserving: Callable[[], object] | None = None,
) -> Order:
    """order_allocate for an order the caller holds locked (or has just stored) in its transaction.

    The shipments, the transition and its event (and `before_reserving()`, when given) are written before the
    stock is reserved, so the stock rows are locked for as short a time as the transaction allows. When the
    reservation falls short, the caller rolls all of it back to a savepoint, and the order in memory goes back too.
    """
    name = "propose_split" if requires_approval else "allocate"
    if not can_proceed(getattr(order, name), check_conditions=False):
        raise IllegalTransition(order, name)
    lines = plan_lines_locked(order, plan)

    def transition(shipments: list[Shipment]) -> None:
        payload = {"shipments": [{"id": s.pk, "location_id": s.location_id} for s in shipments], **(data or {})}
        order_transition_locked(order, name, actor=actor, data=payload)
        if before_reserving is not None:
            before_reserving()

    status, updated_at = order.status, order.updated_at
    try:
        reserve_plan_locked(order, plan, lines, actor, before_reserving=transition)
    except InsufficientStock:
        undo_transition_in_memory(order, status=status, updated_at=updated_at)  # the savepoint takes back the row's
        raise
    return order


@transaction.atomic
def order_replan(*, order: Order, actor: Actor, reason: str) -> Order:
    """Give back what the order holds (before release) and make it ready to plan again.

    From a proposed split whose plan no longer holds, an allocation a person moves elsewhere, a
    backorder, or a plan made for an address the order no longer has.
    """
    return order_replan_locked(order_lock(order), actor=actor, reason=reason)


def order_replan_locked(order: Order, *, actor: Actor, reason: str) -> Order:
    """order_replan for an order the caller holds locked."""
    order_transition_locked(order, "reallocate", actor=actor, data={"reason": reason})
    give_back_plan_locked(order, actor=actor, reason=reason)
    forget_loaded(order)
    return order


@transaction.atomic
def order_allocate_remainder(*, order: Order, plan: Sequence[PlannedShipment], actor: Actor, release: bool) -> list[Shipment]:
    """Reserve more shipments for an order already past allocation (after a short pick), without a status change."""
    return order_allocate_remainder_locked(order_lock(order), plan=plan, actor=actor, release=release)


def order_allocate_remainder_locked(
    order: Order, *, plan: Sequence[PlannedShipment], actor: Actor, release: bool
) -> list[Shipment]:
    """order_allocate_remainder for an order the caller holds locked."""
    lines = {line.pk: line for line in order.lines.select_related("sku")}
    for planned in plan:
        for line_id, quantity in planned.lines:
            if line_id not in lines or quantity <= 0 or quantity > lines[line_id].quantity_open:
                raise InvalidInput(OrderError.INVALID_PLAN, "The plan asks for more than the line has open.")
    shipments = reserve_plan_locked(order, plan, lines, actor)
    for shipment in shipments:
        events.shipment_transitioned(shipment, name="planned", from_status="", actor=actor, data={"reason": "remainder"})
    if release:
        release_to_warehouse_locked(order, shipments, actor=actor)
    forget_loaded(order)
    return shipments


# --- routing ------------------------------------------------------------------------------------


def record_decision_locked(order: Order, evaluation: Evaluation, actor: Actor, outcome: str | None = None) -> RoutingDecision:
    """Store why the order goes where it goes; the caller holds the order's lock."""
    return RoutingDecision.objects.create(
        order=order,
        rule_id=evaluation.rule.rule_id,
        rule_name=evaluation.rule.name,
        outcome=outcome or evaluation.outcome,
        candidates=[c.as_dict() for c in evaluation.candidates],
        plan=evaluation.plan_as_dicts(),
        short=evaluation.short_by_line_number(),
        actor=str(actor),
    )


class _DecisionOnce:
    """Records the routing decision when called, before the stock is reserved (see order_allocate_locked)."""

    def __init__(self, order: Order, evaluation: Evaluation, actor: Actor) -> None:
        self.order, self.evaluation, self.actor = order, evaluation, actor
        self.decision: RoutingDecision | None = None

    def __call__(self) -> RoutingDecision:
        self.decision = record_decision_locked(self.order, self.evaluation, self.actor)
        return self.decision


def _resolve_open(order: Order, code: str, *, note: str, action: str, actor: Actor) -> None:
    if loaded(order, "exceptions") == []:
        return  # an order just stored has none
    for exception in FulfillmentException.objects.filter(order=order, type__code=code, status__in=OPEN_STATUSES):
        exception_resolve(exception=exception, note=note, action=action, actor=actor)


@transaction.atomic
def order_route(
    *, order: Order, actor: Actor = SYSTEM, rules: Sequence[RuleSpec] | None = None, action: str = REPLANNED
) -> RoutingDecision:
    """Allocate a ready order by the rules: one location, a split, or a backorder.

    Reservations go through the inventory's conditional UPDATE; when another order takes the last
    units first, the engine reads the stock again and moves on to the next candidate instead of
    failing. The decision is stored with its reasons, and the outcome opens what a person must see
    (split approval, out of stock) and closes what it makes moot, as `action`.
    """
    return order_route_locked(order_lock(order), actor=actor, rules=rules, action=action)


def order_route_locked(
    order: Order,
    *,
    actor: Actor = SYSTEM,
    rules: Sequence[RuleSpec] | None = None,
    locations: Sequence[Location] | None = None,
    action: str = REPLANNED,
) -> RoutingDecision:
    """order_route for a ready order the caller holds locked.

    An order back from hold may still hold its earlier plan: it is given back first (stock and
    rules may have moved since). An order just stored (intake) brings its lines, shipments and
    exceptions loaded and they are not read again; when the outcome is a plain allocation, it stays
    current in memory with its new shipments, otherwise it forgets them.
    """
    if order.status != OrderStatus.READY:
        raise IllegalTransition(order, "allocate", "only orders that are ready can be allocated.")
    give_back_plan_locked(order, actor=actor, reason="planning again")
    rules = active_rules() if rules is None else rules
    locations = list(Location.objects.all()) if locations is None else locations
    lines = loaded(order, "lines")
    evaluation, decision = None, None
    for _ in range(MAX_ATTEMPTS):
        evaluation = evaluate(order, rules=rules, locations=locations, lines=lines)
        if not evaluation.plan.filled:
            break
        plan = [PlannedShipment(loc, assigned) for loc, assigned in evaluation.plan.shipments]
        recorded = _DecisionOnce(order, evaluation, actor)
        try:
            # A reservation that falls short writes nothing but keeps the stock rows it locked to check them;
            # rolling back to the savepoint lets them go before the next candidate's rows are locked (or two
            # orders moving on in opposite directions would deadlock), and takes back the shipments, the
            # transition and the decision written before it.
            with transaction.atomic():
                order_allocate_locked(
                    order,
                    plan=plan,
                    actor=actor,
                    requires_approval=evaluation.outcome == RoutingDecision.Outcome.SPLIT_PENDING,
                    data={"rule": evaluation.rule.name, "outcome": evaluation.outcome},
                    before_reserving=recorded,
                )
            decision = recorded.decision
            break
        except InsufficientStock:
            continue  # someone else reserved those units between our look and our update
    else:
        evaluation.plan = Plan(short={line.pk: line.quantity_open for line in evaluation.lines if line.quantity_open})
    for shipment in loaded(order, "shipments") or ():
        shipment.location = evaluation.locations[shipment.location_id]
    if decision is None:
        decision = record_decision_locked(order, evaluation, actor)
    moot = f"Planned again: {evaluation.summary()}."
    if evaluation.outcome not in (RoutingDecision.Outcome.SPLIT_PENDING, RoutingDecision.Outcome.BACKORDER):
        _resolve_open(order, "split_approval_required", note=moot, action=action, actor=actor)
    allocated = evaluation.outcome in (RoutingDecision.Outcome.SINGLE, RoutingDecision.Outcome.SPLIT)
    if allocated:
        _resolve_open(order, "out_of_stock", note=f"Allocated: {evaluation.summary()}", action=action, actor=actor)
        if order.service_level == ServiceLevel.SAME_DAY:
            forget_loaded(order)
            order_release_locked(order, actor=actor)  # same-day orders go to the warehouse at once
        return decision
    forget_loaded(order)
    if evaluation.outcome == RoutingDecision.Outcome.SPLIT_PENDING:
        exception_raise(
            code="split_approval_required",
            order=order,
            actor=actor,
            summary=f"Proposed split: {evaluation.summary().removeprefix('split: ')}",
            detail={"decision": decision.pk, "plan": decision.plan},
        )
    else:
        order_backorder_locked(order, actor=actor, short=decision.short)
        _resolve_open(order, "split_approval_required", note=moot, action=action, actor=actor)
        summary = evaluation.summary()
        exception_raise(
            code="out_of_stock",
            order=order,
            actor=actor,
            summary=summary[:1].upper() + summary[1:],
            detail={"decision": decision.pk, "short": decision.short},
        )
    return decision


# --- what people and playbooks do with plans ---------------------------------------------


@dataclass(frozen=True)
class ApprovalResult:
    order: Order
    approved: bool
    message: str
    decision: RoutingDecision | None = None


@transaction.atomic
def order_approve_split(*, order: Order, actor: Actor) -> ApprovalResult:
    """Approve a proposed split; if its stock has gone meanwhile, say so and plan again instead."""
    order = order_lock(order)
    if order.status != OrderStatus.AWAITING_APPROVAL:
        raise IllegalTransition(order, "approve_split")
    gone = stock_gone(order)
    if not gone:
        order_transition_locked(order, "approve_split", actor=actor)
        return ApprovalResult(order, True, "Split approved: the shipments are planned.")
    order_replan_locked(order, actor=actor, reason=f"stock gone since the plan was made: {', '.join(gone)}")
    decision = order_route_locked(order, actor=actor)
    return ApprovalResult(
        order,
        False,
        f"The stock for {', '.join(gone)} has gone since this plan was made, "
        f"so the order was planned again: {decision.get_outcome_display().lower()}.",
        decision,
    )


@transaction.atomic
def order_reject_split(*, order: Order, actor: Actor, reason: str = "Split rejected; waiting for full stock") -> Order:
    """Wait for full stock instead: reservations released, order backordered, an out-of-stock exception opened."""
    order = order_lock(order)
    order_transition_locked(order, "reject_split", actor=actor, data={"reason": reason})
    give_back_plan_locked(order, actor=actor, reason=reason)
    forget_loaded(order)
    exception_raise(
        code="out_of_stock", order=order, actor=actor, summary=f"Split rejected, waiting for full stock: {reason}"[:300]
    )
    return order


@transaction.atomic
def order_reallocate_to(*, order: Order, location: Location, actor: Actor, action: str = REPLANNED) -> RoutingDecision:
    """Move an order not yet released to one location a person chose; refused (and nothing changed) if it
    cannot fill it. What the move makes moot is closed as `action`."""
    order = order_replan_locked(order_lock(order), actor=actor, reason=f"reallocate to {location.code}")
    chosen = chosen_location_rule(location, chosen_by=str(actor))
    evaluation = evaluate(order, rules=[chosen])
    if not evaluation.plan.filled:
        why = next((c.reason for c in evaluation.candidates if c.location_id == location.pk), "it cannot fill the order")
        raise InsufficientStock(f"{location.code} cannot take this order: {why}.")
    decision = order_route_locked(order, actor=actor, rules=[chosen], action=action)
    if decision.outcome != RoutingDecision.Outcome.SINGLE:
        # Another order took the stock between the look above and the reservation: refuse, and all of this rolls back.
        raise InsufficientStock(f"{location.code} cannot take this order: its stock went to another order just now.")
    return decision


@transaction.atomic
def order_reallocate_owed_to(*, order: Order, location: Location, actor: Actor) -> list[Shipment]:
    """Ship the units a released order still owes (a short pick left them) from one location a person chose.

    Released at once, as the playbook does when its rule has room; refused (and nothing changed)
    when the location cannot take them.
    """
    order = order_lock(order)
    if order.status not in AFTER_RELEASE:
        raise IllegalTransition(order, "reallocate", "only units owed after release are shipped from another location this way.")
    owed = [line for line in order.lines.order_by("line_number") if line.sku_id and not line.cancelled and line.quantity_open > 0]
    if not owed:
        raise Conflict(
            OrderError.ILLEGAL_TRANSITION,
            f"Order {order.display_name} owes nothing: every unit is on a shipment, shipped or cancelled.",
            order=order.pk,
        )
    if not location.active or not location.ships_to_country(order.ship_country):
        raise InvalidInput(
            OrderError.INVALID_PLAN,
            f"{location.code} does not ship to {order.ship_country}.",
            fields={"location": ["Cannot ship there."]},
        )
    plan = [PlannedShipment(location.pk, tuple((line.pk, line.quantity_open) for line in owed))]
    try:
        with transaction.atomic():
            return order_allocate_remainder_locked(order, plan=plan, actor=actor, release=True)
    except InsufficientStock as shortage:
        raise InsufficientStock(f"{location.code} cannot take the units owed: {shortage.message}") from None
