"""Short picks re-allocate by the rules or open an exception; people reallocate and substitute."""

import pytest
from django.urls import reverse

from exceptions.models import FulfillmentException
from inventory.models import StockLevel, StockMovement
from inventory.selectors import stock_ledger_mismatches
from orders.models import Order, OrderEvent, OrderStatus, RoutingDecision, RoutingRule, Shipment
from orders.services.allocation import order_route
from orders.services.lifecycle import order_mark_ready, order_release
from orders.services.shipments import shipment_short_pick
from tests.factories import TEST_ACTOR, LocationFactory, SkuFactory, make_order, raise_on_order, stock

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


def released_order(sites, lines, **rule_fields):
    rule = RoutingRule.objects.create(name="Rule", priority=1, **rule_fields)
    for rank, site in enumerate(sites, start=1):
        rule.ranked_locations.create(location=site, rank=rank)
    order = order_mark_ready(order=make_order(lines=lines), actor=TEST_ACTOR)
    order_route(order=order, actor=TEST_ACTOR)
    return order_release(order=order, actor=TEST_ACTOR)


def level(site, sku) -> tuple[int, int, int]:
    lvl = StockLevel.objects.get(location=site, sku=sku)
    return lvl.on_hand, lvl.reserved, lvl.picked


def test_a_short_pick_reallocates_the_missing_units_elsewhere_when_the_rule_allows():
    first, second = LocationFactory(code="FIRST"), LocationFactory(code="SECOND")
    sku = SkuFactory()
    stock(first, sku, 10)
    stock(second, sku, 10)
    order = released_order([first, second], [(sku, 5)], max_shipments=2)
    shipment = order.shipments.get()
    line = order.lines.get()

    outcome = shipment_short_pick(shipment=shipment, picked={line.pk: 3})

    assert isinstance(outcome, RoutingDecision) and outcome.outcome == "partial"
    assert level(first, sku) == (8, 3, 3)  # two units written off, three picked
    assert level(second, sku) == (10, 2, 0)  # the two missing ones reserved at the next site
    shipments = list(Shipment.objects.filter(order=order).order_by("pk").values_list("location__code", "status"))
    assert shipments == [("FIRST", "picked"), ("SECOND", "released")]
    assert not FulfillmentException.objects.filter(type__code="short_pick").exists()
    event = OrderEvent.objects.get(order=order, name="short_pick")
    assert (event.actor, event.data["short"]) == ("system", {"1": 2})
    write_off = StockMovement.objects.get(location=first, kind="adjustment", reason="short pick")
    assert (write_off.on_hand_delta, write_off.reserved_delta, write_off.actor) == (-2, -2, "system")
    line.refresh_from_db()
    assert line.quantity_allocated == 5
    assert Order.objects.get(pk=order.pk).status == OrderStatus.RELEASED
    assert stock_ledger_mismatches() == []


def test_a_short_pick_opens_an_exception_when_the_rule_allows_no_other_shipment():
    first, second = LocationFactory(code="FIRST"), LocationFactory(code="SECOND")
    sku = SkuFactory()
    stock(first, sku, 10)
    stock(second, sku, 10)
    order = released_order([first, second], [(sku, 5)], allow_split=False, max_shipments=1)
    shipment = order.shipments.get()

    outcome = shipment_short_pick(shipment=shipment, picked={order.lines.get().pk: 0})

    assert isinstance(outcome, FulfillmentException)
    assert (outcome.type.code, outcome.shipment, outcome.location, outcome.detail) == (
        "short_pick",
        shipment,
        first,
        {"short": {"1": 5}},
    )
    assert Shipment.objects.get(pk=shipment.pk).status == "cancelled"
    assert level(first, sku) == (5, 0, 0) and level(second, sku) == (10, 0, 0)
    assert stock_ledger_mismatches() == []


def test_reallocate_moves_a_backorder_to_the_chosen_site_or_refuses_cleanly(client, coordinator):
    near, far = LocationFactory(code="NEAR"), LocationFactory(code="FAR")
    sku = SkuFactory()
    stock(far, sku, 3)
    rule = RoutingRule.objects.create(name="Near only", priority=1, allow_split=False, max_shipments=1)
    rule.ranked_locations.create(location=near, rank=1)
    rule.excluded_locations.add(far)
    order = order_mark_ready(order=make_order(lines=[(sku, 5)]), actor=TEST_ACTOR)
    order_route(order=order, actor=TEST_ACTOR)
    exception = FulfillmentException.objects.get(order=order, type__code="out_of_stock")
    client.force_login(coordinator)

    refused = client.post(reverse("exception-action", args=[exception.pk, "reallocate"]), {"location": far.pk}, **HTMX)
    assert refused.status_code == 409
    assert "FAR cannot take this order" in refused.content.decode()
    assert Order.objects.get(pk=order.pk).status == OrderStatus.BACKORDERED

    stock(far, sku, 2)
    done = client.post(reverse("exception-action", args=[exception.pk, "reallocate"]), {"location": far.pk}, **HTMX)
    assert done.status_code == 200
    order.refresh_from_db()
    assert order.status == OrderStatus.ALLOCATED
    assert list(order.shipments.values_list("location__code", flat=True)) == ["FAR"]
    assert order.routing_decisions.first().rule_name == "Chosen by user:coord"
    assert FulfillmentException.objects.get(pk=exception.pk).resolution_action == "reallocate"


