"""Routing and allocation: which rule applies, which locations are candidates and why,
and the plan that the inventory's conditional updates then make real.

`order_route` is the use case (one transaction). `evaluate` is the same thinking
without reserving anything; the admin's dry run uses it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import transaction
from django.db.models import F, Q, Sum

from exceptions.models import OPEN_STATUSES, FulfillmentException
from exceptions.services import exception_raise, exception_resolve
from fulfillment.actors import SYSTEM, Actor
from fulfillment.errors import Conflict, InvalidInput
from inventory.models import Location, StockLevel
from inventory.services import InsufficientStock, stock_write_off_reserved

from . import services
from .errors import OrderError
from .models import (
    Order,
    OrderLine,
    OrderStatus,
    RoutingDecision,
    RoutingRule,
    ServiceLevel,
    Shipment,
    ShipmentLine,
    ShipmentStatus,
    forget_related,
    prefetched,
)
from .planner import Plan, PlanLine, plan_shipments
from .services import (
    IllegalTransition,
    PlannedShipment,
    order_allocate_locked,
    order_allocate_remainder,
    order_approve_split,
    order_backorder,
    order_lock,
    order_reallocate_start,
    order_reject_split,
    order_release,
    order_replan_start,
    shipment_lock,
    shipment_pick,
)

DEFAULT_RULE_NAME = "Built-in default: every active location that ships there, nearest first"
DEFAULT_MAX_SHIPMENTS = 3
# A reservation can lose a race for the last units; look at the stock again this many times.
MAX_ATTEMPTS = 5


@dataclass(frozen=True)
class RuleSpec:
    """A routing rule as the engine reads it; built from a saved rule or from an admin form being edited."""

    name: str
    rule_id: int | None = None
    priority: int = 0
    partner_ids: frozenset[int] = frozenset()
    countries: frozenset[str] = frozenset()
    postal_prefixes: tuple[str, ...] = ()
    service_levels: frozenset[str] = frozenset()
    customer_tiers: frozenset[str] = frozenset()
    min_order_value: Decimal | None = None
    max_order_value: Decimal | None = None
    ranked_location_ids: tuple[int, ...] = ()
    excluded_location_ids: frozenset[int] = frozenset()
    allow_split: bool = True
    max_shipments: int = DEFAULT_MAX_SHIPMENTS
    split_requires_approval: bool = False

    @classmethod
    def from_rule(cls, rule: RoutingRule) -> RuleSpec:
        """Expects partners, excluded_locations and ranked_locations prefetched."""
        return cls(
            name=rule.name,
            rule_id=rule.pk,
            priority=rule.priority,
            partner_ids=frozenset(p.pk for p in rule.partners.all()),
            countries=frozenset(c.upper() for c in rule.destination_countries),
            postal_prefixes=tuple(p.replace(" ", "").upper() for p in rule.postal_prefixes),
            service_levels=frozenset(rule.service_levels),
            customer_tiers=frozenset(rule.customer_tiers),
            min_order_value=rule.min_order_value,
            max_order_value=rule.max_order_value,
            ranked_location_ids=tuple(
                rl.location_id for rl in sorted(rule.ranked_locations.all(), key=lambda rl: (rl.rank, rl.pk or 0))
            ),
            excluded_location_ids=frozenset(loc.pk for loc in rule.excluded_locations.all()),
            allow_split=rule.allow_split,
            max_shipments=rule.max_shipments,
            split_requires_approval=rule.split_requires_approval,
        )

    def matches(self, order: Order) -> bool:
        postal = (order.ship_postal_code or "").replace(" ", "").upper()
        return (
            (not self.partner_ids or order.partner_id in self.partner_ids)
            and (not self.countries or (order.ship_country or "").upper() in self.countries)
            and (not self.postal_prefixes or any(postal.startswith(p) for p in self.postal_prefixes))
            and (not self.service_levels or order.service_level in self.service_levels)
            and (not self.customer_tiers or order.customer_tier in self.customer_tiers)
            and (self.min_order_value is None or order.total_amount >= self.min_order_value)
            and (self.max_order_value is None or order.total_amount <= self.max_order_value)
        )


DEFAULT_RULE = RuleSpec(name=DEFAULT_RULE_NAME)


def active_rules() -> list[RuleSpec]:
    rules = (
        RoutingRule.objects.filter(active=True)
        .prefetch_related("partners", "excluded_locations", "ranked_locations")
        .order_by("priority", "id")
    )
    return [RuleSpec.from_rule(rule) for rule in rules]


def matching_rule(order: Order, rules: Sequence[RuleSpec]) -> RuleSpec:
    return next((rule for rule in rules if rule.matches(order)), DEFAULT_RULE)


@dataclass
class Candidate:
    location_id: int
    code: str
    rank: int
    verdict: str  # chosen, not_used, rejected
    reason: str

    def as_dict(self) -> dict:
        return {
            "location": self.code,
            "location_id": self.location_id,
            "rank": self.rank,
            "verdict": self.verdict,
            "reason": self.reason,
        }


@dataclass
class Evaluation:
    rule: RuleSpec
    candidates: list[Candidate]
    plan: Plan
    lines: list[OrderLine]
    locations: dict[int, Location] = field(default_factory=dict)

    @property
    def is_split(self) -> bool:
        return len(self.plan.shipments) > 1

    @property
    def outcome(self) -> str:
        if not self.plan.filled:
            return RoutingDecision.Outcome.BACKORDER
        if not self.is_split:
            return RoutingDecision.Outcome.SINGLE
        return RoutingDecision.Outcome.SPLIT_PENDING if self.rule.split_requires_approval else RoutingDecision.Outcome.SPLIT

    def plan_as_dicts(self) -> list[dict]:
        by_id = {line.pk: line for line in self.lines}
        return [
            {
                "location": self.locations[loc].code,
                "location_id": loc,
                "lines": [
                    {"line": by_id[line_id].line_number, "line_id": line_id, "sku": by_id[line_id].sku_code, "quantity": quantity}
                    for line_id, quantity in assigned
                ],
            }
            for loc, assigned in self.plan.shipments
        ]

    def short_by_line_number(self) -> dict[str, int]:
        by_id = {line.pk: line for line in self.lines}
        return {str(by_id[line_id].line_number): units for line_id, units in self.plan.short.items()}

    def summary(self) -> str:
        if self.plan.filled:
            sites = " + ".join(self.locations[loc].code for loc, _ in self.plan.shipments)
            return f"{'split: ' if self.is_split else ''}{sites}"
        if self.plan.needs_more_shipments:
            return f"backorder: needs more than {self.rule.max_shipments if self.rule.allow_split else 1} shipment(s)"
        by_id = {line.pk: line for line in self.lines}
        return "backorder: short " + ", ".join(
            f"{by_id[line_id].sku_code} ×{units}" for line_id, units in self.plan.short.items()
        )


def _default_order(order: Order):
    """Nearest first: sites serving the postal prefix, then sites in the destination country, then by code."""
    country = (order.ship_country or "").upper()

    def key(location: Location):
        return (not location.serves_postal_code(order.ship_postal_code), location.country.upper() != country, location.code)

    return key


def _candidates(order: Order, rule: RuleSpec, locations: Iterable[Location]) -> tuple[list[Location], list[Candidate]]:
    by_id = {loc.pk: loc for loc in locations}
    preferred = [by_id[pk] for pk in rule.ranked_location_ids if pk in by_id]
    others = sorted(
        (loc for loc in by_id.values() if loc.pk not in rule.ranked_location_ids and loc.active), key=_default_order(order)
    )
    eligible, rejected = [], []
    country = (order.ship_country or "").upper()
    for rank, location in enumerate(preferred + others, start=1):
        if not location.active:
            rejected.append(Candidate(location.pk, location.code, rank, "rejected", "inactive"))
        elif location.pk in rule.excluded_location_ids:
            rejected.append(Candidate(location.pk, location.code, rank, "rejected", "excluded by the rule"))
        elif not location.ships_to_country(country):
            rejected.append(
                Candidate(location.pk, location.code, rank, "rejected", f"does not ship to {country or 'an unknown country'}")
            )
        else:
            eligible.append(location)
    return eligible, rejected


def _plan_lines(lines: Sequence[OrderLine], *, include_allocated: bool) -> list[PlanLine]:
    return [
        PlanLine(line.pk, line.sku_id, line.quantity_open + (line.quantity_allocated if include_allocated else 0))
        for line in lines
        if line.sku_id and not line.cancelled
    ]


def _availability(location_ids: Sequence[int], sku_ids: Sequence[int]) -> dict[tuple[int, int], int]:
    # No ordering: StockLevel's default one joins the location and SKU tables only to sort a dict's input.
    levels = StockLevel.objects.filter(location_id__in=location_ids, sku_id__in=sku_ids).order_by()
    return {
        (loc, sku): on_hand - reserved
        for loc, sku, on_hand, reserved in levels.values_list("location_id", "sku_id", "on_hand", "reserved")
    }


def own_reservations(order: Order) -> dict[tuple[int, int], int]:
    """What this order holds reserved (and not yet picked), per (location, SKU)."""
    rows = (
        Shipment.objects.filter(order=order, status__in=[ShipmentStatus.PLANNED, ShipmentStatus.RELEASED])
        .values("location_id", "lines__order_line__sku_id")
        .annotate(units=Sum("lines__quantity"))
    )
    return {(row["location_id"], row["lines__order_line__sku_id"]): row["units"] for row in rows if row["units"]}


def _verdicts(
    evaluation_lines: list[PlanLine],
    eligible: list[Location],
    rejected: list[Candidate],
    plan: Plan,
    available,
    rule: RuleSpec,
    skus: dict[int, str],
) -> list[Candidate]:
    chosen = {loc: assigned for loc, assigned in plan.shipments}
    demand: dict[int, int] = defaultdict(int)
    for line in evaluation_lines:
        demand[line.sku_id] += line.quantity
    result = []
    for rank, location in enumerate(eligible, start=1):
        if location.pk in chosen:
            units = sum(q for _, q in chosen[location.pk])
            reason = "fills the whole order" if len(chosen) == 1 else f"ships {len(chosen[location.pk])} line(s), {units} unit(s)"
            result.append(Candidate(location.pk, location.code, rank, "chosen", reason))
            continue
        gaps = [
            f"{skus.get(sku, sku)} needs {need}, {max(0, available.get((location.pk, sku), 0))} available"
            for sku, need in demand.items()
            if available.get((location.pk, sku), 0) < need
        ]
        if plan.filled and not gaps:
            reason = "not needed: a better-ranked location fills the order"
        elif plan.filled:
            reason = "not needed" if len(chosen) > 1 else "not enough stock: " + "; ".join(gaps)
        elif plan.needs_more_shipments:
            limit = rule.max_shipments if rule.allow_split else 1
            reason = f"not enough stock alone ({'; '.join(gaps)}); together the sites would need more than {limit} shipment(s)"
        else:
            reason = "not enough stock: " + "; ".join(gaps) if gaps else "not used"
        result.append(Candidate(location.pk, location.code, rank, "not_used", reason))
    # Rejected ones keep their place in the ranking for the explanation.
    return sorted(result + rejected, key=lambda c: (c.verdict == "rejected", c.rank))


def evaluate(
    order: Order,
    *,
    rules: Sequence[RuleSpec] | None = None,
    locations: Sequence[Location] | None = None,
    include_allocated: bool = False,
    lines: Sequence[OrderLine] | None = None,
) -> Evaluation:
    """Decide without reserving: the rule, the candidates and the plan for this order now.

    `include_allocated` plans the whole order again as if its own reservations were
    free (the dry run of already allocated orders).
    """
    rules = active_rules() if rules is None else rules
    rule = matching_rule(order, rules)
    locations = list(Location.objects.all()) if locations is None else locations
    lines = list(order.lines.select_related("sku").order_by("line_number")) if lines is None else list(lines)
    eligible, rejected = _candidates(order, rule, locations)
    plan_lines = _plan_lines(lines, include_allocated=include_allocated)
    available = _availability([loc.pk for loc in eligible], sorted({line.sku_id for line in plan_lines}))
    if include_allocated:
        for key, units in own_reservations(order).items():
            available[key] = available.get(key, 0) + units
    plan = plan_shipments(
        plan_lines, [loc.pk for loc in eligible], available, allow_split=rule.allow_split, max_shipments=rule.max_shipments
    )
    skus = {line.sku_id: line.sku_code for line in lines}
    candidates = _verdicts(plan_lines, eligible, rejected, plan, available, rule, skus)
    return Evaluation(rule, candidates, plan, lines, {loc.pk: loc for loc in locations})


def _record(order: Order, evaluation: Evaluation, actor: Actor, outcome: str | None = None) -> RoutingDecision:
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


def _resolve_open(order: Order, code: str, *, note: str, actor: Actor) -> None:
    if prefetched(order, "exceptions") == []:
        return  # an order just stored has none
    for exception in FulfillmentException.objects.filter(order=order, type__code=code, status__in=OPEN_STATUSES):
        exception_resolve(exception=exception, note=note, action="reallocated", actor=actor)


def _close_split_proposal(order: Order, evaluation: Evaluation, actor: Actor) -> None:
    """Planned otherwise (after a new address, a hold, stock gone): a split proposed earlier is moot."""
    _resolve_open(order, "split_approval_required", note=f"Planned again: {evaluation.summary()}.", actor=actor)


@transaction.atomic
def order_route(*, order: Order, actor: Actor = SYSTEM, rules: Sequence[RuleSpec] | None = None) -> RoutingDecision:
    """Allocate a ready order by the rules: one location, a split, or a backorder.

    Reservations go through the inventory's conditional UPDATE; when another order
    takes the last units first, the engine reads the stock again and moves on to the
    next candidate instead of failing. The decision is stored with its reasons, and
    the outcome opens what a person must see (split approval, out of stock).
    """
    order = order_lock(order)
    if order.status != OrderStatus.READY:
        raise IllegalTransition(order, "allocate", "only orders that are ready can be allocated.")
    # An order back from hold may still hold its earlier plan; stock and rules may have moved since.
    services.order_give_back_plan(order, actor=actor, reason="planning again")
    return order_route_locked(order, actor=actor, rules=rules)


def order_route_locked(order: Order, *, actor: Actor = SYSTEM, rules: Sequence[RuleSpec] | None = None) -> RoutingDecision:
    """order_route for a ready order the caller holds locked in its transaction, with no plan left to give back.

    An order just stored (services.order_store) brings its lines, shipments and exceptions as
    prefetched and they are not read again; when the outcome is a plain allocation, the order
    stays current in memory with its new shipments, otherwise it forgets them (read it again).
    """
    rules = active_rules() if rules is None else rules
    locations = list(Location.objects.all())
    lines = prefetched(order, "lines")
    evaluation = None
    for _ in range(MAX_ATTEMPTS):
        evaluation = evaluate(order, rules=rules, locations=locations, lines=lines)
        if not evaluation.plan.filled:
            break
        plan = [PlannedShipment(loc, assigned) for loc, assigned in evaluation.plan.shipments]
        try:
            # A reservation that falls short writes nothing but keeps the stock rows it locked to check them;
            # rolling back to the savepoint lets them go before the next candidate's rows are locked (or two
            # orders moving on in opposite directions would deadlock).
            with transaction.atomic():
                order_allocate_locked(
                    order,
                    plan=plan,
                    actor=actor,
                    requires_approval=evaluation.outcome == RoutingDecision.Outcome.SPLIT_PENDING,
                    data={"rule": evaluation.rule.name, "outcome": evaluation.outcome},
                )
            break
        except InsufficientStock:
            continue  # someone else reserved those units between our look and our update
    else:
        evaluation.plan = Plan(short={line.pk: line.quantity_open for line in evaluation.lines if line.quantity_open})
    for shipment in prefetched(order, "shipments") or ():
        shipment.location = evaluation.locations[shipment.location_id]
    decision = _record(order, evaluation, actor)
    if evaluation.outcome not in (RoutingDecision.Outcome.SPLIT_PENDING, RoutingDecision.Outcome.BACKORDER):
        _close_split_proposal(order, evaluation, actor)
    if (
        evaluation.outcome in (RoutingDecision.Outcome.SINGLE, RoutingDecision.Outcome.SPLIT)
        and order.service_level != ServiceLevel.SAME_DAY
    ):
        _resolve_open(order, "out_of_stock", note=f"Allocated: {evaluation.summary()}", actor=actor)
        return decision
    # The outcomes below change the order through services that lock and read it afresh.
    forget_related(order)
    if evaluation.outcome == RoutingDecision.Outcome.SPLIT_PENDING:
        exception_raise(
            code="split_approval_required",
            order=order,
            actor=actor,
            summary=f"Proposed split: {evaluation.summary().removeprefix('split: ')}",
            detail={"decision": decision.pk, "plan": decision.plan},
        )
    elif evaluation.outcome == RoutingDecision.Outcome.BACKORDER:
        order = order_backorder(order=order, actor=actor, short=decision.short)
        # Only now: closing an exception plans the order again while it is ready (route_when_hold_lifts).
        _close_split_proposal(order, evaluation, actor)
        summary = evaluation.summary()
        exception_raise(
            code="out_of_stock",
            order=order,
            actor=actor,
            summary=summary[:1].upper() + summary[1:],
            detail={"decision": decision.pk, "short": decision.short},
        )
    else:
        _resolve_open(order, "out_of_stock", note=f"Allocated: {evaluation.summary()}", actor=actor)
        if order.service_level == ServiceLevel.SAME_DAY:
            order_release(order=order, actor=actor)  # same-day orders go to the warehouse at once
    return decision


# --- what people and playbooks do with plans ---------------------------------------------


@dataclass(frozen=True)
class ApprovalResult:
    approved: bool
    message: str
    decision: RoutingDecision | None = None


def _stock_gone(order: Order) -> list[str]:
    """Planned shipments whose reservation the stock no longer backs (a count took the units away)."""
    lines = list(
        ShipmentLine.objects.filter(shipment__order=order, shipment__status=ShipmentStatus.PLANNED).select_related(
            "shipment__location", "order_line"
        )
    )
    pairs = {(line.shipment.location_id, line.order_line.sku_id) for line in lines}
    if not pairs:
        return []
    pair_filter = Q()
    for location_id, sku_id in pairs:
        pair_filter |= Q(location_id=location_id, sku_id=sku_id)
    levels = {(lvl.location_id, lvl.sku_id): lvl for lvl in StockLevel.objects.filter(pair_filter)}
    committed_filter = Q()
    for location_id, sku_id in pairs:
        committed_filter |= Q(shipment__location_id=location_id, order_line__sku_id=sku_id)
    committed = {
        (row["shipment__location_id"], row["order_line__sku_id"]): row["units"]
        for row in ShipmentLine.objects.filter(
            committed_filter, shipment__status__in=[ShipmentStatus.PLANNED, ShipmentStatus.RELEASED]
        )
        .values("shipment__location_id", "order_line__sku_id")
        .annotate(units=Sum("quantity"))
    }
    gone = []
    for line in lines:
        key = (line.shipment.location_id, line.order_line.sku_id)
        level = levels.get(key)
        backed = (level.reserved - level.picked) if level else 0
        if not line.shipment.location.active or committed.get(key, 0) > backed:
            gone.append(f"{line.order_line.sku_code} at {line.shipment.location.code}")
    return sorted(set(gone))


@transaction.atomic
def split_approve(*, order: Order, actor: Actor) -> ApprovalResult:
    """Approve a proposed split; if its stock has gone meanwhile, say so and plan again instead."""
    order = order_lock(order)
    if order.status != OrderStatus.AWAITING_APPROVAL:
        raise IllegalTransition(order, "approve_split")
    gone = _stock_gone(order)
    if not gone:
        order_approve_split(order=order, actor=actor)
        return ApprovalResult(True, "Split approved: the shipments are planned.")
    reason = f"stock gone since the plan was made: {', '.join(gone)}"
    order = order_replan_start(order=order, actor=actor, reason=reason)
    decision = order_route(order=order, actor=actor)
    return ApprovalResult(
        False,
        f"The stock for {', '.join(gone)} has gone since this plan was made, "
        f"so the order was planned again: {decision.get_outcome_display().lower()}.",
        decision,
    )


@transaction.atomic
def split_reject(*, order: Order, actor: Actor, reason: str) -> Order:
    """Wait for full stock instead: reservations released, order backordered, an out-of-stock exception opened."""
    order = order_reject_split(order=order, actor=actor, reason=reason)
    exception_raise(
        code="out_of_stock", order=order, actor=actor, summary=f"Split rejected, waiting for full stock: {reason}"[:300]
    )
    return order


@transaction.atomic
def order_reallocate_to(*, order: Order, location: Location, actor: Actor) -> RoutingDecision:
    """Move an order not yet released to one location a person chose; refused (and nothing changed) if it cannot fill it."""
    order = order_reallocate_start(order=order, actor=actor, reason=f"reallocate to {location.code}")
    others = frozenset(Location.objects.exclude(pk=location.pk).values_list("pk", flat=True))
    chosen = RuleSpec(
        name=f"Chosen by {actor}",
        ranked_location_ids=(location.pk,),
        excluded_location_ids=others,
        allow_split=False,
        max_shipments=1,
    )
    evaluation = evaluate(order, rules=[chosen])
    if not evaluation.plan.filled:
        why = next((c.reason for c in evaluation.candidates if c.location_id == location.pk), "it cannot fill the order")
        raise InsufficientStock(f"{location.code} cannot take this order: {why}.")
    decision = order_route(order=order, actor=actor, rules=[chosen])
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
    order = services.order_lock(order)
    if order.status not in services.AFTER_RELEASE:
        raise services.IllegalTransition(
            order, "reallocate", "only units owed after release are shipped from another location this way."
        )
    owed = [line for line in order.lines.order_by("line_number") if line.sku_id and not line.cancelled and line.quantity_open > 0]
    if not owed:
        raise Conflict(
            OrderError.ILLEGAL_TRANSITION, f"Order {order.pk} owes nothing: every unit is on a shipment, shipped or cancelled."
        )
    if not location.active or not location.ships_to_country(order.ship_country):
        raise InvalidInput(
            OrderError.INVALID_PLAN,
            f"{location.code} does not ship to {order.ship_country}.",
            fields={"location": ["Cannot ship there."]},
        )
    plan = [PlannedShipment(location.pk, tuple((line.pk, line.quantity_open) for line in owed))]
    try:
        return services.order_allocate_remainder(order=order, plan=plan, actor=actor, release=True)
    except InsufficientStock as shortage:
        raise InsufficientStock(f"{location.code} cannot take the units owed: {shortage.message}") from None


def _write_off_not_found(shipment: Shipment, line: ShipmentLine, *, picked: int, actor: Actor, source_system: str) -> None:
    """Write off the reserved units of a shipment line the warehouse did not find.

    A stock count (stock_count_correction) may already have shrunk the reservation below what the
    shipment planned; those units left on_hand with the count and are not written off a second time.
    """
    still_reserved = services.reserved_for(shipment, line)
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
) -> RoutingDecision | FulfillmentException:
    """The warehouse picked fewer units than planned (`picked`: order line id -> units picked).

    The missing units are written off at that location; the rest is picked. Then the
    playbook: if the order's rule allows another shipment, the short quantity is
    re-allocated at another location and released at once; otherwise a short_pick
    exception opens for a person.
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
        services._lock_stock_of([shipment])
    for line in lines:
        got = picked.get(line.order_line_id, line.quantity)
        if not isinstance(got, int) or not 0 <= got <= line.quantity:
            message = f"Line {line.order_line.line_number}: picked must be between 0 and {line.quantity}."
            raise InvalidInput(OrderError.INVALID_PLAN, message, fields={"lines": [message]})
        if got < line.quantity:
            shorts[line.order_line_id] = line.quantity - got
            _write_off_not_found(shipment, line, picked=got, actor=actor, source_system=source_system)
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
        shipment_pick(shipment=shipment, actor=actor, source_system=source_system)
    else:
        services._run_shipment_transition(shipment, "cancel", actor=actor, data={"reason": "nothing could be picked"})
    services._order_action_event(order, "short_pick", actor=actor, data={"shipment": shipment.pk, "short": short_by_line})
    if not shorts:
        return None
    rule = matching_rule(order, active_rules())
    active = Shipment.objects.filter(order=order, status__in=Shipment.ACTIVE).count()
    room = rule.max_shipments - active if rule.allow_split else 0
    if room >= 1:
        narrowed = RuleSpec(
            name=rule.name,
            rule_id=rule.rule_id,
            ranked_location_ids=rule.ranked_location_ids,
            excluded_location_ids=rule.excluded_location_ids | {shipment.location_id},
            allow_split=room > 1,
            max_shipments=room,
        )
        evaluation = evaluate(order, rules=[narrowed])
        if evaluation.plan.filled:
            try:
                with transaction.atomic():
                    order_allocate_remainder(
                        order=order,
                        plan=[PlannedShipment(loc, assigned) for loc, assigned in evaluation.plan.shipments],
                        actor=actor,
                        release=order.status in (OrderStatus.RELEASED, OrderStatus.PARTIALLY_SHIPPED),
                    )
                return _record(order, evaluation, actor, outcome=RoutingDecision.Outcome.PARTIAL)
            except InsufficientStock:
                pass
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


