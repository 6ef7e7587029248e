"""Property-based and example tests for the split planner (`orders.planner.plan_shipments`).

The planner is pure Python, so these tests need no database: they draw small random networks
(1-4 candidate locations in a random rank order, 1-4 order lines over 1-3 SKUs, 0-25 units per
location and SKU) and check the promises the allocation service relies on. The result is compared
with an independent brute force that tries every subset of candidates, smallest first.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations

from hypothesis import given, settings, target
from hypothesis import strategies as st

from orders.planner import Plan, PlanLine, plan_shipments

# Enough random networks to reach the rare cases (two- and three-way splits) while the file runs in seconds.
# No example database: the planner is deterministic and the tests should not write files into the checkout.
PROPERTY_SETTINGS = settings(max_examples=300, deadline=None, database=None)

# A location that holds stock but is never a candidate (e.g. a site the rules exclude): the plan must ignore it.
NON_CANDIDATE_LOCATION = 999


@dataclass(frozen=True)
class Network:
    """One planning problem: what to ship, where it may come from, and the limits."""

    lines: tuple[PlanLine, ...]
    candidates: tuple[int, ...]  # location ids in rank order
    available: dict[tuple[int, int], int]  # (location_id, sku_id) -> units; a missing key means none
    allow_split: bool
    max_shipments: int

    def plan(self, **overrides: int) -> Plan:
        return plan_shipments(
            self.lines,
            self.candidates,
            self.available,
            allow_split=self.allow_split,
            max_shipments=self.max_shipments,
            **overrides,
        )

    @property
    def shipment_limit(self) -> int:
        """How many shipments the plan may use at most: one unless splitting is allowed."""
        return self.max_shipments if self.allow_split else 1


@st.composite
def networks(draw: st.DrawFn, sparse: bool = True) -> Network:
    """A random network: locations in random rank order, lines that may share SKUs, availability per location
    and SKU of 0-25 units (with `sparse`, some keys are left out altogether, which must mean no stock)."""
    candidates = tuple(draw(st.permutations(draw(st.lists(st.integers(1, 50), min_size=1, max_size=4, unique=True)))))
    skus = draw(st.lists(st.integers(1, 9), min_size=1, max_size=3, unique=True))
    line_skus = draw(st.lists(st.sampled_from(skus), min_size=1, max_size=4))
    lines = tuple(
        PlanLine(line_id=100 + index, sku_id=sku, quantity=draw(st.integers(1, 20))) for index, sku in enumerate(line_skus)
    )
    available: dict[tuple[int, int], int] = {}
    for location in candidates:
        for sku in skus:
            units = draw(st.none() | st.integers(0, 25)) if sparse else draw(st.integers(0, 25))
            if units is not None:
                available[(location, sku)] = units
    if draw(st.booleans()):
        for sku in skus:
            available[(NON_CANDIDATE_LOCATION, sku)] = draw(st.integers(0, 25))
    return Network(
        lines=lines,
        candidates=candidates,
        available=available,
        allow_split=draw(st.booleans()),
        max_shipments=draw(st.integers(1, 4)),
    )


# --- independent reference computations ---------------------------------------------------------------------


def demand_by_sku(lines: Iterable[PlanLine]) -> dict[int, int]:
    demand: dict[int, int] = defaultdict(int)
    for line in lines:
        demand[line.sku_id] += line.quantity
    return dict(demand)


def units_at(available: Mapping[tuple[int, int], int], locations: Iterable[int], sku: int) -> int:
    return sum(available.get((location, sku), 0) for location in locations)


def subset_can_fill(network: Network, locations: Sequence[int]) -> bool:
    """True when these locations together hold enough of every SKU (a line may be split between them)."""
    return all(units_at(network.available, locations, sku) >= need for sku, need in demand_by_sku(network.lines).items())


def smallest_feasible_subset_size(network: Network) -> int | None:
    """Brute force: the fewest candidates that together can fill the order, or None if even all of them cannot."""
    for size in range(1, len(network.candidates) + 1):
        if any(subset_can_fill(network, group) for group in combinations(network.candidates, size)):
            return size
    return None


def first_single_location_that_fills(network: Network) -> int | None:
    return next((location for location in network.candidates if subset_can_fill(network, [location])), None)


def can_be_filled_by_all_candidates(network: Network) -> bool:
    return subset_can_fill(network, network.candidates)


# Most random networks are simply short of stock; these ones are not, so splits of two, three and four
# locations (and the shipment limit) get exercised often.
stocked_networks = networks(sparse=False).filter(can_be_filled_by_all_candidates)


def planned_by_location_and_sku(network: Network, plan: Plan) -> dict[tuple[int, int], int]:
    sku_of_line = {line.line_id: line.sku_id for line in network.lines}
    planned: dict[tuple[int, int], int] = defaultdict(int)
    for location, assigned in plan.shipments:
        for line_id, quantity in assigned:
            planned[(location, sku_of_line[line_id])] += quantity
    return dict(planned)


def planned_by_line(plan: Plan) -> dict[int, int]:
    planned: dict[int, int] = defaultdict(int)
    for _location, assigned in plan.shipments:
        for line_id, quantity in assigned:
            planned[line_id] += quantity
    return dict(planned)


# --- the safety promises, shared by the exhaustive and the greedy paths ---------------------------------------


def assert_never_over_reserves(network: Network, plan: Plan) -> None:
    for (location, sku), quantity in planned_by_location_and_sku(network, plan).items():
        assert quantity <= network.available.get((location, sku), 0), (location, sku, quantity, plan)


def assert_shipments_are_well_formed(network: Network, plan: Plan) -> None:
    locations = [location for location, _assigned in plan.shipments]
    known_line_ids = {line.line_id for line in network.lines}
    assert len(plan.shipments) <= network.shipment_limit, plan
    assert len(locations) == len(set(locations)), f"a location ships twice: {plan}"
    assert set(locations) <= set(network.candidates), f"a shipment from a non-candidate: {plan}"
    assert locations == sorted(locations, key=network.candidates.index), f"shipments out of rank order: {plan}"
    for location, assigned in plan.shipments:
        assert any(quantity > 0 for _line_id, quantity in assigned), f"empty shipment from {location}: {plan}"
        assert all(quantity >= 0 and line_id in known_line_ids for line_id, quantity in assigned), plan


def assert_covers_exactly_or_reports_short(network: Network, plan: Plan) -> None:
    if plan.filled:
        assert planned_by_line(plan) == {line.line_id: line.quantity for line in network.lines}, plan
        assert not plan.short and not plan.needs_more_shipments, plan
        return
    assert plan.shipments == (), plan
    short_by_sku: dict[int, int] = defaultdict(int)
    for line in network.lines:
        short_by_sku[line.sku_id] += plan.short.get(line.line_id, 0)
    for sku, need in demand_by_sku(network.lines).items():
        expected_short = max(0, need - units_at(network.available, network.candidates, sku))
        assert short_by_sku[sku] == expected_short, (sku, plan)
    assert set(plan.short) <= {line.line_id for line in network.lines}, plan
    assert plan.needs_more_shipments == (not plan.short), plan


def assert_plan_is_safe(network: Network, plan: Plan) -> None:
    assert_never_over_reserves(network, plan)
    assert_shipments_are_well_formed(network, plan)
    assert_covers_exactly_or_reports_short(network, plan)


# --- properties ---------------------------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(network=networks())
def test_plan_never_reserves_more_than_a_location_holds(network: Network) -> None:
    """Reservations are made from the plan; planning more than the stock would drive stock negative."""
    plan = network.plan()

    assert_never_over_reserves(network, plan)


@PROPERTY_SETTINGS
@given(network=networks())
def test_plan_respects_the_shipment_limits_and_ships_only_from_candidates(network: Network) -> None:
    """Each shipment costs money and must come from an eligible site, once, carrying something; the shipments
    are listed in rank order so the service reserves from the preferred site first."""
    plan = network.plan()

    assert_shipments_are_well_formed(network, plan)


@PROPERTY_SETTINGS
@given(network=networks())
def test_plan_covers_every_line_exactly_or_reports_exactly_what_is_short(network: Network) -> None:
    """A filled plan allocates each line in full; otherwise the backorder must name the truly missing units."""
    plan = network.plan()

    assert_covers_exactly_or_reports_short(network, plan)


def assert_uses_the_fewest_shipments(network: Network, plan: Plan, smallest: int | None) -> None:
    feasible_within_limits = smallest is not None and smallest <= network.shipment_limit
    assert plan.filled == feasible_within_limits, (smallest, plan)
    if feasible_within_limits:
        assert len(plan.shipments) == smallest, (smallest, plan)


@PROPERTY_SETTINGS
@given(network=networks())
def test_plan_uses_the_fewest_shipments_a_brute_force_finds(network: Network) -> None:
    """The planner promises the minimum number of shipments; an exhaustive search over subsets is the referee."""
    smallest = smallest_feasible_subset_size(network)

    plan = network.plan()

    assert_uses_the_fewest_shipments(network, plan, smallest)


@PROPERTY_SETTINGS
@given(network=stocked_networks)
def test_plan_uses_the_fewest_shipments_when_three_or_four_locations_are_needed(network: Network) -> None:
    """Random networks rarely need a three- or four-way split; steering the search towards them checks the
    limit and the larger combinations, where an off-by-one in the search would hide."""
    smallest = smallest_feasible_subset_size(network)
    target(float(smallest or 0), label="locations needed")

    plan = network.plan()

    assert_uses_the_fewest_shipments(network, plan, smallest)
    assert_plan_is_safe(network, plan)


@PROPERTY_SETTINGS
@given(network=networks())
def test_first_ranked_location_that_fills_everything_ships_alone(network: Network) -> None:
    """Rank order encodes preference (distance, cost); among sites that fill it all, the best-ranked wins."""
    first_fill = first_single_location_that_fills(network)

    plan = network.plan()

    if first_fill is None:
        assert not (plan.filled and len(plan.shipments) == 1), f"one shipment although no location fills it: {plan}"
    else:
        assert [location for location, _assigned in plan.shipments] == [first_fill], plan


@PROPERTY_SETTINGS
@given(network=st.one_of(networks(), stocked_networks), combination_limit=st.integers(0, 8))
def test_greedy_fallback_keeps_every_safety_promise(network: Network, combination_limit: int) -> None:
    """With a tiny combination budget the planner covers greedily; it may use more shipments, never break the rules.
    The search is steered towards networks whose stock is spread over more locations than the limit allows,
    where a greedy cover that forgot the limit would plan too many shipments."""
    smallest = smallest_feasible_subset_size(network)
    target(float((smallest or 0) - network.shipment_limit), label="locations needed beyond the limit")

    plan = network.plan(combination_limit=combination_limit)

    assert_plan_is_safe(network, plan)


@PROPERTY_SETTINGS
@given(network=networks())
def test_plan_does_not_depend_on_stock_at_non_candidate_locations(network: Network) -> None:
    """Stock at a site that is not a candidate cannot be shipped, so it must not change the answer."""
    without_outsider = Network(
        lines=network.lines,
        candidates=network.candidates,
        available={key: units for key, units in network.available.items() if key[0] != NON_CANDIDATE_LOCATION},
        allow_split=network.allow_split,
        max_shipments=network.max_shipments,
    )

    assert network.plan() == without_outsider.plan()


# --- examples that read as documentation ----------------------------------------------------------------------

SKU_MUG, SKU_TEE = 1, 2
NEAR, MIDDLE, FAR, SPARE = 10, 20, 30, 40


def test_first_ranked_location_that_fills_all_wins_even_if_a_later_one_has_more() -> None:
    """Rank beats stock depth: the nearer site ships as long as it can fill the whole order."""
    lines = [PlanLine(line_id=1, sku_id=SKU_MUG, quantity=5)]
    available = {(NEAR, SKU_MUG): 5, (FAR, SKU_MUG): 500}

    plan = plan_shipments(lines, [NEAR, FAR], available, allow_split=True, max_shipments=3)

    assert plan == Plan(shipments=((NEAR, ((1, 5),)),))


def test_a_single_location_that_fills_all_beats_a_split_from_better_ranked_sites() -> None:
    """One parcel is preferred to two, even when the single site is ranked last."""
    lines = [PlanLine(line_id=1, sku_id=SKU_MUG, quantity=6)]
    available = {(NEAR, SKU_MUG): 3, (MIDDLE, SKU_MUG): 3, (FAR, SKU_MUG): 6}

    plan = plan_shipments(lines, [NEAR, MIDDLE, FAR], available, allow_split=True, max_shipments=3)

    assert plan == Plan(shipments=((FAR, ((1, 6),)),))


def test_splits_into_two_shipments_when_no_single_location_fills() -> None:
    """Mugs at one site and tees at another: two shipments, each line from where it is stocked."""
    lines = [PlanLine(line_id=1, sku_id=SKU_MUG, quantity=2), PlanLine(line_id=2, sku_id=SKU_TEE, quantity=3)]
    available = {(NEAR, SKU_MUG): 2, (FAR, SKU_TEE): 3, (FAR, SKU_MUG): 1}

    plan = plan_shipments(lines, [NEAR, FAR], available, allow_split=True, max_shipments=2)

    assert plan == Plan(shipments=((NEAR, ((1, 2),)), (FAR, ((2, 3),))))


def test_one_line_may_be_split_between_locations_in_rank_order() -> None:
    """A line larger than any one site's stock is taken from the better-ranked site first."""
    lines = [PlanLine(line_id=1, sku_id=SKU_MUG, quantity=10)]
    available = {(NEAR, SKU_MUG): 4, (FAR, SKU_MUG): 7}

    plan = plan_shipments(lines, [NEAR, FAR], available, allow_split=True, max_shipments=2)

    assert plan == Plan(shipments=((NEAR, ((1, 4),)), (FAR, ((1, 6),))))


