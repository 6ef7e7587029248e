"""The order page acts: hold, release, cancel the order or a line, change the address, comment; each audited,
each refusal shown in the page with the service's reason and nothing changed."""

import html

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from core.roles import Role
from exceptions.models import FulfillmentException
from exceptions.services import exception_assign
from orders.models import Order, OrderEvent, OrderLine, OrderStatus
from tests.factories import (
    TEST_ACTOR,
    SkuFactory,
    make_order,
    order_in_state,
    raise_on_order,
    user_with_role,
)

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}
GOOD_ADDRESS = {
    "name": "Ada Lovelace",
    "line1": "12 Elm St",
    "line2": "",
    "city": "Chicago",
    "region": "IL",
    "postal_code": "60601",
    "country": "US",
}


def act(client, order, code, **data):
    return client.post(reverse("order-action", args=[order.pk, code]), data, **HTMX)


def text(response) -> str:
    return html.unescape(response.content.decode())


def state(order) -> tuple:
    """What a refused action must leave as it was: the order, its lines, its audit trail."""
    fresh = Order.objects.get(pk=order.pk)
    lines = list(OrderLine.objects.filter(order=order).values_list("cancelled", "quantity_cancelled", "quantity_allocated"))
    address = (fresh.ship_line1, fresh.ship_city, fresh.ship_postal_code)
    return fresh.status, fresh.hold_reason, address, lines, OrderEvent.objects.filter(order=order).count()


def last_event(order) -> OrderEvent:
    return OrderEvent.objects.filter(order=order).order_by("-at", "-pk").first()


def three_lines():
    return make_order(lines=[(SkuFactory(), 1), (SkuFactory(), 2), (SkuFactory(), 3)])


# --- the page ----------------------------------------------------------------------------------------


def test_the_lines_show_unit_price_and_line_total(client, coordinator):
    order = three_lines()
    client.force_login(coordinator)

    body = client.get(reverse("order-detail", args=[order.pk])).content.decode()

    line_3 = body[body.index('id="line-3"') :].split("</tr>")[0]
    assert '<td class="num">12.50</td>' in line_3
    assert '<td class="num">37.50 USD</td>' in line_3


def test_the_exceptions_are_linked_with_type_status_and_owner(client, coordinator):
    order = make_order()
    exception = raise_on_order("out_of_stock", order)
    exception_assign(exception=exception, owner=coordinator, actor=TEST_ACTOR)
    client.force_login(coordinator)

    body = client.get(reverse("order-detail", args=[order.pk])).content.decode()

    row = body[body.index(f'id="exception-{exception.pk}"') :].split("</tr>")[0]
    assert f'href="{reverse("exception-detail", args=[exception.pk])}"' in row
    assert "Out of stock" in row and "Open" in row and "coord" in row


def offered(client, order) -> set[str]:
    response = client.get(reverse("order-detail", args=[order.pk]))
    return {action.code for action, _ in response.context["action_forms"]}


def test_only_the_actions_that_apply_now_are_offered(client, service_agent):
    client.force_login(service_agent)

    assert offered(client, order_in_state(OrderStatus.READY)) == {"hold", "change_address", "comment", "cancel_order"}
    assert offered(client, order_in_state(OrderStatus.ON_HOLD)) == {"release_hold", "change_address", "comment", "cancel_order"}
    assert offered(client, order_in_state(OrderStatus.SHIPPED)) == {"comment"}


def test_a_coordinator_is_not_offered_what_their_role_may_not_do(client, coordinator):
    order = order_in_state(OrderStatus.READY)
    client.force_login(coordinator)

    response = client.get(reverse("order-detail", args=[order.pk]))

    assert {a.code for a, _ in response.context["action_forms"]} == {"hold", "change_address", "comment"}
    assert not any(row["cancellable"] for row in response.context["lines"])
    assert "Cancel line" not in text(response)


def test_a_cancelled_line_has_no_cancel_form_and_a_shipped_order_none_at_all(client, service_agent):
    order = three_lines()
    client.force_login(service_agent)
    act(client, order, "cancel_line", line=order.lines.get(line_number=2).pk, reason="customer changed their mind")

    rows = {
        row["line"].line_number: row["cancellable"]
        for row in client.get(reverse("order-detail", args=[order.pk])).context["lines"]
    }
    assert rows == {1: True, 2: False, 3: True}

    shipped = order_in_state(OrderStatus.SHIPPED)
    lines = client.get(reverse("order-detail", args=[shipped.pk])).context["lines"]
    assert not any(row["cancellable"] for row in lines)


# --- each action, done and audited ------------------------------------------------------------------------


def test_a_coordinator_puts_the_order_on_hold_with_a_reason(client, coordinator):
    order = order_in_state(OrderStatus.READY)
    client.force_login(coordinator)

    response = act(client, order, "hold", reason="address check")

    assert response.status_code == 200
    order.refresh_from_db()
    assert (order.status, order.hold_reason) == (OrderStatus.ON_HOLD, "address check")
    event = last_event(order)
    assert (event.kind, event.name, event.actor, event.data["reason"]) == ("transition", "hold", "user:coord", "address check")