def test_substitute_sku_takes_only_a_configured_substitute_and_converts_the_unit(client, coordinator):
    site = LocationFactory()
    original, substitute, stranger = SkuFactory(code="ORIG"), SkuFactory(code="SUB", case_pack=6), SkuFactory(code="OTHER")
    original.substitutes.add(substitute)
    stock(site, substitute, 30)
    order = order_mark_ready(order=make_order(lines=[(original, 2)]), actor=TEST_ACTOR)
    order_route(order=order, actor=TEST_ACTOR)
    exception = FulfillmentException.objects.get(order=order, type__code="out_of_stock")
    line = order.lines.get()
    client.force_login(coordinator)

    refused = client.post(
        reverse("exception-action", args=[exception.pk, "substitute_sku"]), {"substitution": f"{line.pk}:{stranger.pk}"}, **HTMX
    )
    assert refused.status_code == 400
    line.refresh_from_db()
    assert line.sku == original

    done = client.post(
        reverse("exception-action", args=[exception.pk, "substitute_sku"]), {"substitution": f"{line.pk}:{substitute.pk}"}, **HTMX
    )
    assert done.status_code == 200, done.content.decode()
    line.refresh_from_db()
    assert (line.sku, line.sku_code, line.base_quantity) == (substitute, "SUB", 2)
    order.refresh_from_db()
    assert order.status == OrderStatus.ALLOCATED
    assert OrderEvent.objects.get(order=order, name="substitute_sku").data["before"] == {"sku": "ORIG", "base_quantity": 2}


def test_substitute_sku_is_offered_only_when_a_line_s_sku_has_a_substitute(client, coordinator):
    from exceptions.actions import available_actions

    plain, original, substitute = SkuFactory(code="PLAIN"), SkuFactory(code="ORIG"), SkuFactory(code="SUB")
    original.substitutes.add(substitute)
    exceptions = {}
    for name, sku in (("without", plain), ("with", original)):
        order = order_mark_ready(order=make_order(lines=[(sku, 2)]), actor=TEST_ACTOR)
        order_route(order=order, actor=TEST_ACTOR)
        exceptions[name] = FulfillmentException.objects.get(order=order, type__code="out_of_stock")
    client.force_login(coordinator)

    for name, offered in (("without", False), ("with", True)):
        exception = exceptions[name]
        assert ("substitute_sku" in [a.code for a in available_actions(exception, coordinator)]) is offered
        detail = client.get(reverse("exception-detail", args=[exception.pk]))
        assert ("substitute_sku" in [action.code for action, _ in detail.context["action_forms"]]) is offered
    rows = {row["exception"].pk: row["actions"] for row in client.get("/queues/?tab=team").context["rows"]}
    assert "substitute_sku" not in rows[exceptions["without"].pk]
    assert "substitute_sku" in rows[exceptions["with"].pk]

    refused = client.post(
        reverse("exception-action", args=[exceptions["without"].pk, "substitute_sku"]), {"substitution": ""}, **HTMX
    )
    assert refused.status_code == 409


def cases_with_a_substitute(cases: int, case_pack: int, substitute_case_pack: int):
    """An order of `cases` cases of ORIG (case_pack units each), which SUB may replace; gives (order, line, SUB)."""
    original, substitute = SkuFactory(code="ORIG", case_pack=case_pack), SkuFactory(code="SUB", case_pack=substitute_case_pack)
    original.substitutes.add(substitute)
    order = make_order(lines=[(original, cases)])
    line = order.lines.get()
    line.uom, line.base_quantity = "case", cases * case_pack
    line.save()
    return order, line, substitute


def test_a_case_ordered_line_converts_through_the_substitutes_case_pack():
    from orders.services.lifecycle import order_line_substitute

    order, line, substitute = cases_with_a_substitute(1, case_pack=12, substitute_case_pack=6)

    order_line_substitute(order=order, line=line, substitute=substitute, actor=TEST_ACTOR)

    line.refresh_from_db()
    assert line.base_quantity == 6  # one case of the substitute