def test_backorder_reports_the_units_no_candidate_has() -> None:
    """When all candidates together lack stock, nothing is planned and the missing units are reported per line."""
    lines = [PlanLine(line_id=1, sku_id=SKU_MUG, quantity=4), PlanLine(line_id=2, sku_id=SKU_MUG, quantity=5)]
    available = {(NEAR, SKU_MUG): 3, (FAR, SKU_MUG): 3}

    plan = plan_shipments(lines, [NEAR, FAR], available, allow_split=True, max_shipments=2)

    assert not plan.filled
    assert plan.shipments == ()
    assert plan.short == {2: 3}  # 9 wanted, 6 held in all; the earlier line is counted as served first
    assert plan.needs_more_shipments is False


def test_max_shipments_one_with_split_allowed_behaves_as_no_split() -> None:
    """A limit of one shipment forbids a split whatever the flag says; the order needs more shipments, not stock."""
    lines = [PlanLine(line_id=1, sku_id=SKU_MUG, quantity=2), PlanLine(line_id=2, sku_id=SKU_TEE, quantity=3)]
    available = {(NEAR, SKU_MUG): 2, (FAR, SKU_TEE): 3}

    split_allowed = plan_shipments(lines, [NEAR, FAR], available, allow_split=True, max_shipments=1)
    split_forbidden = plan_shipments(lines, [NEAR, FAR], available, allow_split=False, max_shipments=4)

    assert split_allowed == split_forbidden == Plan(needs_more_shipments=True)


