"""Every governed action through the page endpoint: who may, what it does, and what bad input gets."""

import pytest
from django.urls import reverse

from core.roles import Role
from exceptions.models import ExceptionEvent, FulfillmentException, Queue
from inventory.models import StockLevel
from orders.models import Order, OrderEvent, OrderStatus
from orders.services.allocation import order_allocate
from orders.services.lifecycle import order_mark_ready
from tests.factories import (
    TEST_ACTOR,
    LocationFactory,
    SkuFactory,
    make_order,
    raise_on_order,
    single_site_plan,
    stock,
    user_with_role,
)

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


def act(client, exception, code, **data):
    return client.post(reverse("exception-action", args=[exception.pk, code]), data, **HTMX)


def state(exception) -> tuple:
    exception = FulfillmentException.objects.get(pk=exception.pk)
    order = Order.objects.get(pk=exception.order_id) if exception.order_id else None
    return (
        exception.status,
        exception.owner_id,
        exception.operator_minutes,
        ExceptionEvent.objects.filter(exception=exception).count(),
        order.status if order else None,
        OrderEvent.objects.filter(order=order).count() if order else 0,
        list(StockLevel.objects.values_list("reserved", flat=True)),
    )


def invalid_address_for_service(assignment=Queue.Assignment.MANUAL):
    """An invalid_address (customer-service queue) on an allocated order, so every action applies."""
    Queue.objects.filter(slug="customer-service").update(assignment=assignment)
    site, sku = LocationFactory(), SkuFactory()
    stock(site, sku, 10)
    order = order_mark_ready(order=make_order(lines=[(sku, 2)]), actor=TEST_ACTOR)
    order = order_allocate(order=order, plan=single_site_plan(order, site), actor=TEST_ACTOR)
    return raise_on_order("invalid_address", order)


GOOD_INPUT = {
    "claim": {},
    "comment": {"note": "called the customer"},
    "wait": {"note": "waiting for the customer's reply"},
    "resolve": {"note": "customer confirmed the address"},
    "dismiss": {"reason": "raised by mistake"},
    "release_hold": {"note": "address is fine, carrier confirmed"},
    "cancel_order": {"reason": "customer asked"},
    "correct_address": {
        "name": "Ada",
        "line1": "1 Main St",
        "city": "Springfield",
        "region": "IL",
        "postal_code": "62701",
        "country": "US",
    },
}

# Administrative steps take no hands-on time: their forms ask for no minutes, and minutes sent anyway count nothing.
NO_MINUTES = {"claim", "assign", "wait", "resume", "reopen"}

# Which role may run which action (DESIGN §6 roles); both work the customer-service queue here.
ALLOWED = {
    Role.COORDINATOR: {"claim", "comment", "wait", "resolve", "dismiss", "release_hold", "correct_address"},
    Role.CUSTOMER_SERVICE: {"claim", "comment", "wait", "resolve", "release_hold", "cancel_order", "correct_address"},
}


@pytest.mark.parametrize("role", ALLOWED)
@pytest.mark.parametrize("code", GOOD_INPUT)
def test_permission_of_every_action(client, role, code):
    exception = invalid_address_for_service()
    user = user_with_role("someone", role, "customer-service")
    client.force_login(user)
    before = state(exception)

    response = act(client, exception, code, operator_minutes=4, **GOOD_INPUT[code])

    if code in ALLOWED[role]:
        assert response.status_code == 200, response.content
        minutes = 0 if code in NO_MINUTES else 4
        after = FulfillmentException.objects.get(pk=exception.pk)
        assert after.operator_minutes == minutes
        assert ExceptionEvent.objects.filter(exception=exception, operator_minutes=minutes, actor="user:someone").exists()
    else:
        assert response.status_code == 403
        assert "Your role may not" in response.content.decode()
        assert state(exception) == before


def test_a_coordinator_may_not_cancel_an_order_customer_service_may(client):
    exception = invalid_address_for_service()
    coordinator = user_with_role("coord2", Role.COORDINATOR, "customer-service")
    client.force_login(coordinator)
    before = state(exception)

    refused = act(client, exception, "cancel_order", reason="customer asked")

    assert refused.status_code == 403
    assert state(exception) == before

    client.force_login(user_with_role("agent2", Role.CUSTOMER_SERVICE, "customer-service"))
    done = act(client, exception, "cancel_order", reason="customer asked")
    assert done.status_code == 200
    order = Order.objects.get(pk=exception.order_id)
    assert order.status == OrderStatus.CANCELLED
    assert list(StockLevel.objects.values_list("reserved", flat=True)) == [0]
    closed = FulfillmentException.objects.get(pk=exception.pk)
    assert (closed.status, closed.resolution_action) == ("resolved", "cancel_order")


