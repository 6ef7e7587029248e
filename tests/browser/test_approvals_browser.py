from datetime import timedelta

import pytest
from django.utils import timezone

from core.roles import Role
from exceptions.models import FulfillmentException
from exceptions.services import sla_sweep
from orders.models import Order, OrderStatus
from tests.factories import proposed_split, user_with_role

from .conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_customer_service_approves_a_split_without_a_reload_and_the_order_shows_two_shipments(
    live_server, page, screenshot, network
):
    user_with_role("sam", Role.CUSTOMER_SERVICE, "customer-service")
    order, _ = proposed_split(network)
    other, _ = proposed_split(network)
    sign_in(page, live_server, "sam")
    page.goto(f"{live_server.url}/approvals/splits/")
    page.evaluate("window.__sameDocument = true")
    row = page.locator(f"#split-{order.pk}")
    assert "ships by" in row.inner_text()
    screenshot("approvals-before")

    row.get_by_role("button", name="Approve split").click()
    row.wait_for(state="detached")

    assert page.evaluate("window.__sameDocument") is True
    assert page.locator(f"#split-{other.pk}").count() == 1
    screenshot("approvals-after")
    assert Order.objects.get(pk=order.pk).status == OrderStatus.ALLOCATED

    page.goto(f"{live_server.url}/orders/{order.pk}/")
    shipments = page.locator("#shipments .shipment")
    assert shipments.count() == 2
    assert "planned" in shipments.nth(0).inner_text() and "planned" in shipments.nth(1).inner_text()
    assert "Rule “Ask before splitting” matched this order." in page.locator("#routing").inner_text()
    screenshot("order-two-shipments")


def test_the_waiting_count_drops_as_splits_are_decided(live_server, page, screenshot, network):
    user_with_role("sam", Role.CUSTOMER_SERVICE, "customer-service")
    first, _ = proposed_split(network)
    second, _ = proposed_split(network)
    sign_in(page, live_server, "sam")
    page.goto(f"{live_server.url}/approvals/splits/")
    waiting = page.locator(".pager .pager-count")
    assert waiting.inner_text().startswith("2 waiting")

    row = page.locator(f"#split-{first.pk}")
    row.get_by_role("button", name="Approve split").click()
    row.wait_for(state="detached")
    page.locator(".pager .pager-count", has_text="1 waiting").wait_for()

    row = page.locator(f"#split-{second.pk}")
    row.locator("summary", has_text="Reject").click()
    reason = row.get_by_label("Why wait for full stock")
    assert reason.input_value() == ""
    reason.fill("Customer wants one parcel")
    screenshot("approvals_rejecting")
    row.get_by_role("button", name="Reject and wait").click()
    row.wait_for(state="detached")
    page.locator(".pager .pager-count", has_text="0 waiting").wait_for()
    screenshot("approvals_counters")


def test_customer_service_sees_who_decides_an_escalated_split(live_server, page, screenshot, network):
    user_with_role("sam", Role.CUSTOMER_SERVICE, "customer-service")
    order, exception = proposed_split(network)
    FulfillmentException.objects.filter(pk=exception.pk).update(due_at=timezone.now() - timedelta(minutes=1))
    assert sla_sweep()["escalated"] == 1
    sign_in(page, live_server, "sam")
    page.goto(f"{live_server.url}/approvals/splits/")

    row = page.locator(f"#split-{order.pk}")
    assert row.locator(".who-decides").inner_text() == "Escalated to Escalations: an ops admin decides."
    assert row.get_by_role("button", name="Approve split").count() == 0
    screenshot("approvals_escalated")