def test_needs_more_shipments_when_the_stock_exists_beyond_the_limit() -> None:
    """Three sites are needed but only two shipments are allowed: nothing is short, the limit is the problem."""
    lines = [PlanLine(line_id=1, sku_id=SKU_MUG, quantity=9)]
    available = {(NEAR, SKU_MUG): 3, (MIDDLE, SKU_MUG): 3, (FAR, SKU_MUG): 3}

    plan = plan_shipments(lines, [NEAR, MIDDLE, FAR], available, allow_split=True, max_shipments=2)

    assert plan == Plan(needs_more_shipments=True)


def test_greedy_fallback_never_over_reserves_and_respects_max_shipments() -> None:
    """With a combination budget of one, four candidates force the greedy cover: it may use more shipments
    than the exhaustive search would (three here instead of two), but it still obeys every limit."""
    lines = (PlanLine(line_id=1, sku_id=SKU_MUG, quantity=10), PlanLine(line_id=2, sku_id=SKU_TEE, quantity=10))
    available = {
        (NEAR, SKU_MUG): 10,
        (FAR, SKU_MUG): 9,
        (FAR, SKU_TEE): 9,
        (MIDDLE, SKU_TEE): 10,
        (SPARE, SKU_TEE): 1,
    }
    network = Network(lines=lines, candidates=(NEAR, FAR, MIDDLE, SPARE), available=available, allow_split=True, max_shipments=3)

    exhaustive = network.plan()
    greedy = network.plan(combination_limit=1)

    assert [location for location, _assigned in exhaustive.shipments] == [NEAR, MIDDLE]
    assert greedy.filled
    assert len(greedy.shipments) == 3
    assert_plan_is_safe(network, greedy)


def test_greedy_fallback_reports_needs_more_shipments_rather_than_exceeding_the_limit() -> None:
    """The stock exists only spread over three sites but two shipments are allowed: the greedy cover stops at the
    limit and the plan asks for more shipments instead of planning a third one."""
    lines = (PlanLine(line_id=1, sku_id=SKU_MUG, quantity=14),)
    available = {(NEAR, SKU_MUG): 1, (MIDDLE, SKU_MUG): 1, (FAR, SKU_MUG): 12}

    plan = plan_shipments(lines, [NEAR, MIDDLE, FAR], available, allow_split=True, max_shipments=2, combination_limit=0)

    assert plan == Plan(needs_more_shipments=True)
