"""Counts from the WMS against our ledger: within tolerance the count wins, beyond it a person decides."""

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from exceptions.actions import action_perform
from exceptions.models import ExceptionStatus, FulfillmentException
from integrations.models import InboundStatus, OutboxMessage, ReportedStock
from integrations.services.inbound import inbound_apply
from integrations.services.outbox import MessageType
from integrations.services.systems import system_ensure
from inventory.models import StockLevel, StockMovement
from inventory.selectors import stock_ledger_mismatches
from orders.models import OrderStatus, RoutingRule
from orders.services.allocation import order_route
from orders.services.lifecycle import order_mark_ready
from orders.services.partners import partner_ensure
from tests.factories import TEST_ACTOR, LocationFactory, SkuFactory, make_order, stock
from tests.integrations.conftest import envelope, post_standard

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)


@pytest.fixture
def site(db):
    east = LocationFactory(code="WH-EAST", drift_tolerance_units=2, drift_tolerance_percent=5)
    mug = SkuFactory(code="MUG-1")
    stock(east, mug, 50)
    return {"east": east, "mug": mug}


def counted(client, wms, quantity, *, at=T0, sku="MUG-1", location="WH-EAST"):
    body = envelope("inventory.counted", {"location": location, "counts": [{"sku": sku, "quantity": quantity}]}, occurred_at=at)
    response = post_standard(client, wms, body)
    assert response.status_code == 202, response.content
    event = inbound_apply(response.json()["event"])
    assert event.status == InboundStatus.APPLIED, event.error
    return event


def on_hand(site) -> int:
    return StockLevel.objects.get(location=site["east"], sku=site["mug"]).on_hand


def drifts():
    return FulfillmentException.objects.filter(type__code="inventory_drift")


def act(code, exception, user, **data):
    return action_perform(code=code, exception_id=exception.pk, user=user, data=data)


# --- within and beyond tolerance ------------------------------------------------------------------------


@pytest.mark.parametrize("quantity", [48, 52])  # 2 units off: within the units tolerance
def test_a_count_within_tolerance_is_taken_as_a_sync_correction(client, wms, site, quantity):
    counted(client, wms, quantity)

    assert on_hand(site) == quantity
    correction = StockMovement.objects.get(kind="sync_correction")
    assert (correction.on_hand_delta, correction.source_system, correction.actor) == (quantity - 50, "wms", "system:wms")
    assert not drifts().exists()
    assert stock_ledger_mismatches() == []


def test_a_count_within_the_percent_tolerance_is_taken_too(client, wms, site):
    stock(site["east"], site["mug"], 150)  # 200 on hand: 5 % is 10 units
    counted(client, wms, 191)
    assert on_hand(site) == 191
    assert not drifts().exists()


def test_a_count_beyond_tolerance_opens_a_drift_with_the_three_views_and_changes_nothing(client, wms, site):
    partner_ensure(code="web", name="Web")
    shop = system_ensure(slug="web", kind="storefront", adapter="generic_storefront", partner="web").system
    ReportedStock.objects.create(
        system=shop, item_ref="MUG-1", location_ref="WH-EAST", sku=site["mug"], location=site["east"], quantity=47, reported_at=T0
    )
    event = counted(client, wms, 30)

    drift = drifts().get()
    assert (drift.location, drift.sku, drift.order, drift.status) == (site["east"], site["mug"], None, ExceptionStatus.OPEN)
    assert {key: drift.detail[key] for key in ("ours", "counted", "storefront", "system", "inbound_event")} == {
        "ours": 50,
        "counted": 30,
        "storefront": 47,
        "system": "wms",
        "inbound_event": event.pk,
    }
    assert drift.summary == "wms counted 30 of MUG-1 at WH-EAST; we have 50 (-20, 40%)"
    assert drift.queue.slug == "stock"
    assert on_hand(site) == 50
    assert not StockMovement.objects.filter(kind="sync_correction").exists()