def test_acting_on_a_queue_you_do_not_work_is_403_and_changes_nothing(client, coordinator):
    exception = invalid_address_for_service()  # customer-service queue; the coordinator works others
    client.force_login(coordinator)
    before = state(exception)

    response = act(client, exception, "claim")

    assert response.status_code == 403
    assert "You do not work the Customer service queue" in response.content.decode()
    assert state(exception) == before


def test_resolve_without_a_note_is_400_with_the_message_in_the_row(client, service_agent):
    exception = invalid_address_for_service()
    client.force_login(service_agent)
    before = state(exception)

    response = client.post(reverse("exception-action", args=[exception.pk, "resolve"]), {"note": "  ", "tab": "team"}, **HTMX)

    assert response.status_code == 400
    body = response.content.decode()
    assert "A note is required." in body
    assert body.lstrip().startswith("<tr") and "<html" not in body  # only the row came back
    assert state(exception) == before


def test_acting_on_a_resolved_exception_is_409(client, service_agent):
    exception = invalid_address_for_service()
    client.force_login(service_agent)
    assert act(client, exception, "resolve", note="fixed").status_code == 200
    before = state(exception)

    response = act(client, exception, "resolve", note="again")

    assert response.status_code == 409
    assert "already resolved" in response.content.decode()
    assert state(exception) == before


def test_a_plain_post_redirects_and_a_refused_plain_post_shows_the_message_in_the_page(client, service_agent):
    exception = invalid_address_for_service()
    client.force_login(service_agent)

    refused = client.post(reverse("exception-action", args=[exception.pk, "resolve"]), {"note": ""})
    assert refused.status_code == 400
    assert "<html" in refused.content.decode() and "A note is required." in refused.content.decode()

    done = client.post(reverse("exception-action", args=[exception.pk, "resolve"]), {"note": "ok"})
    assert done.status_code == 302 and done.url == reverse("exception-detail", args=[exception.pk])


def test_round_robin_gave_it_to_the_only_member_so_claiming_it_again_is_409(client, service_agent):
    exception = invalid_address_for_service(Queue.Assignment.ROUND_ROBIN)
    assert exception.owner == service_agent
    client.force_login(service_agent)
    assert act(client, exception, "claim").status_code == 409


def test_claim_then_wait_resume_and_resolve_record_everything(client, service_agent):
    exception = invalid_address_for_service()
    client.force_login(service_agent)

    assert act(client, exception, "claim").status_code == 200
    claimed = FulfillmentException.objects.get(pk=exception.pk)
    assert (claimed.owner, claimed.status) == (service_agent, "in_progress")
    assert claimed.first_response_at is not None
    assert act(client, exception, "wait", note="customer to call back").status_code == 200
    assert act(client, exception, "resume").status_code == 200
    assert act(client, exception, "comment", note="called back", operator_minutes=3).status_code == 200
    assert act(client, exception, "resolve", note="confirmed", root_cause="Data", operator_minutes=5).status_code == 200

    done = FulfillmentException.objects.get(pk=exception.pk)
    assert (done.status, done.resolution_note, done.root_cause, done.operator_minutes) == (
        "resolved",
        "confirmed",
        "Data",
        8,
    )
    events = list(ExceptionEvent.objects.filter(exception=exception).values_list("kind", "action", "actor"))
    assert events[-5:] == [
        ("claimed", "claim", "user:agent"),
        ("status_changed", "wait", "user:agent"),
        ("status_changed", "resume", "user:agent"),
        ("commented", "comment", "user:agent"),
        ("status_changed", "resolve", "user:agent"),
    ]
    order = Order.objects.get(pk=exception.order_id)
    assert order.status == OrderStatus.ALLOCATED  # the hold lifted with the last blocking exception, and it was allocated again