def plan_for_the_new_address(change: services.AddressChange, *, actor: Actor) -> RoutingDecision | None:
    """Plan again an order whose plan was made for the address it had (caller's transaction).

    The old shipments are cancelled and their stock given back first, so the order may land on
    the same site again.
    """
    if not change.plan_outdated:
        return None
    order = change.order
    destination = f"{order.ship_postal_code} {order.ship_country}".strip()
    order = order_reallocate_start(order=order, actor=actor, reason=f"the shipping address moved to {destination}")
    return order_route(order=order, actor=actor)


@transaction.atomic
def order_change_address(*, order: Order, changes: dict, actor: Actor) -> services.AddressChange:
    """services.order_change_address, then a new plan if the order holds one made for the old address."""
    change = services.order_change_address(order=order, changes=changes, actor=actor)
    plan_for_the_new_address(change, actor=actor)
    return change


@transaction.atomic
def order_correct_address(*, order: Order, address: services.Address, actor: Actor) -> services.AddressChange:
    """services.order_correct_address, then a new plan if the order holds one made for the old address."""
    change = services.order_correct_address(order=order, address=address, actor=actor)
    plan_for_the_new_address(change, actor=actor)
    return change


def route_when_hold_lifts(exception, actor: Actor) -> None:
    """Exceptions hook: an order whose hold just lifted is ready again, so allocate it now."""
    order = Order.objects.filter(pk=exception.order_id, status=OrderStatus.READY).first()
    if order is not None:
        order_route(order=order, actor=actor)