def test_the_same_drift_counted_again_is_one_exception_with_two_occurrences(client, wms, site):
    counted(client, wms, 30)
    counted(client, wms, 31, at=T0 + timedelta(minutes=5))
    drift = drifts().get()
    assert (drift.occurrences, drift.detail["counted"]) == (2, 31)


def test_a_later_count_that_agrees_closes_the_open_drift(client, wms, site):
    counted(client, wms, 30)
    counted(client, wms, 49, at=T0 + timedelta(minutes=5))
    drift = drifts().get()
    assert (drift.status, drift.resolution_action) == (ExceptionStatus.RESOLVED, "count_agrees")
    assert on_hand(site) == 49


# --- the three actions ----------------------------------------------------------------------------------


def test_accepting_the_count_writes_the_ledger_and_resolves(client, wms, site, coordinator):
    counted(client, wms, 30)
    drift = drifts().get()

    result = act("accept_count", drift, coordinator, note="Cycle count confirmed on the floor", operator_minutes=4)

    assert result.message.startswith("Accepted the count of 30.")
    drift.refresh_from_db()
    assert (drift.status, drift.resolution_action, drift.operator_minutes) == (ExceptionStatus.RESOLVED, "accept_count", 4)
    assert on_hand(site) == 30
    correction = StockMovement.objects.get(kind="sync_correction")
    assert (correction.on_hand_delta, correction.reference, correction.actor) == (-20, f"exception:{drift.pk}", "user:coord")
    assert stock_ledger_mismatches() == []


def allocated(sku, quantity, sites, *, priority="P3"):
    order = order_mark_ready(order=make_order(lines=[(sku, quantity)], priority=priority), actor=TEST_ACTOR)
    order_route(order=order, actor=TEST_ACTOR)
    order.refresh_from_db()
    return order


def test_a_count_that_cannot_cover_the_reservations_routes_the_least_urgent_orders_again(client, wms, site, coordinator):
    rule = RoutingRule.objects.create(name="East first", priority=1)
    rule.ranked_locations.create(location=site["east"], rank=1)
    urgent = allocated(site["mug"], 20, [site["east"]], priority="P1")
    older = allocated(site["mug"], 20, [site["east"]])
    younger = allocated(site["mug"], 5, [site["east"]])
    assert {o.status for o in (urgent, older, younger)} == {OrderStatus.ALLOCATED}
    counted(client, wms, 38)  # 45 reserved: the count leaves 7 short

    result = act("accept_count", drifts().get(), coordinator)

    assert f"2 order(s) lost their units and were routed again ({older.display_name}: " in result.message
    for order in (urgent, older, younger):
        order.refresh_from_db()
    # The youngest P3 gives up its 5, then the older P3 its 20 (7 short needs both); the P1 keeps its units.
    assert urgent.status == OrderStatus.ALLOCATED
    assert younger.status == OrderStatus.ALLOCATED  # routed again: 38 - 20 leaves room for its 5
    assert older.status == OrderStatus.BACKORDERED
    out_of_stock = FulfillmentException.objects.get(type__code="out_of_stock")
    assert (out_of_stock.order, out_of_stock.status) == (older, ExceptionStatus.OPEN)
    level = StockLevel.objects.get(location=site["east"], sku=site["mug"])
    assert (level.on_hand, level.reserved) == (38, 25)
    assert stock_ledger_mismatches() == []


def test_a_count_below_the_reservations_moves_the_order_to_another_site_that_has_the_stock(client, wms, site, coordinator):
    west = LocationFactory(code="WH-WEST")
    stock(west, site["mug"], 40)
    rule = RoutingRule.objects.create(name="East, then west", priority=1)
    rule.ranked_locations.create(location=site["east"], rank=1)
    rule.ranked_locations.create(location=west, rank=2)
    order = allocated(site["mug"], 30, [site["east"]])
    counted(client, wms, 10)

    act("accept_count", drifts().get(), coordinator)

    order.refresh_from_db()
    assert order.status == OrderStatus.ALLOCATED
    assert list(order.shipments.exclude(status="cancelled").values_list("location__code", flat=True)) == ["WH-WEST"]
    assert not FulfillmentException.objects.filter(type__code="out_of_stock").exists()
    assert stock_ledger_mismatches() == []


