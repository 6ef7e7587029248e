"""The routing engine: which rule applies to an order, which locations are candidates and why, the plan
(orders/planner.py finds it), the explanation in plain words, and the dry run of a rule set.

It reads and decides; it writes nothing. The allocation services (orders/services/allocation.py)
turn its plan into reservations and store its decision.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Q, Sum

from core.addresses import normalized_postal_code
from inventory.models import Location, StockLevel

from .models import Order, OrderLine, OrderStatus, RoutingDecision, RoutingRule, Shipment, ShipmentLine, ShipmentStatus
from .planner import Plan, PlanLine, plan_shipments

DEFAULT_RULE_NAME = "Built-in default: every active location that ships there, nearest first"
DEFAULT_MAX_SHIPMENTS = 3
# A person's choice is stored as a rule of this name; admin rules may not take it (orders/admin_forms.py).
CHOSEN_BY_PREFIX = "Chosen by "
NOT_CHOSEN = "not chosen"


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
    chosen_by: str = ""  # the actor who picked the location by hand; empty for rules

    @classmethod
    def from_rule(cls, rule: RoutingRule) -> RuleSpec:
        """Expects partners, excluded_locations and ranked_locations prefetched."""
        return cls(
            name=rule.name,
            rule_id=rule.pk,
            priority=rule.priority,
            partner_ids=frozenset(p.pk for p in rule.partners.all()),
            countries=frozenset(c.upper() for c in rule.destination_countries),
            postal_prefixes=tuple(normalized_postal_code(p) for p in rule.postal_prefixes),
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
        postal = normalized_postal_code(order.ship_postal_code)
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


def chosen_location_rule(location: Location, *, chosen_by: str) -> RuleSpec:
    """A rule that allows only `location`, in one shipment: a person's choice."""
    others = frozenset(Location.objects.exclude(pk=location.pk).values_list("pk", flat=True))
    return RuleSpec(
        name=f"{CHOSEN_BY_PREFIX}{chosen_by}",
        ranked_location_ids=(location.pk,),
        excluded_location_ids=others,
        allow_split=False,
        max_shipments=1,
        chosen_by=chosen_by,
    )


def person_who_chose(decision: RoutingDecision) -> str | None:
    """Who picked the location by hand, as the page names them ("coord" for user:coord); None for a rule's decision."""
    if decision.rule_id or not decision.rule_name.startswith(CHOSEN_BY_PREFIX):
        return None
    actor = decision.rule_name.removeprefix(CHOSEN_BY_PREFIX)
    kind, _, name = actor.partition(":")
    return name if kind == "user" and name else actor


def remainder_rule(rule: RuleSpec, *, excluded_location_id: int, room: int) -> RuleSpec:
    """`rule` for units a short pick left owed: not from the site that was short, in at most `room` more shipments."""
    return RuleSpec(
        name=rule.name,
        rule_id=rule.rule_id,
        ranked_location_ids=rule.ranked_location_ids,
        excluded_location_ids=rule.excluded_location_ids | {excluded_location_id},
        allow_split=room > 1,
        max_shipments=room,
    )


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
            reason = NOT_CHOSEN if rule.chosen_by else "excluded by the rule"
            rejected.append(Candidate(location.pk, location.code, rank, "rejected", reason))
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


def stock_gone(order: Order) -> list[str]:
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


def routing_explanation(decision: RoutingDecision) -> list[str]:
    """The decision in plain words, one sentence per line."""
    sites = [shipment["location"] for shipment in decision.plan]
    person = person_who_chose(decision)
    if person:
        chosen = sites or [c["location"] for c in decision.candidates if c["verdict"] == "chosen"]
        sentences = [f"Chosen by {person}: {', '.join(chosen)}." if chosen else f"Chosen by {person}."]
    elif decision.rule_id or not decision.rule_name.startswith("Built-in"):
        sentences = [f"Rule “{decision.rule_name}” matched this order."]
    else:
        sentences = ["No rule matched, so the built-in default ranked every active location that ships there, nearest first."]
    outcome = {
        RoutingDecision.Outcome.SINGLE: f"{sites[0]} fills the whole order." if sites else "",
        RoutingDecision.Outcome.SPLIT: (
            f"No single location has everything, so it ships in {len(sites)} parts: {', '.join(sites)}."
        ),
        RoutingDecision.Outcome.SPLIT_PENDING: (
            f"No single location has everything; a split over {', '.join(sites)} waits for customer service to approve it."
        ),
        RoutingDecision.Outcome.PARTIAL: f"The short quantity of a pick ships from {', '.join(sites)} instead.",
        RoutingDecision.Outcome.BACKORDER: (
            "Backordered: " + ", ".join(f"line {line} is short {units}" for line, units in decision.short.items()) + "."
            if decision.short
            else "Backordered: the stock exists, but only in more shipments than the rule allows."
        ),
    }[decision.outcome]
    sentences.append(outcome)
    for candidate in decision.candidates:
        if person and candidate["reason"] == NOT_CHOSEN:
            sentences.append(f"{candidate['location']}: {NOT_CHOSEN}.")
            continue
        verdict = {"chosen": "chosen", "not_used": "not used", "rejected": "ruled out"}[candidate["verdict"]]
        sentences.append(f"{candidate['location']}: {verdict} — {candidate['reason']}.")
    return sentences