def test_releasing_the_hold_records_the_note_and_plans_the_order(client, coordinator):
    order = order_in_state(OrderStatus.ON_HOLD)
    client.force_login(coordinator)

    response = act(client, order, "release_hold", note="customer confirmed the address")

    assert response.status_code == 200
    assert "Hold released. Allocation: one location fills the order." in text(response)
    order.refresh_from_db()
    assert order.status == OrderStatus.ALLOCATED and order.hold_reason == ""
    events = OrderEvent.objects.filter(order=order, actor="user:coord")
    assert events.filter(kind="transition", name="release_hold").exists()
    assert events.get(kind="note").data == {"note": "customer confirmed the address"}
    assert events.filter(kind="transition", name="allocate").exists()


def test_customer_service_cancels_the_order(client, service_agent):
    order = order_in_state(OrderStatus.ALLOCATED)
    client.force_login(service_agent)

    response = act(client, order, "cancel_order", reason="customer called to cancel")

    assert response.status_code == 200
    order.refresh_from_db()
    assert (order.status, order.cancel_reason) == (OrderStatus.CANCELLED, "customer called to cancel")
    event = OrderEvent.objects.get(order=order, kind="transition", name="cancel")
    assert event.actor == "user:agent" and event.data["reason"] == "customer called to cancel"


def test_customer_service_cancels_one_line_and_the_rest_stays(client, service_agent):
    order = three_lines()
    line = order.lines.get(line_number=2)
    client.force_login(service_agent)

    response = act(client, order, "cancel_line", line=line.pk, reason="out of the colour")

    assert response.status_code == 200
    assert "Line 2 cancelled." in text(response)
    assert list(order.lines.order_by("line_number").values_list("cancelled", flat=True)) == [False, True, False]
    event = OrderEvent.objects.get(order=order, kind="action", name="cancel_line")
    assert event.actor == "user:agent" and event.data["line"] == 2 and event.data["reason"] == "out of the colour"
    assert Order.objects.get(pk=order.pk).status == OrderStatus.RECEIVED


def test_a_coordinator_changes_the_address(client, coordinator):
    order = order_in_state(OrderStatus.READY)
    client.force_login(coordinator)

    response = act(client, order, "change_address", **GOOD_ADDRESS)

    assert response.status_code == 200
    order.refresh_from_db()
    assert (order.ship_line1, order.ship_city, order.ship_postal_code) == ("12 Elm St", "Chicago", "60601")
    event = OrderEvent.objects.get(order=order, kind="action", name="correct_address")
    assert event.actor == "user:coord" and event.data["after"]["city"] == "Chicago"


def test_anyone_with_a_role_comments(client, coordinator):
    order = order_in_state(OrderStatus.SHIPPED)
    client.force_login(coordinator)

    response = act(client, order, "comment", note="customer asked for the tracking link")

    assert response.status_code == 200
    event = last_event(order)
    assert (event.kind, event.name, event.actor) == ("note", "comment", "user:coord")
    assert event.data == {"note": "customer asked for the tracking link"}
    assert Order.objects.get(pk=order.pk).status == OrderStatus.SHIPPED


def test_a_plain_post_redirects_to_the_order_with_a_message(client, coordinator):
    order = order_in_state(OrderStatus.READY)
    client.force_login(coordinator)

    response = client.post(reverse("order-action", args=[order.pk, "hold"]), {"reason": "address check"}, follow=True)

    assert response.redirect_chain == [(reverse("order-detail", args=[order.pk]), 302)]
    assert "The order is on hold." in [str(m) for m in response.context["messages"]]


def test_an_htmx_post_gets_the_page_body_back(client, coordinator):
    order = order_in_state(OrderStatus.READY)
    client.force_login(coordinator)

    response = act(client, order, "comment", note="called the customer")

    body = response.content.decode()
    assert body.lstrip().startswith('<div id="order">') and "<html" not in body
    assert "Comment added." in body
    assert "order-changed" in response["HX-Trigger"]


# --- refusals change nothing -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "data", "message"),
    [
        ("cancel_order", {"reason": "customer asked"}, "Your role may not cancel orders."),
        ("cancel_line", {"reason": "customer asked"}, "Your role may not cancel order lines."),
    ],
)
def test_a_role_that_may_not_answers_403_and_changes_nothing(client, coordinator, code, data, message):
    order = three_lines()
    if code == "cancel_line":
        data = {**data, "line": order.lines.get(line_number=2).pk}
    before = state(order)
    client.force_login(coordinator)

    response = act(client, order, code, **data)

    assert response.status_code == 403
    assert message in text(response)
    assert state(order) == before


def test_a_partner_user_without_a_role_gets_no_action(client):
    from tests.factories import UserFactory

    order = order_in_state(OrderStatus.READY)
    client.force_login(UserFactory(username="partner-acme"))
    before = state(order)

    assert act(client, order, "hold", reason="x").status_code == 403
    assert state(order) == before