def test_keeping_ours_needs_a_reason_and_changes_no_stock(client, wms, site, coordinator):
    from core.errors import InvalidInput

    counted(client, wms, 30)
    drift = drifts().get()
    with pytest.raises(InvalidInput):
        act("keep_ours", drift, coordinator, reason="")
    drift.refresh_from_db()
    assert drift.status == ExceptionStatus.OPEN

    act("keep_ours", drift, coordinator, reason="The count missed the mezzanine")

    drift.refresh_from_db()
    assert (drift.status, drift.resolution_action) == (ExceptionStatus.RESOLVED, "keep_ours")
    assert drift.resolution_note == "Kept our figure of 50: The count missed the mezzanine"
    assert on_hand(site) == 50
    assert not StockMovement.objects.filter(kind="sync_correction").exists()


def test_asking_for_a_recount_sends_the_wms_a_message_and_waits_for_the_answer(client, site, coordinator):
    wms = system_ensure(slug="wms", kind="wms", adapter="generic_wms", base_url="http://127.0.0.1:9/").system
    counted(client, wms, 30)
    drift = drifts().get()

    act("request_recount", drift, coordinator, note="Bin A-12 looks full")

    message = OutboxMessage.objects.get(type=MessageType.COUNT_REQUESTED)
    assert message.payload == {
        "location": "WH-EAST",
        "sku": "MUG-1",
        "exception_id": drift.pk,
        "our_figure": 50,
        "last_count": 30,
        "note": "Bin A-12 looks full",
    }
    assert [d.system.slug for d in message.deliveries.all()] == ["wms"]
    drift.refresh_from_db()
    assert drift.status == ExceptionStatus.WAITING

    counted(client, wms, 29, at=T0 + timedelta(minutes=10))  # still off: back to a person
    drift.refresh_from_db()
    assert (drift.status, drift.occurrences, drift.detail["counted"]) == (ExceptionStatus.IN_PROGRESS, 2, 29)


def test_a_recount_is_refused_when_no_wms_runs_the_location(client, wms, site, coordinator):
    from core.errors import Conflict

    counted(client, wms, 30)  # this WMS has no address to send to
    with pytest.raises(Conflict, match="No active WMS"):
        act("request_recount", drifts().get(), coordinator)
    assert drifts().get().status == ExceptionStatus.OPEN
    assert not OutboxMessage.objects.filter(type=MessageType.COUNT_REQUESTED).exists()


def test_a_person_without_the_permission_cannot_accept_a_count(client, wms, site, service_agent):
    from core.errors import Forbidden

    counted(client, wms, 30)
    with pytest.raises(Forbidden):
        act("accept_count", drifts().get(), service_agent)
    assert on_hand(site) == 50


def test_the_exception_page_shows_the_three_figures_side_by_side(client, wms, site, coordinator):
    partner_ensure(code="web", name="Web")
    shop = system_ensure(slug="web", kind="storefront", adapter="generic_storefront", partner="web").system
    ReportedStock.objects.create(
        system=shop, item_ref="MUG-1", location_ref="WH-EAST", sku=site["mug"], location=site["east"], quantity=47, reported_at=T0
    )
    counted(client, wms, 30)
    client.force_login(coordinator)

    page = client.get(reverse("exception-detail", args=[drifts().get().pk])).content.decode()

    views = page[page.index('id="stock-views"') :]
    views = views[: views.index("</section>")]
    assert "MUG-1 at WH-EAST" in views
    assert "<strong>50</strong> on hand" in views
    assert "<strong>30</strong> counted" in views and "-20 against ours" in views
    assert "<strong>47</strong> available" in views
    for label in ("Accept the counted quantity", "Keep our figure"):
        assert label in page