# --- dry run ------------------------------------------------------------------------------

DRY_RUN_ALLOCATED = 50


# Where an order's units go, per site: {(location_id, frozenset({(line_id, units)}))}; the order of the sites is not part of it.
Footprint = frozenset[tuple[int, frozenset[tuple[int, int]]]]


@dataclass(frozen=True)
class DryRunRow:
    order: Order
    now: str
    proposed: str
    rule: str
    changed: bool


def _footprint(shipments: Iterable[tuple[int, Iterable[tuple[int, int]]]]) -> Footprint:
    units: dict[int, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for location_id, lines in shipments:
        for line_id, quantity in lines:
            units[location_id][line_id] += quantity
    return frozenset((loc, frozenset(lines.items())) for loc, lines in units.items())


def _held(order: Order) -> list:
    return [s for s in order.shipments.all() if s.status in (ShipmentStatus.PLANNED, ShipmentStatus.RELEASED)]


def current_outcome(order: Order) -> tuple[str, Footprint]:
    """What the order has now, in the terms of a routing decision: its outcome and where its units are held."""
    held = _held(order)
    footprint = _footprint((s.location_id, ((line.order_line_id, line.quantity) for line in s.lines.all())) for s in held)
    if order.status == OrderStatus.BACKORDERED:
        return RoutingDecision.Outcome.BACKORDER, footprint
    if order.status == OrderStatus.AWAITING_APPROVAL:
        return RoutingDecision.Outcome.SPLIT_PENDING, footprint
    return (RoutingDecision.Outcome.SPLIT if len(held) > 1 else RoutingDecision.Outcome.SINGLE), footprint


def would_change(order: Order, evaluation: Evaluation) -> bool:
    """A different outcome, or other sites or quantities; a backorder that stays one has nothing to move."""
    outcome, footprint = current_outcome(order)
    if outcome != evaluation.outcome:
        return True
    return outcome != RoutingDecision.Outcome.BACKORDER and footprint != _footprint(evaluation.plan.shipments)


def current_plan_summary(order: Order) -> str:
    if order.status == OrderStatus.BACKORDERED:
        return "backordered"
    sites = [s.location.code for s in _held(order)]
    if not sites:
        return order.get_status_display().lower()
    return ("split: " if len(sites) > 1 else "") + " + ".join(sites)


def dry_run_orders(*, allocated: int = DRY_RUN_ALLOCATED) -> list[Order]:
    """The orders a routing change would touch first: backordered, awaiting approval, and the last allocated ones."""
    waiting = Order.objects.filter(status__in=[OrderStatus.BACKORDERED, OrderStatus.AWAITING_APPROVAL]).order_by("created_at")
    recent = Order.objects.filter(status=OrderStatus.ALLOCATED).order_by("-updated_at", "-id")[:allocated]
    related, prefetched = ("partner",), ("shipments__location", "shipments__lines")
    return [
        *waiting.select_related(*related).prefetch_related(*prefetched),
        *recent.select_related(*related).prefetch_related(*prefetched),
    ]


def dry_run(rules: Sequence[RuleSpec], orders: Sequence[Order]) -> list[DryRunRow]:
    """What each order would get under `rules`, next to what it has now. Reserves nothing."""
    locations = list(Location.objects.all())
    rows = []
    for order in orders:
        # Allocated and awaiting orders are planned whole, as if what they hold were free again.
        evaluation = evaluate(order, rules=rules, locations=locations, include_allocated=True)
        proposed = evaluation.summary()
        if evaluation.outcome == RoutingDecision.Outcome.SPLIT_PENDING:
            proposed += " (needs approval)"
        rows.append(
            DryRunRow(order, current_plan_summary(order), proposed, evaluation.rule.name, would_change(order, evaluation))
        )
    return rows
