"""The allocation engine: rule matching, candidates and reasons, one site, splits, backorders, races."""

import threading
from decimal import Decimal

import pytest
from django.db import connection

from core.fsm import IllegalTransition
from exceptions.models import FulfillmentException
from inventory.models import StockLevel
from inventory.selectors import stock_ledger_mismatches
from inventory.services import stock_reserve
from orders.models import Order, OrderStatus, RoutingDecision, RoutingRule, Shipment
from orders.services import reservations as reservations_services
from orders.services.allocation import order_route
from orders.services.lifecycle import order_mark_ready, release_wave
from tests.factories import TEST_ACTOR, LocationFactory, PartnerFactory, SkuFactory, make_order, stock
from tests.threads import run_together

pytestmark = pytest.mark.django_db


def ready(**kwargs) -> Order:
    return order_mark_ready(order=make_order(**kwargs), actor=TEST_ACTOR)


def rule(name="Rule", priority=10, locations=(), **fields) -> RoutingRule:
    created = RoutingRule.objects.create(name=name, priority=priority, **fields)
    for rank, location in enumerate(locations, start=1):
        created.ranked_locations.create(location=location, rank=rank)
    return created


def reserved(location, sku) -> int:
    return StockLevel.objects.get(location=location, sku=sku).reserved


def verdicts(decision) -> dict[str, tuple[str, str]]:
    return {c["location"]: (c["verdict"], c["reason"]) for c in decision.candidates}


def test_the_first_ranked_location_that_fills_the_order_wins_and_the_decision_says_why():
    near, far, abroad, excluded = (LocationFactory(code=c) for c in ("NEAR", "FAR", "ABROAD", "EXCL"))
    abroad.ships_to = ["DE"]
    abroad.save()
    sku = SkuFactory()
    stock(near, sku, 1)
    stock(far, sku, 10)
    stock(excluded, sku, 10)
    chosen_rule = rule("US orders", locations=[near, far, abroad], destination_countries=["US"])
    chosen_rule.excluded_locations.add(excluded)

    decision = order_route(order=ready(lines=[(sku, 3)]), actor=TEST_ACTOR)

    assert (decision.outcome, decision.rule, decision.rule_name) == ("single", chosen_rule, "US orders")
    assert decision.plan == [
        {
            "location": "FAR",
            "location_id": far.pk,
            "lines": [{"line": 1, "line_id": decision.order.lines.get().pk, "sku": sku.code, "quantity": 3}],
        }
    ]
    v = verdicts(decision)
    assert v["FAR"] == ("chosen", "fills the whole order")
    assert v["NEAR"] == ("not_used", f"not enough stock: {sku.code} needs 3, 1 available")
    assert v["ABROAD"] == ("rejected", "does not ship to US")
    assert v["EXCL"] == ("rejected", "excluded by the rule")
    order = Order.objects.get(pk=decision.order_id)
    assert order.status == OrderStatus.ALLOCATED
    assert (reserved(far, sku), reserved(near, sku)) == (3, 0)


@pytest.mark.parametrize(
    ("conditions", "matches"),
    [
        ({"destination_countries": ["US"]}, True),
        ({"destination_countries": ["DE"]}, False),
        ({"postal_prefixes": ["627"]}, True),
        ({"postal_prefixes": ["10"]}, False),
        ({"service_levels": ["express"]}, True),
        ({"service_levels": ["same_day"]}, False),
        ({"customer_tiers": ["strategic"]}, True),
        ({"customer_tiers": ["priority"]}, False),
        ({"min_order_value": Decimal("20"), "max_order_value": Decimal("30")}, True),
        ({"min_order_value": Decimal("30")}, False),
    ],
)
def test_each_condition_decides_whether_a_rule_matches(conditions, matches):
    special, usual = LocationFactory(code="SPECIAL"), LocationFactory(code="USUAL")
    sku = SkuFactory()
    stock(special, sku, 5)
    stock(usual, sku, 5)
    rule("Fallback", priority=50, locations=[usual])
    rule("Special", priority=10, locations=[special], **conditions)

    # 2 × 12.50 = 25.00, to 62701 US, express, strategic
    decision = order_route(order=ready(lines=[(sku, 2)], service_level="express", customer_tier="strategic"), actor=TEST_ACTOR)

    assert decision.rule_name == ("Special" if matches else "Fallback")