def test_assign_only_to_someone_who_works_the_queue(client, service_agent, coordinator):
    exception = invalid_address_for_service()
    client.force_login(service_agent)
    colleague = user_with_role("colleague", Role.CUSTOMER_SERVICE, "customer-service")

    refused = act(client, exception, "assign", owner=coordinator.pk)
    assert refused.status_code == 400
    assert FulfillmentException.objects.get(pk=exception.pk).owner is None

    assert act(client, exception, "assign", owner=colleague.pk).status_code == 200
    assert FulfillmentException.objects.get(pk=exception.pk).owner == colleague


def test_correct_address_revalidates_and_releases_the_hold_when_clean(client, service_agent):
    exception = invalid_address_for_service()
    client.force_login(service_agent)
    before = state(exception)

    bad = act(
        client, exception, "correct_address", line1="1 Main St", city="Springfield", region="IL", postal_code="ABC", country="US"
    )
    assert bad.status_code == 400
    assert "does not look like a postal code" in bad.content.decode()
    assert state(exception) == before

    good = act(
        client,
        exception,
        "correct_address",
        line1="2 Oak Ave",
        city="Springfield",
        region="IL",
        postal_code="62704",
        country="us",
    )
    assert good.status_code == 200
    order = Order.objects.get(pk=exception.order_id)
    assert (order.ship_line1, order.ship_postal_code, order.ship_country, order.status) == (
        "2 Oak Ave",
        "62704",
        "US",
        OrderStatus.ALLOCATED,
    )
    change = OrderEvent.objects.get(order=order, name="correct_address")
    assert change.data["before"]["line1"] == "1 Main St" and change.data["after"]["line1"] == "2 Oak Ave"
    assert FulfillmentException.objects.get(pk=exception.pk).resolution_action == "correct_address"


def test_correcting_the_address_on_one_field_s_exception_closes_the_other_field_s_too(client, service_agent):
    from decimal import Decimal

    from django.utils import timezone

    from orders.addresses import Address
    from orders.services import addresses as addresses_services
    from orders.services import intake as intake_services
    from tests.factories import PartnerFactory

    site, sku = LocationFactory(), SkuFactory()
    stock(site, sku, 10)
    order = intake_services.order_create(
        partner=PartnerFactory(),
        external_id="ADDR-2",
        placed_at=timezone.now(),
        customer_name="Ada",
        actor=TEST_ACTOR,
        address=Address(name="Ada", line1="1 Main St", city="", region="IL", postal_code="ZZZ", country="US"),
        lines=[intake_services.LineInput(sku.code, 2, "each", Decimal("12.50"))],
    )
    assert (
        addresses_services.raise_address_problems_locked(order, actor=TEST_ACTOR, source_system="api") == 2
    )  # the city and the postal code
    city, postal_code = FulfillmentException.objects.filter(order=order, type__code="invalid_address").order_by("pk")
    client.force_login(service_agent)

    response = act(
        client,
        city,
        "correct_address",
        name="Ada",
        line1="1 Main St",
        city="Springfield",
        region="IL",
        postal_code="62701",
        country="US",
    )

    assert response.status_code == 200
    assert [FulfillmentException.objects.get(pk=e.pk).status for e in (city, postal_code)] == ["resolved", "resolved"]
    assert FulfillmentException.objects.get(pk=postal_code.pk).resolution_action == "correct_address"
    assert Order.objects.get(pk=order.pk).status == OrderStatus.ALLOCATED  # off hold and planned, for the corrected address


def test_cancelling_the_short_line_of_a_backordered_order_allocates_the_rest():
    from exceptions.actions import action_perform
    from orders.services.allocation import order_route

    site, in_stock, none_anywhere = LocationFactory(), SkuFactory(), SkuFactory()
    stock(site, in_stock, 10)
    order = order_mark_ready(order=make_order(lines=[(in_stock, 2), (none_anywhere, 3)]), actor=TEST_ACTOR)
    order_route(order=order, actor=TEST_ACTOR)
    assert Order.objects.get(pk=order.pk).status == OrderStatus.BACKORDERED
    out_of_stock = FulfillmentException.objects.get(order=order, type__code="out_of_stock", status="open")
    agent = user_with_role("cs-stock", Role.CUSTOMER_SERVICE, "stock")

    message = action_perform(
        code="cancel_line",
        exception_id=out_of_stock.pk,
        user=agent,
        data={"line": order.lines.get(line_number=2).pk, "reason": "discontinued"},
    )

    assert FulfillmentException.objects.get(pk=out_of_stock.pk).status == "resolved"
    assert Order.objects.get(pk=order.pk).status == OrderStatus.ALLOCATED
    assert StockLevel.objects.get(location=site, sku=in_stock).reserved == 2
    assert message.message == "Line 2 cancelled: discontinued. Allocation: one location fills the order."