def test_a_substitute_whose_case_pack_makes_more_base_units_than_a_line_holds_is_refused():
    from core.errors import InvalidInput
    from orders.services.lifecycle import order_line_substitute

    order, line, substitute = cases_with_a_substitute(1_000_000, case_pack=1, substitute_case_pack=5000)

    with pytest.raises(InvalidInput) as refused:
        order_line_substitute(order=order, line=line, substitute=substitute, actor=TEST_ACTOR)

    assert refused.value.fields == {
        "substitute": ["1,000,000 case of SUB is 5,000,000,000 base units; a line holds at most 2,147,483,647."]
    }
    line.refresh_from_db()
    assert (line.sku_code, line.base_quantity) == ("ORIG", 1_000_000)


def test_the_routing_actions_are_offered_on_the_right_types():
    from exceptions.models import ExceptionType

    offered = dict(ExceptionType.objects.values_list("code", "allowed_actions"))
    assert {"reallocate", "substitute_sku"} <= set(offered["out_of_stock"])
    assert {"approve_split", "reject_split", "cancel_line_ship_rest"} <= set(offered["split_approval_required"])
    assert raise_on_order("out_of_stock").type.allowed_actions == offered["out_of_stock"]


def test_a_short_pick_nobody_else_can_fill_is_closed_by_cancelling_the_units_short():
    from core.roles import Role
    from exceptions.actions import action_perform
    from orders.services.allocation import order_allocate
    from orders.services.shipments import shipment_pack, shipment_ship
    from tests.factories import single_site_plan, user_with_role

    site, sku = LocationFactory(), SkuFactory()
    stock(site, sku, 5)  # the only site that keeps it
    order = order_mark_ready(order=make_order(lines=[(sku, 5)]), actor=TEST_ACTOR)
    order = order_release(
        order=order_allocate(order=order, plan=single_site_plan(order, site), actor=TEST_ACTOR), actor=TEST_ACTOR
    )
    shipment, line = Shipment.objects.get(order=order), order.lines.get()
    short = shipment_short_pick(shipment=shipment, picked={line.pk: 3}, actor=TEST_ACTOR)
    assert short.type.code == "short_pick"
    agent = user_with_role("cs-floor", Role.CUSTOMER_SERVICE, "warehouse")

    action_perform(
        code="cancel_line", exception_id=short.pk, user=agent, data={"line": line.pk, "reason": "the customer takes 3"}
    )

    line.refresh_from_db()
    assert FulfillmentException.objects.get(pk=short.pk).status == "resolved"
    assert (line.quantity_allocated, line.quantity_cancelled, line.cancelled) == (3, 2, False)  # the 3 picked still ship
    assert Order.objects.get(pk=order.pk).status == OrderStatus.RELEASED
    shipment_pack(shipment=shipment, actor=TEST_ACTOR)
    shipment_ship(shipment=Shipment.objects.get(pk=shipment.pk), carrier="UPS", tracking_number="1Z9", actor=TEST_ACTOR)
    assert Order.objects.get(pk=order.pk).status == OrderStatus.SHIPPED
    assert stock_ledger_mismatches() == []


def test_a_person_ships_the_units_short_from_a_site_the_rule_did_not_allow():
    from core.roles import Role
    from exceptions.actions import action_perform
    from orders.services.allocation import order_allocate
    from tests.factories import single_site_plan, user_with_role

    east, west, sku = LocationFactory(code="EAST"), LocationFactory(code="WEST"), SkuFactory()
    stock(east, sku, 5)
    stock(west, sku, 5)
    RoutingRule.objects.create(name="One shipment only", priority=1, allow_split=False)  # no room for the playbook
    order = order_mark_ready(order=make_order(lines=[(sku, 5)]), actor=TEST_ACTOR)
    order = order_release(
        order=order_allocate(order=order, plan=single_site_plan(order, east), actor=TEST_ACTOR), actor=TEST_ACTOR
    )
    line = order.lines.get()
    short = shipment_short_pick(shipment=Shipment.objects.get(order=order), picked={line.pk: 3}, actor=TEST_ACTOR)
    assert short.type.code == "short_pick"
    coordinator = user_with_role("coord-floor", Role.OPS_ADMIN)
    refused_elsewhere = LocationFactory(code="NOWHERE")

    with pytest.raises(Exception, match="NOWHERE cannot take the units owed"):
        action_perform(code="reallocate", exception_id=short.pk, user=coordinator, data={"location": refused_elsewhere.pk})
    result = action_perform(code="reallocate", exception_id=short.pk, user=coordinator, data={"location": west.pk})

    assert result.message == "The units short now ship from WEST; they went to the warehouse at once."
    assert FulfillmentException.objects.get(pk=short.pk).status == "resolved"
    from_west = Shipment.objects.get(order=order, location=west)
    assert (from_west.status, list(from_west.lines.values_list("quantity", flat=True))) == ("released", [2])
    assert StockLevel.objects.get(location=west, sku=sku).reserved == 2
    assert Order.objects.get(pk=order.pk).status == OrderStatus.RELEASED
    assert stock_ledger_mismatches() == []