def test_a_rule_for_other_partners_does_not_match_and_without_rules_the_default_ranks_by_nearness():
    mine, theirs = PartnerFactory(), PartnerFactory()
    far, near = LocationFactory(code="A-FAR", country="CA"), LocationFactory(code="Z-NEAR", postal_prefixes=["62"])
    sku = SkuFactory()
    stock(far, sku, 5)
    stock(near, sku, 5)
    rule("Their rule", locations=[far]).partners.add(theirs)

    decision = order_route(order=ready(partner=mine, lines=[(sku, 1)]), actor=TEST_ACTOR)

    assert decision.rule is None and decision.rule_name.startswith("Built-in default")
    assert decision.plan[0]["location"] == "Z-NEAR"  # serves the postal prefix 62..., though A-FAR sorts first


def test_a_split_uses_the_fewest_shipments_and_allocates_when_no_approval_is_needed():
    a, b, c = (LocationFactory(code=code) for code in ("A", "B", "C"))
    x, y = SkuFactory(), SkuFactory()
    stock(a, x, 5)
    stock(b, x, 5)
    stock(c, x, 5)
    stock(c, y, 5)
    rule("Split freely", locations=[a, b, c], max_shipments=2)
    # neither A nor C alone, but {A, C} would do; C alone has both -> single beats split
    decision = order_route(order=ready(lines=[(x, 8), (y, 2)]), actor=TEST_ACTOR)

    assert decision.outcome == "split"
    assert [s["location"] for s in decision.plan] == ["A", "C"]
    order = Order.objects.get(pk=decision.order_id)
    assert order.status == OrderStatus.ALLOCATED
    assert order.shipments.count() == 2
    assert (reserved(a, x), reserved(c, x), reserved(c, y)) == (5, 3, 2)
    assert stock_ledger_mismatches() == []


def test_a_split_that_needs_approval_waits_with_its_stock_reserved_and_asks_customer_service():
    a, b = LocationFactory(code="A"), LocationFactory(code="B")
    x, y = SkuFactory(), SkuFactory()
    stock(a, x, 5)
    stock(b, y, 5)
    rule("Ask first", locations=[a, b], split_requires_approval=True)

    decision = order_route(order=ready(lines=[(x, 2), (y, 3)]), actor=TEST_ACTOR)

    order = Order.objects.get(pk=decision.order_id)
    assert (decision.outcome, order.status) == ("split_pending", OrderStatus.AWAITING_APPROVAL)
    assert (reserved(a, x), reserved(b, y)) == (2, 3)
    exception = FulfillmentException.objects.get(order=order)
    assert (exception.type.code, exception.queue.slug, exception.status) == (
        "split_approval_required",
        "customer-service",
        "open",
    )
    assert exception.detail["plan"] == decision.plan


def test_no_plan_backorders_and_names_the_short_lines():
    a, b = LocationFactory(code="A"), LocationFactory(code="B")
    x, y = SkuFactory(code="SHORT-X"), SkuFactory(code="PLENTY-Y")
    stock(a, x, 1)
    stock(b, x, 1)
    stock(a, y, 10)
    rule("Two at most", locations=[a, b], max_shipments=2)

    decision = order_route(order=ready(lines=[(x, 5), (y, 1)]), actor=TEST_ACTOR)

    order = Order.objects.get(pk=decision.order_id)
    assert (decision.outcome, order.status, decision.short) == ("backorder", OrderStatus.BACKORDERED, {"1": 3})
    exception = FulfillmentException.objects.get(order=order)
    assert exception.type.code == "out_of_stock"
    assert "SHORT-X ×3" in exception.summary
    assert StockLevel.objects.filter(reserved__gt=0).count() == 0


