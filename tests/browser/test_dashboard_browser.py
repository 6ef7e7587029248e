from datetime import timedelta

import pytest
from django.utils import timezone

from core.roles import Role
from exceptions.models import ExceptionType, FulfillmentException
from exceptions.services import exception_raise
from tests.factories import TEST_ACTOR, make_order, user_with_role

from .conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

# Demo-like volume: a few hundred exceptions of several types over the last 30 days.
ORDERS = 60
CODES = ("out_of_stock", "short_pick", "label_failure", "invalid_address", "damaged_item")


def a_month_of_exceptions() -> None:
    now = timezone.now()
    for number in range(ORDERS):
        order = make_order()
        for offset, code in enumerate(CODES):
            exception = exception_raise(code=code, summary=f"{code} on {order.external_id}", order=order, actor=TEST_ACTOR)
            created = now - timedelta(days=(number * number + offset * 3) % 30, hours=offset)
            changes = {
                "created_at": created,
                "detected_at": created,
                "first_response_at": created + timedelta(minutes=20 * offset),
            }
            if (number + offset) % 3 == 0:
                resolved = created + timedelta(hours=2 + offset)
                changes |= {"status": "resolved", "resolved_at": resolved, "operator_minutes": 3 + offset}
            FulfillmentException.objects.filter(pk=exception.pk).update(**changes)


def test_the_dashboard_draws_its_charts_and_a_figure_opens_the_filtered_queue(live_server, page, screenshot):
    user_with_role("carla", Role.COORDINATOR, "stock", "warehouse", "shipping", "customer-service")
    a_month_of_exceptions()
    sign_in(page, live_server, "carla")
    page.goto(f"{live_server.url}/")

    for chart in ("created", "resolved"):
        line = page.locator(f"#chart-{chart} svg polyline.line")
        assert line.count() == 1
        assert len(line.get_attribute("points").split()) == 30
        assert page.locator(f"#chart-{chart} svg rect.bar").count() == 30
    # Every order had one exception of each type: 5 per order, 500 per 100 orders.
    assert page.locator("#tile-rate .figure").inner_text() == "500.0"
    screenshot("dashboard")

    out_of_stock = ExceptionType.objects.get(code="out_of_stock")
    row = page.locator("#table-by_type tbody tr", has_text="Out of stock")
    assert row.locator("td").nth(1).inner_text() == str(ORDERS)
    row.locator("td").nth(1).get_by_role("link").click()
    page.wait_for_url(f"{live_server.url}/queues/?*type={out_of_stock.pk}")
    assert "state=all" in page.url and "created_from=" in page.url
    assert page.locator("#id_type").input_value() == str(out_of_stock.pk)
    # The queue lists what the figure counted: the period's exceptions of the type, open and closed.
    assert page.locator("#results .pager-count").inner_text().startswith(f"{ORDERS} listed")