@pytest.mark.parametrize(
    ("status", "code", "data", "message"),
    [
        (OrderStatus.SHIPPED, "cancel_order", {"reason": "too late"}, "is shipped; 'Cancel order' is not possible"),
        (OrderStatus.RELEASED, "hold", {"reason": "wait"}, "is released; 'Put on hold' is not possible"),
        (OrderStatus.READY, "release_hold", {"note": "go"}, "is ready; 'Release hold' is not possible"),
        (OrderStatus.SHIPPED, "change_address", GOOD_ADDRESS, "the order is with the warehouse already"),
    ],
)
def test_what_the_orders_state_forbids_answers_409_with_the_services_reason(client, ops_admin, status, code, data, message):
    order = order_in_state(status)
    before = state(order)
    client.force_login(ops_admin)

    response = act(client, order, code, **data)

    assert response.status_code == 409
    assert message in text(response)
    assert state(order) == before


def test_a_line_cancelled_already_is_refused_with_409(client, service_agent):
    order = three_lines()
    line = order.lines.get(line_number=2)
    client.force_login(service_agent)
    act(client, order, "cancel_line", line=line.pk, reason="first time")
    before = state(order)

    response = act(client, order, "cancel_line", line=line.pk, reason="again")

    assert response.status_code == 409
    assert "Line 2 is already cancelled." in text(response)
    assert state(order) == before


def test_a_release_a_blocking_exception_still_holds_is_refused(client, coordinator):
    order = order_in_state(OrderStatus.READY)
    raise_on_order("invalid_address", order)
    order.refresh_from_db()
    assert order.status == OrderStatus.ON_HOLD
    before = state(order)
    client.force_login(coordinator)

    response = act(client, order, "release_hold", note="looks fine")

    assert response.status_code == 409
    assert "A blocking exception is open on this order" in text(response)
    assert state(order) == before


@pytest.mark.parametrize(
    ("code", "data", "message"),
    [
        ("hold", {"reason": "  "}, "A reason is required."),
        ("release_hold", {"note": ""}, "A note is required."),
        ("cancel_order", {"reason": ""}, "A reason is required."),
        ("cancel_line", {"reason": ""}, "A reason is required."),
        ("comment", {"note": ""}, "A note is required."),
        ("change_address", {**GOOD_ADDRESS, "postal_code": "ABC"}, "does not look like a postal code of United States"),
    ],
)
def test_missing_or_bad_input_answers_400_with_the_message(client, ops_admin, code, data, message):
    order = order_in_state(OrderStatus.ON_HOLD if code == "release_hold" else OrderStatus.READY)
    if code == "cancel_line":
        data = {**data, "line": order.lines.first().pk}
    before = state(order)
    client.force_login(ops_admin)

    response = act(client, order, code, **data)

    assert response.status_code == 400
    body = response.content.decode()
    assert message in body
    assert f'id="action-{code}" open' in body or code == "cancel_line"
    assert state(order) == before


def test_a_line_of_another_order_is_refused(client, service_agent):
    order, other = three_lines(), three_lines()
    before = state(order), state(other)
    client.force_login(service_agent)

    response = act(client, order, "cancel_line", line=other.lines.first().pk, reason="mixed up")

    assert response.status_code == 400
    assert "Not a line of this order." in text(response)
    assert (state(order), state(other)) == before


def test_an_unknown_action_is_404(client, ops_admin):
    order = make_order()
    client.force_login(ops_admin)

    assert act(client, order, "teleport").status_code == 404


def test_a_failed_line_cancel_reopens_that_rows_form_with_the_reason(client, service_agent):
    order = three_lines()
    line = order.lines.get(line_number=3)
    OrderLine.objects.filter(pk=line.pk).update(cancelled=True)
    client.force_login(service_agent)

    response = act(client, order, "cancel_line", line=line.pk, reason="twice")

    assert response.status_code == 409
    assert "Line 3 is already cancelled." in text(response)


# --- the page's cost -------------------------------------------------------------------------------------


def order_with_history(size: int) -> Order:
    """An order with `size` events of its own and `size` exceptions, each with an owner of its own."""
    order = make_order()
    for number in range(size):
        owner = user_with_role(f"owner{size}-{number}", Role.COORDINATOR, "stock", "intake", "customer-service")
        exception = raise_on_order("out_of_stock", order, dedupe_key=f"order:{order.pk}|n:{number}")
        exception_assign(exception=exception, owner=owner, actor=TEST_ACTOR)
        OrderEvent.objects.create(order=order, kind="note", name="comment", actor=f"user:{owner.username}", data={"note": "n"})
    return order


def page_queries(client, order) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(reverse("order-detail", args=[order.pk]))
    assert response.status_code == 200
    return len(captured)


def test_the_order_page_runs_the_same_queries_for_2_and_20_events_and_exceptions(
    client, coordinator, django_assert_max_num_queries
):
    small, big = order_with_history(2), order_with_history(20)
    assert FulfillmentException.objects.filter(order=big).count() == 20
    client.force_login(coordinator)
    page_queries(client, small)  # the session and permission caches warm up on the first

    small_count = page_queries(client, small)
    with django_assert_max_num_queries(small_count):
        client.get(reverse("order-detail", args=[big.pk]))
    assert len(client.get(reverse("order-detail", args=[big.pk])).context["timeline"]) > 40