def test_stock_spread_wider_than_max_shipments_is_a_backorder_that_says_so():
    sites = [LocationFactory(code=f"S{n}") for n in range(3)]
    sku = SkuFactory()
    for site in sites:
        stock(site, sku, 2)
    rule("Two at most", locations=sites, max_shipments=2)

    decision = order_route(order=ready(lines=[(sku, 6)]), actor=TEST_ACTOR)

    assert decision.outcome == "backorder" and decision.short == {}
    assert "more than 2 shipment" in FulfillmentException.objects.get(order=decision.order).summary


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_candidate_that_loses_the_race_makes_the_engine_move_on(monkeypatch):
    first, second = LocationFactory(code="FIRST"), LocationFactory(code="SECOND")
    sku = SkuFactory()
    stock(first, sku, 5)
    stock(second, sku, 5)
    rule("First then second", locations=[first, second])
    order = ready(lines=[(sku, 4)])
    real = reservations_services.stock_reserve_many
    calls = []

    def rival():
        try:
            stock_reserve(location_id=first.pk, sku_id=sku.pk, quantity=3, actor=TEST_ACTOR, reference="rival")
        finally:
            connection.close()

    def someone_else_takes_it_first(**kwargs):
        if not calls:  # between the engine's look and its update, another order commits 3 units
            thread = threading.Thread(target=rival)
            thread.start()
            thread.join()
        calls.append(sorted({location_id for location_id, _, _ in kwargs["items"]}))
        return real(**kwargs)

    monkeypatch.setattr(reservations_services, "stock_reserve_many", someone_else_takes_it_first)
    decision = order_route(order=order, actor=TEST_ACTOR)

    assert calls == [[first.pk], [second.pk]]
    assert decision.plan[0]["location"] == "SECOND"
    assert (reserved(first, sku), reserved(second, sku)) == (3, 4)
    assert Shipment.objects.filter(order=order).count() == 1
    assert stock_ledger_mismatches() == []


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_orders_that_each_lose_a_race_and_move_on_in_opposite_directions_do_not_deadlock(monkeypatch):
    """A loses WH-X and moves on to WH-Y while B loses WH-Y and moves on to WH-X: the rows each
    locked to check its lost reservation must be let go before it locks the other site's."""
    x, y = LocationFactory(code="WH-X"), LocationFactory(code="WH-Y")
    bolt, nut = SkuFactory(code="BOLT"), SkuFactory(code="NUT")
    for site in (x, y):
        stock(site, bolt, 10)
        stock(site, nut, 10)
    west, east = PartnerFactory(code="west"), PartnerFactory(code="east")
    rule("West: X first", allow_split=False, locations=[x, y]).partners.add(west)
    rule("East: Y first", allow_split=False, locations=[y, x]).partners.add(east)
    first = ready(partner=west, lines=[(bolt, 3), (nut, 1)])
    second = ready(partner=east, lines=[(nut, 3), (bolt, 1)])
    # Between each order's look and its reservation, a rival takes the units its first site needs.
    rivals = {first.pk: (x, bolt), second.pk: (y, nut)}
    both_lost_once, attempts = threading.Barrier(2), {first.pk: 0, second.pk: 0}
    real = reservations_services.stock_reserve_many

    def rival_takes(site, sku_item):
        try:
            stock_reserve(location_id=site.pk, sku_id=sku_item.pk, quantity=8, actor=TEST_ACTOR, reference="rival")
        finally:
            connection.close()

    def reserve_after_a_rival(**kwargs):
        order_id = int(kwargs["reference"].removeprefix("order:"))
        attempts[order_id] += 1
        if attempts[order_id] > 1:
            return real(**kwargs)
        rival = threading.Thread(target=rival_takes, args=rivals[order_id])
        rival.start()
        rival.join()
        try:
            return real(**kwargs)
        finally:
            both_lost_once.wait(timeout=30)  # each holds what it locked for its lost reservation here

    monkeypatch.setattr(reservations_services, "stock_reserve_many", reserve_after_a_rival)
    decisions = {}

    def route(index: int) -> None:
        order = (first, second)[index]
        decisions[order.pk] = order_route(order=order, actor=TEST_ACTOR)

    assert run_together(2, route) == []
    assert [decisions[first.pk].plan[0]["location"], decisions[second.pk].plan[0]["location"]] == ["WH-Y", "WH-X"]
    assert attempts == {first.pk: 2, second.pk: 2}
    assert stock_ledger_mismatches() == []


