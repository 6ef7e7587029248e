import pytest

from core.roles import Role
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
