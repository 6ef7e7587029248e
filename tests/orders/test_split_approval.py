"""Customer service decides on proposed splits: approve, reject, cancel a line and ship the rest."""

import json
import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from core.actors import Actor
from core.roles import Role
from exceptions.models import FulfillmentException
from exceptions.services import sla_sweep
from inventory.models import StockLevel, StockMovement
from inventory.selectors import stock_ledger_mismatches
from inventory.services import stock_count_correction
from orders.forms import RejectSplitForm
from orders.models import Order, OrderStatus, RoutingDecision, Shipment
from orders.services.addresses import order_change_address
from orders.services.allocation import order_approve_split
from tests.factories import TEST_ACTOR, LocationFactory, proposed_split, stock, user_with_role

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


def post(client, exception, code, **data):
    return client.post(reverse("split-approval-action", args=[exception.pk, code]), data, **HTMX)


def reserved_total() -> int:
    return sum(StockLevel.objects.values_list("reserved", flat=True))


def test_the_page_lists_each_plan_with_lines_sites_and_promised_dates(client, network, service_agent):
    order, _ = proposed_split(network)
    client.force_login(service_agent)

    response = client.get(reverse("split-approvals"))

    body = response.content.decode()
    assert response.status_code == 200
    assert f'id="split-{order.pk}"' in body
    assert "<strong>A</strong> — #1 X × 2" in body and "<strong>B</strong> — #2 Y × 3" in body
    assert body.count("ships by") == 2 and "arrives by" in body
    assert "Approve split" in body


def test_approving_allocates_and_resolves_the_exception_and_the_row_leaves(client, network, service_agent):
    order, exception = proposed_split(network)
    client.force_login(service_agent)

    response = post(client, exception, "approve_split", operator_minutes=2)

    assert response.status_code == 200 and response.content == b""
    assert "splits-changed" in response["HX-Trigger"]
    order.refresh_from_db()
    assert order.status == OrderStatus.ALLOCATED
    assert Shipment.objects.filter(order=order, status="planned").count() == 2
    exception.refresh_from_db()
    assert (exception.status, exception.resolution_action, exception.operator_minutes) == ("resolved", "approve_split", 2)


def test_rejecting_releases_the_stock_backorders_and_opens_out_of_stock(client, network, service_agent):
    order, exception = proposed_split(network)
    client.force_login(service_agent)

    response = post(client, exception, "reject_split", reason="Customer wants one parcel")

    assert response.status_code == 200
    order.refresh_from_db()
    assert order.status == OrderStatus.BACKORDERED
    assert reserved_total() == 0
    assert FulfillmentException.objects.get(order=order, type__code="out_of_stock").status == "open"
    assert FulfillmentException.objects.get(pk=exception.pk).resolution_action == "reject_split"
    assert stock_ledger_mismatches() == []


def test_cancelling_a_line_ships_the_rest(client, network, service_agent):
    order, exception = proposed_split(network)
    client.force_login(service_agent)
    line_y = order.lines.get(sku=network["y"])

    response = post(client, exception, "cancel_line_ship_rest", line=line_y.pk, reason="Out of production")

    assert response.status_code == 200
    order.refresh_from_db()
    assert order.status == OrderStatus.ALLOCATED
    assert list(Shipment.objects.filter(order=order, status="planned").values_list("location__code", flat=True)) == ["A"]
    assert reserved_total() == 2
    line_y.refresh_from_db()
    assert line_y.cancelled


def test_approving_a_plan_whose_stock_has_gone_says_so_and_plans_again(client, network, service_agent):
    order, exception = proposed_split(network)
    # The WMS counts site B empty: the units reserved for this plan were shipped to someone else.
    stock_count_correction(
        location_id=network["b"].pk, sku_id=network["y"].pk, counted=0, actor=Actor.job("wms-sync"), source_system="wms"
    )
    client.force_login(service_agent)

    response = post(client, exception, "approve_split")

    body = response.content.decode()
    assert response.status_code == 200
    assert "Y at B has gone since this plan was made" in body
    order.refresh_from_db()
    # planned again: X from A and Y from C, again a split that waits for approval
    assert order.status == OrderStatus.AWAITING_APPROVAL
    planned = sorted(Shipment.objects.filter(order=order, status="planned").values_list("location__code", flat=True))
    assert planned == ["A", "C"]
    levels = {
        (lvl.location.code, lvl.sku.code): (lvl.on_hand, lvl.reserved)
        for lvl in StockLevel.objects.select_related("location", "sku")
    }
    assert levels == {("A", "X"): (5, 2), ("B", "Y"): (0, 0), ("C", "Y"): (5, 3)}  # nothing half-reserved
    assert stock_ledger_mismatches() == []
    assert FulfillmentException.objects.get(pk=exception.pk).status == "open"  # it carries the new proposal