RELEASE_WAVE = Actor.job("release_wave")


def release_wave(*, limit: int = 500, actor: Actor = RELEASE_WAVE) -> int:
    """Release allocated orders to the warehouse, oldest first, each in its own transaction.

    Orders that another worker is handling are skipped (SKIP LOCKED), and an order
    that may not go (a blocking exception opened meanwhile) stays allocated.
    """
    released = 0
    ids = list(
        Order.objects.filter(status=OrderStatus.ALLOCATED).order_by("created_at", "pk").values_list("pk", flat=True)[:limit]
    )
    for pk in ids:
        with transaction.atomic():
            order = Order.objects.select_for_update(skip_locked=True).filter(pk=pk, status=OrderStatus.ALLOCATED).first()
            if order is None:
                continue
            try:
                order_release(order=order, actor=actor)
                released += 1
            except IllegalTransition:
                continue
    return released


# --- dry run ------------------------------------------------------------------------------

DRY_RUN_ALLOCATED = 50


@dataclass(frozen=True)
class DryRunRow:
    order: Order
    now: str
    proposed: str
    rule: str
    changed: bool


def current_plan_summary(order: Order) -> str:
    if order.status == OrderStatus.BACKORDERED:
        return "backordered"
    sites = [s.location.code for s in order.shipments.all() if s.status in (ShipmentStatus.PLANNED, ShipmentStatus.RELEASED)]
    if not sites:
        return order.get_status_display().lower()
    return ("split: " if len(sites) > 1 else "") + " + ".join(sites)


