import re
from decimal import Decimal

import pytest

from core.roles import Role
from tests.factories import PartnerFactory, user_with_role
from tests.orders.test_order_list import bulk_orders

from .conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def a_busy_shop():
    """About 150 orders from three partners, one customer whose email is unique, and one SKU on three orders."""
    for code, count in (("NW", 60), ("EU", 50), ("MKT", 36)):
        bulk_orders(count, partner=PartnerFactory(code=code), open_exceptions=1 if code == "MKT" else 0)
    (grace,) = bulk_orders(
        1,
        partner=PartnerFactory(code="NW"),
        external_id="NW-11032",
        customer_name="Grace Hopper",
        customer_email="grace.hopper@navy.example",
        total_amount=Decimal("412.80"),
        ship_name="Grace Hopper",
        ship_line1="1 Navy Yard",
        ship_city="Arlington",
        ship_region="VA",
        ship_postal_code="22202",
    )
    lamps = bulk_orders(3, partner=PartnerFactory(code="EU"), sku_code="LAMP-OAK", total_amount=Decimal("89.00"))
    return grace, lamps


def header_search(page, term: str) -> None:
    page.fill("#header-search", term)
    page.press("#header-search", "Enter")


def test_the_header_search_finds_an_order_by_email_and_the_orders_sharing_a_sku(live_server, page, screenshot):
    grace, lamps = a_busy_shop()
    user_with_role("carla", Role.COORDINATOR, "warehouse")
    sign_in(page, live_server, "carla")

    header_search(page, "Grace.Hopper@navy.example")
    page.wait_for_url(f"{live_server.url}/orders/{grace.pk}/")
    assert "NW-11032" in page.locator("main").inner_text()
    shot = screenshot("search-email")
    assert shot.stat().st_size > 10_000

    header_search(page, "lamp-oak")
    page.wait_for_url(re.compile(r"/orders/\?q=lamp-oak$"))
    rows = page.locator("#order-list tbody tr")
    assert rows.count() == 3
    assert page.locator(".search-summary").inner_text() == "3 orders match “lamp-oak”."
    assert {f"EU / {order.external_id}" for order in lamps} == set(rows.locator("td.order-ref").all_inner_texts())
    # Nothing wider than the window: the table and the header fit.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    screenshot("search-sku")


def test_filters_and_sorting_swap_the_results_and_push_a_shareable_url(live_server, page):
    a_busy_shop()
    user_with_role("carla", Role.COORDINATOR, "warehouse")
    sign_in(page, live_server, "carla")
    page.goto(f"{live_server.url}/orders/")
    assert page.locator("#order-list tbody tr").count() == 50
    page.evaluate("window.__sameDocument = true")  # survives only if the page never reloads

    page.select_option("#id_partner", "MKT")
    page.wait_for_url(re.compile(r"partner=MKT"))
    page.locator(".pager .total", has_text="36 orders").wait_for()

    page.get_by_role("link", name="Value").click()
    page.wait_for_url(re.compile(r"partner=MKT.*sort=value|sort=value.*partner=MKT"))
    page.get_by_role("link", name="Value ▼").wait_for()

    page.select_option("#id_open_exceptions", "no")
    page.wait_for_url(re.compile(r"open_exceptions=no"))
    assert "sort=value" in page.url  # the sort a header chose stays with the filters
    page.locator("p.empty", has_text="No order matches these filters.").wait_for()
    assert page.evaluate("window.__sameDocument") is True

    # The pushed URL is the whole view: opened afresh, it shows the same.
    page.goto(page.url)
    assert page.locator("#id_partner").input_value() == "MKT"
    assert page.locator("p.empty").inner_text() == "No order matches these filters."