def test_only_customer_service_and_ops_admin_decide(client, network, coordinator):
    order, exception = proposed_split(network)
    split_coordinator = user_with_role("floor", Role.COORDINATOR, "customer-service")
    client.force_login(split_coordinator)
    before = (reserved_total(), StockMovement.objects.count())

    assert "Customer service decides" in client.get(reverse("split-approvals")).content.decode()
    response = post(client, exception, "approve_split")

    assert response.status_code == 403
    order.refresh_from_db()
    assert order.status == OrderStatus.AWAITING_APPROVAL
    assert (reserved_total(), StockMovement.objects.count()) == before

    client.force_login(user_with_role("boss", Role.OPS_ADMIN))
    assert post(client, exception, "approve_split").status_code == 200


def test_the_order_page_explains_the_routing_in_plain_words(client, network, service_agent):
    order, _ = proposed_split(network)
    client.force_login(service_agent)

    body = client.get(reverse("order-detail", args=[order.pk])).content.decode()

    assert "Rule “Ask before splitting” matched this order." in body
    assert "waits for customer service to approve it" in body
    assert "A: chosen — ships 1 line(s), 2 unit(s)." in body
    assert "C: not used" in body


def test_a_new_address_a_single_site_can_serve_replaces_the_proposal_and_closes_its_exception(network):
    from orders.services.addresses import order_change_address

    toronto = LocationFactory(code="TORONTO", country="CA", ships_to=["CA"])
    stock(toronto, network["x"], 5)
    stock(toronto, network["y"], 5)
    order, exception = proposed_split(network)

    order_change_address(
        order=order,
        changes={"city": "Toronto", "region": "ON", "postal_code": "M5V 3L9", "country": "CA"},
        actor=TEST_ACTOR,
    )

    order.refresh_from_db()
    assert order.status == OrderStatus.ALLOCATED
    assert list(Shipment.objects.filter(order=order, status="planned").values_list("location__code", flat=True)) == ["TORONTO"]
    exception.refresh_from_db()
    assert exception.status == "resolved" and exception.resolution_note == "Planned again: TORONTO."
    assert reserved_total() == 5


def test_approving_a_plan_whose_stock_went_while_one_site_can_now_fill_it_closes_the_proposal(client, network, service_agent):
    order, exception = proposed_split(network)
    stock_count_correction(
        location_id=network["b"].pk, sku_id=network["y"].pk, counted=0, actor=Actor.job("wms-sync"), source_system="wms"
    )
    stock(network["a"], network["y"], 5)  # site A now holds both SKUs
    client.force_login(service_agent)

    response = post(client, exception, "approve_split", operator_minutes=3)

    assert response.status_code == 200
    order.refresh_from_db()
    assert order.status == OrderStatus.ALLOCATED
    assert list(Shipment.objects.filter(order=order, status="planned").values_list("location__code", flat=True)) == ["A"]
    exception.refresh_from_db()
    assert (exception.status, exception.resolution_note, exception.operator_minutes) == ("resolved", "Planned again: A.", 3)


def test_a_proposal_is_closed_when_the_order_is_planned_otherwise_after_a_hold(network):
    from orders.services.addresses import order_change_address

    toronto = LocationFactory(code="TORONTO", country="CA", ships_to=["CA"])
    stock(toronto, network["x"], 5)
    stock(toronto, network["y"], 5)
    order, exception = proposed_split(network)
    canada = {"city": "Toronto", "region": "ON", "country": "CA"}

    order_change_address(
        order=order, changes={**canada, "postal_code": "XXX"}, actor=TEST_ACTOR
    )  # held: not a Canadian postal code
    assert Order.objects.get(pk=order.pk).status == OrderStatus.ON_HOLD
    order_change_address(
        order=order, changes={"postal_code": "M5V 3L9"}, actor=TEST_ACTOR
    )  # the hold lifts, the order is planned

    order.refresh_from_db()
    assert order.status == OrderStatus.ALLOCATED
    assert list(Shipment.objects.filter(order=order, status="planned").values_list("location__code", flat=True)) == ["TORONTO"]
    assert FulfillmentException.objects.get(pk=exception.pk).status == "resolved"


def test_approving_a_split_whose_stock_went_everywhere_backorders_the_order_and_closes_the_proposal(network):
    # Closing the proposal while the order was still ready used to plan it a second time from inside the first
    # (the exceptions hook routes ready orders); the first then found it backordered and the whole approval failed.
    order, exception = proposed_split(network)
    wms = Actor.job("wms-sync")
    for site in ("b", "c"):
        stock_count_correction(location_id=network[site].pk, sku_id=network["y"].pk, counted=0, actor=wms, source_system="wms")

    result = order_approve_split(order=order, actor=TEST_ACTOR)

    order.refresh_from_db()
    assert not result.approved and order.status == OrderStatus.BACKORDERED
    assert FulfillmentException.objects.get(pk=exception.pk).status == "resolved"
    assert FulfillmentException.objects.filter(order=order, type__code="out_of_stock", status="open").count() == 1
    assert RoutingDecision.objects.filter(order=order).count() == 2  # the proposal, then one backorder
    assert reserved_total() == 0
    assert stock_ledger_mismatches() == []