def dry_run_orders(*, allocated: int = DRY_RUN_ALLOCATED) -> list[Order]:
    """The orders a routing change would touch first: backordered, awaiting approval, and the last allocated ones."""
    waiting = Order.objects.filter(status__in=[OrderStatus.BACKORDERED, OrderStatus.AWAITING_APPROVAL]).order_by("created_at")
    recent = Order.objects.filter(status=OrderStatus.ALLOCATED).order_by("-updated_at")[:allocated]
    related = ("partner",)
    return [
        *waiting.select_related(*related).prefetch_related("shipments__location"),
        *recent.select_related(*related).prefetch_related("shipments__location"),
    ]


def dry_run(rules: Sequence[RuleSpec], orders: Sequence[Order]) -> list[DryRunRow]:
    """What each order would get under `rules`, next to what it has now. Reserves nothing."""
    locations = list(Location.objects.all())
    rows = []
    for order in orders:
        evaluation = evaluate(order, rules=rules, locations=locations, include_allocated=True)
        now, proposed = current_plan_summary(order), evaluation.summary()
        if evaluation.outcome == RoutingDecision.Outcome.SPLIT_PENDING:
            proposed += " (needs approval)"
        rows.append(DryRunRow(order, now, proposed, evaluation.rule.name, now != proposed.removesuffix(" (needs approval)")))
    return rows