def test_cancel_line_releases_its_stock_and_keeps_the_rest(client):
    site, sku1, sku2 = LocationFactory(), SkuFactory(), SkuFactory()
    stock(site, sku1, 10)
    stock(site, sku2, 10)
    order = order_mark_ready(order=make_order(lines=[(sku1, 2), (sku2, 3)]), actor=TEST_ACTOR)
    order = order_allocate(order=order, plan=single_site_plan(order, site), actor=TEST_ACTOR)
    line = order.lines.get(sku=sku2)
    exception = raise_on_order("short_pick", order, line=line)
    client.force_login(user_with_role("agent3", Role.CUSTOMER_SERVICE, "warehouse"))

    response = act(client, exception, "cancel_line", line=line.pk, reason="no longer made")

    assert response.status_code == 200
    line.refresh_from_db()
    assert (line.cancelled, line.quantity_cancelled, line.quantity_allocated) == (True, 3, 0)
    assert StockLevel.objects.get(sku=sku2).reserved == 0
    assert StockLevel.objects.get(sku=sku1).reserved == 2
    assert Order.objects.get(pk=order.pk).status == OrderStatus.ALLOCATED


def test_an_action_not_offered_for_the_type_is_409(client, service_agent):
    exception = raise_on_order("delivery_failed")  # its type offers no order actions
    client.force_login(service_agent)
    response = act(client, exception, "cancel_order", reason="x")
    assert response.status_code == 409
    assert FulfillmentException.objects.get(pk=exception.pk).status == "open"


def test_reopen_is_refused_while_the_same_problem_is_open_again(client, service_agent):
    order = make_order()
    first = raise_on_order("invalid_address", order)
    client.force_login(service_agent)
    assert act(client, first, "resolve", note="fixed").status_code == 200
    raise_on_order("invalid_address", order)

    response = act(client, first, "reopen", note="it was not fixed")

    assert response.status_code == 409
    assert "already open in another exception" in response.content.decode()
    assert FulfillmentException.objects.get(pk=first.pk).status == "resolved"


ALL_INPUT = {
    **GOOD_INPUT,
    "assign": {},  # owner filled in below
    "resume": {},
    "reopen": {"note": "not fixed after all"},
    "cancel_line": {"reason": "discontinued"},
}


@pytest.mark.parametrize("code", sorted(ALL_INPUT))
def test_every_action_checks_its_own_permission(client, code):
    """Take one action's permission away from the role: that action alone becomes 403 and changes nothing."""
    from django.contrib.auth.models import Group, Permission

    from exceptions import actions

    exception = invalid_address_for_service()
    user = user_with_role("someone", Role.CUSTOMER_SERVICE, "customer-service")
    app_label, codename = actions.get(code).permission.split(".")
    Group.objects.get(name=Role.CUSTOMER_SERVICE).permissions.remove(
        Permission.objects.get(content_type__app_label=app_label, codename=codename)
    )
    client.force_login(user)
    data = {**ALL_INPUT[code], "owner": user.pk, "line": exception.order.lines.first().pk}
    before = state(exception)

    response = act(client, exception, code, **data)

    assert response.status_code == 403
    assert "Your role may not" in response.content.decode()
    assert state(exception) == before


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_an_action_postgresql_fails_to_break_a_deadlock_runs_again_once_and_lands_once(client, service_agent, monkeypatch):
    import psycopg
    from django.db import OperationalError

    from exceptions import services

    exception = raise_on_order("invalid_address", make_order())
    comment, attempts = services.exception_comment, []

    def deadlocked_the_first_time(**kwargs):
        attempts.append(1)
        result = comment(**kwargs)  # written, then rolled back with the failed attempt
        if len(attempts) == 1:
            raise OperationalError("deadlock detected") from psycopg.errors.DeadlockDetected()
        return result

    monkeypatch.setattr(services, "exception_comment", deadlocked_the_first_time)
    client.force_login(service_agent)

    response = act(client, exception, "comment", note="called the customer")

    assert response.status_code == 200 and len(attempts) == 2
    assert ExceptionEvent.objects.filter(exception=exception, kind="commented").count() == 1