def test_same_day_orders_go_to_the_warehouse_at_once_and_the_wave_takes_the_rest():
    site, sku = LocationFactory(), SkuFactory()
    stock(site, sku, 10)
    same_day = order_route(order=ready(lines=[(sku, 1)], service_level="same_day"), actor=TEST_ACTOR).order
    standard = order_route(order=ready(lines=[(sku, 1)]), actor=TEST_ACTOR).order
    assert Order.objects.get(pk=same_day.pk).status == OrderStatus.RELEASED
    assert Order.objects.get(pk=standard.pk).status == OrderStatus.ALLOCATED

    assert release_wave() == 1
    assert release_wave() == 0
    standard.refresh_from_db()
    assert standard.status == OrderStatus.RELEASED
    assert standard.events.filter(kind="outbound", name="release_to_wms").count() == 1


def test_only_ready_orders_are_routed():
    order = make_order()
    with pytest.raises(IllegalTransition):
        order_route(order=order, actor=TEST_ACTOR)
    assert not RoutingDecision.objects.exists()


def count_route_queries(lines: int, locations: int) -> int:
    sites = [LocationFactory() for _ in range(locations)]
    skus = [SkuFactory() for _ in range(lines)]
    for site in sites[:-1]:
        stock(site, skus[0], 1)  # decoys that cannot fill the order
    for sku in skus:
        stock(sites[-1], sku, 10)
    order = ready(lines=[(sku, 2) for sku in skus])
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        decision = order_route(order=order, actor=TEST_ACTOR)
    assert decision.outcome == "single"
    return len(captured)


def test_queries_per_allocation_do_not_grow_with_lines_or_locations():
    small = count_route_queries(lines=1, locations=2)
    many_lines = count_route_queries(lines=20, locations=2)
    many_sites = count_route_queries(lines=1, locations=12)
    assert small == many_lines == many_sites
    assert small <= 25


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_parallel_allocation_of_a_scarce_sku_never_oversells():
    sites = [LocationFactory(code=f"P{n}") for n in range(3)]
    scarce, common = SkuFactory(code="SCARCE"), SkuFactory(code="COMMON")
    for site, units in zip(sites, (7, 5, 3), strict=True):  # 15 scarce units in all
        stock(site, scarce, units)
        stock(site, common, 100)
    rule(
        "Split with approval above 100",
        priority=1,
        locations=sites,
        max_shipments=2,
        split_requires_approval=True,
        min_order_value=Decimal("100"),
    )
    rule("Split freely", priority=2, locations=sites, max_shipments=2)
    orders = [ready(lines=[(scarce, 1 + n % 3), (common, 1)]) for n in range(24)]  # 48 scarce units wanted
    queue = list(orders)
    lock, errors = threading.Lock(), []

    def work():
        try:
            while True:
                with lock:
                    if not queue:
                        return
                    order = queue.pop()
                order_route(order=order, actor=TEST_ACTOR)
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    statuses = set(Order.objects.filter(pk__in=[o.pk for o in orders]).values_list("status", flat=True))
    assert statuses <= {OrderStatus.ALLOCATED, OrderStatus.AWAITING_APPROVAL, OrderStatus.BACKORDERED}
    assert OrderStatus.BACKORDERED in statuses
    for level in StockLevel.objects.filter(sku=scarce):
        planned = sum(
            line.quantity
            for shipment in Shipment.objects.filter(location=level.location, status__in=Shipment.ACTIVE)
            for line in shipment.lines.filter(order_line__sku=scarce)
        )
        assert level.reserved == planned <= level.on_hand
    assert sum(StockLevel.objects.filter(sku=scarce).values_list("reserved", flat=True)) <= 15
    assert stock_ledger_mismatches() == []
