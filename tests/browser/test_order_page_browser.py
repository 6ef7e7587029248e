import pytest

from core.roles import Role
from orders.models import OrderEvent, OrderLine, OrderStatus
from tests.factories import SkuFactory, make_order, user_with_role

from .conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def three_line_order():
    return make_order(
        lines=[(SkuFactory(code="MUG-RED"), 1), (SkuFactory(code="MUG-BLUE"), 2), (SkuFactory(code="MUG-GREEN"), 3)]
    )


def test_customer_service_cancels_line_2_in_place_and_reads_it_in_the_timeline(live_server, page, screenshot):
    user_with_role("sam", Role.CUSTOMER_SERVICE, "customer-service")
    order = three_line_order()
    sign_in(page, live_server, "sam")
    page.goto(f"{live_server.url}/orders/{order.pk}/")
    page.evaluate("window.__sameDocument = true")

    row = page.locator("#line-2")
    assert "37.50 USD" in page.locator("#line-3").inner_text()
    row.locator("summary", has_text="Cancel line").click()
    row.get_by_label("Why cancel line 2").fill("Customer ordered the wrong colour")
    row.get_by_role("button", name="Cancel line 2").click()

    page.locator("#line-2.line-cancelled").wait_for()
    assert page.evaluate("window.__sameDocument") is True
    assert page.locator("p.notice", has_text="Line 2 cancelled.").is_visible()
    assert "cancelled" in page.locator("#line-2 .cancelled-state").inner_text()
    assert page.locator("#line-2 summary", has_text="Cancel line").count() == 0
    assert page.locator("#line-1 summary", has_text="Cancel line").count() == 1
    sentence = "Customer service sam cancelled line 2 (MUG-BLUE): Customer ordered the wrong colour"
    assert sentence in page.locator("#timeline").inner_text()
    path = screenshot("order-cancel-line")
    assert path.stat().st_size > 0

    assert list(OrderLine.objects.filter(order=order).order_by("line_number").values_list("cancelled", flat=True)) == [
        False,
        True,
        False,
    ]
    assert OrderEvent.objects.filter(order=order, name="cancel_line", actor="user:sam").count() == 1


def test_a_coordinator_holds_the_order_and_is_offered_no_line_cancel(live_server, page, screenshot):
    user_with_role("ann", Role.COORDINATOR, "stock")
    order = three_line_order()
    sign_in(page, live_server, "ann")
    page.goto(f"{live_server.url}/orders/{order.pk}/")

    assert page.locator("#lines summary", has_text="Cancel line").count() == 0
    assert page.locator("#actions summary", has_text="Cancel order").count() == 0
    hold = page.locator("#action-hold")
    hold.locator("summary").click()
    hold.get_by_label("Why hold it").fill("address check")
    hold.get_by_role("button", name="Put on hold").click()

    page.locator("p.notice", has_text="The order is on hold.").wait_for()
    assert "Coordinator ann put the order on hold: address check" in page.locator("#timeline").inner_text()
    assert page.locator("#action-release_hold").count() == 1 and page.locator("#action-hold").count() == 0
    screenshot("order-hold")
    order.refresh_from_db()
    assert order.status == OrderStatus.ON_HOLD