def test_an_address_no_site_serves_backorders_an_order_awaiting_split_approval(network):
    order, exception = proposed_split(network)
    for code in ("a", "b", "c"):
        network[code].ships_to = ["US"]
        network[code].save()

    change = order_change_address(
        order=order,
        changes={"city": "Toronto", "region": "ON", "postal_code": "M5V 3L9", "country": "CA"},
        actor=TEST_ACTOR,
    )

    order.refresh_from_db()
    assert change.applied and order.status == OrderStatus.BACKORDERED
    assert not Shipment.objects.filter(order=order, status="planned").exists()
    assert reserved_total() == 0
    assert FulfillmentException.objects.get(pk=exception.pk).status == "resolved"


def test_a_new_proposal_for_the_same_order_is_what_the_queue_shows(network):
    order, exception = proposed_split(network)
    assert exception.summary == "Proposed split: A + B"
    stock_count_correction(
        location_id=network["b"].pk, sku_id=network["y"].pk, counted=0, actor=Actor.job("wms-sync"), source_system="wms"
    )

    order_approve_split(order=order, actor=TEST_ACTOR)  # planned again: A + C, and the same exception carries it

    exception.refresh_from_db()
    assert [site["location"] for site in exception.detail["plan"]] == ["A", "C"]
    assert exception.summary == "Proposed split: A + C"
    occurred = exception.events.filter(kind="occurred").get()
    assert occurred.data["previous_summary"] == "Proposed split: A + B"


def test_the_page_runs_the_same_queries_for_a_few_splits_or_a_page_full(client, service_agent):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from orders.models import RoutingRule
    from orders.services.allocation import order_route
    from orders.services.lifecycle import order_mark_ready
    from tests.factories import SkuFactory, make_order

    near, far, bolt, nut = LocationFactory(code="NEAR"), LocationFactory(code="FAR"), SkuFactory(), SkuFactory()
    stock(near, bolt, 100)
    stock(far, nut, 100)
    rule = RoutingRule.objects.create(name="Ask first", priority=1, split_requires_approval=True, max_shipments=2)
    rule.ranked_locations.create(location=near, rank=1)
    rule.ranked_locations.create(location=far, rank=2)

    def propose(count: int) -> None:
        for _ in range(count):
            order_route(order=order_mark_ready(order=make_order(lines=[(bolt, 1), (nut, 1)]), actor=TEST_ACTOR), actor=TEST_ACTOR)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(reverse("split-approvals")).status_code == 200
        return len(captured)

    client.force_login(service_agent)
    propose(2)
    few = queries()
    propose(10)
    many = queries()

    assert Order.objects.filter(status=OrderStatus.AWAITING_APPROVAL).count() == 12
    assert many == few


def test_the_reject_form_starts_empty_and_an_empty_reason_is_refused(client, network, service_agent):
    order, exception = proposed_split(network)
    client.force_login(service_agent)

    body = client.get(reverse("split-approvals")).content.decode()
    reject = re.search(rf'<textarea id="reject-{order.pk}" name="reason"([^>]*)>(.*?)</textarea>', body, re.S)
    assert reject and reject.group(2) == ""
    assert "required" in reject.group(1) and "placeholder=" in reject.group(1)
    assert "prefers one parcel" not in body
    assert RejectSplitForm().fields["reason"].initial is None
    before = (reserved_total(), StockMovement.objects.count())

    for reason in ("", "   "):
        response = post(client, exception, "reject_split", reason=reason)

        assert response.status_code == 400
        assert "A reason is required." in response.content.decode()
        assert f'id="split-{order.pk}"' in response.content.decode()  # the row stays, its form open
    order.refresh_from_db()
    assert order.status == OrderStatus.AWAITING_APPROVAL
    assert (reserved_total(), StockMovement.objects.count()) == before
    assert FulfillmentException.objects.get(pk=exception.pk).status == "open"


def test_the_waiting_count_follows_each_decision(client, network, service_agent):
    _, exception = proposed_split(network)
    _, second_exception = proposed_split(network)
    client.force_login(service_agent)
    assert '<span data-counter="waiting">2</span> waiting' in client.get(reverse("split-approvals")).content.decode()

    response = post(client, exception, "approve_split")

    assert json.loads(response["HX-Trigger"])["countsChanged"] == {"counters": {"waiting": 1, "pages": 1}}
    refused = post(client, second_exception, "reject_split", reason="")
    assert json.loads(refused["HX-Trigger"])["countsChanged"] == {"counters": {"waiting": 1, "pages": 1}}


def test_an_escalated_split_says_where_it_went_and_who_decides_now(client, network, service_agent):
    order, exception = proposed_split(network)
    FulfillmentException.objects.filter(pk=exception.pk).update(due_at=timezone.now() - timedelta(minutes=1))
    assert sla_sweep()["escalated"] == 1
    client.force_login(service_agent)

    body = client.get(reverse("split-approvals")).content.decode()

    assert f'id="split-{order.pk}"' in body and "Approve split" not in body
    assert "Escalated to Escalations: an ops admin decides." in body
    assert "Customer service decides" not in body
