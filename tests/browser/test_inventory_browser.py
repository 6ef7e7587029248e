from datetime import datetime, time, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from core.roles import Role
from inventory.models import ReplenishmentSuggestion, StockLevel, StockMovement, SuggestionStatus
from inventory.services import stock_adjust, stock_receive
from tests.factories import TEST_ACTOR, LocationFactory, SkuFactory, user_with_role

from .conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def on_day(movement: StockMovement, days_ago: int) -> None:
    at = datetime.combine(timezone.localdate() - timedelta(days=days_ago), time(10), tzinfo=timezone.get_current_timezone())
    StockMovement.objects.filter(pk=movement.pk).update(at=at)


def suggestion_for(level: StockLevel, quantity: int) -> ReplenishmentSuggestion:
    return ReplenishmentSuggestion.objects.create(
        location=level.location,
        sku=level.sku,
        quantity=quantity,
        demand_per_day=Decimal("6"),
        demand_sigma=Decimal("1.5"),
        demand_days=28,
        lead_time_days=5,
        review_period_days=7,
        service_level_percent=Decimal("95"),
        safety_stock=level.safety_stock,
        reorder_point=level.reorder_point,
        order_up_to=level.reorder_point + 42,
        position=level.available,
    )


def test_the_level_page_draws_the_on_hand_chart_against_its_reorder_point(live_server, page, screenshot):
    user_with_role("carla", Role.COORDINATOR, "stock")
    site, mug = LocationFactory(code="WH-EAST"), SkuFactory(code="MUG-1", name="Blue mug")
    # A receipt, ten going out every third day, a restock once it fell under the reorder point, a breakage.
    on_day(stock_receive(location_id=site.pk, sku_id=mug.pk, quantity=120, actor=TEST_ACTOR), 58)
    for days_ago in range(57, 0, -3):
        on_day(stock_adjust(location_id=site.pk, sku_id=mug.pk, delta=-10, reason="shipped", actor=TEST_ACTOR), days_ago)
        if days_ago == 33:
            on_day(stock_receive(location_id=site.pk, sku_id=mug.pk, quantity=96, actor=TEST_ACTOR), days_ago)
        if days_ago == 12:
            on_day(stock_adjust(location_id=site.pk, sku_id=mug.pk, delta=-6, reason="broken", actor=TEST_ACTOR), days_ago)
    StockLevel.objects.filter(location=site, sku=mug).update(
        reorder_point=38, safety_stock=8, demand_per_day=Decimal("3.333"), lead_time_days=5
    )
    level = StockLevel.objects.get(location=site, sku=mug)
    suggestion_for(level, 48)
    assert level.on_hand == 120 + 96 - 19 * 10 - 6

    sign_in(page, live_server, "carla")
    page.goto(f"{live_server.url}/inventory/WH-EAST/MUG-1/")

    chart = page.locator("svg#on-hand-chart")
    chart.wait_for(state="visible")
    box = chart.bounding_box()
    assert box["width"] > 600 and box["height"] > 180
    line = chart.locator("polyline.on-hand-line")
    assert len(line.get_attribute("points").split()) == 60
    assert line.bounding_box()["width"] > 500  # drawn across the plot, not collapsed to a point
    reorder, safety = chart.locator("line.reorder-line[data-value]"), chart.locator("line.safety-line[data-value]")
    assert reorder.get_attribute("data-value") == "38" and safety.get_attribute("data-value") == "8"
    assert float(reorder.get_attribute("y1")) < float(safety.get_attribute("y1"))  # higher figure, higher on the chart
    assert reorder.evaluate("el => getComputedStyle(el).strokeDasharray") != "none"
    assert "Reorder point 38" in chart.text_content() and "Safety stock 8" in chart.text_content()
    assert page.locator("#movements tbody tr").count() == 20
    assert "reorder at 38" in page.locator("#suggestions").inner_text()
    path = screenshot("inventory_chart")
    assert path.stat().st_size > 10_000


def test_the_stock_list_pages_two_hundred_levels_and_filters_without_a_reload(live_server, page, screenshot):
    user_with_role("carla", Role.COORDINATOR, "stock")
    sites = [LocationFactory(code=code) for code in ("WH-EAST", "WH-WEST", "STORE-NYC", "3PL-DAL")]
    skus = [SkuFactory(code=f"SKU-{n:04d}", name=f"Product {n}") for n in range(50)]
    levels = StockLevel.objects.bulk_create(
        StockLevel(
            location=site,
            sku=sku,
            on_hand=(n * 37) % 250,
            reserved=(n * 7) % 20 if (n * 37) % 250 >= 20 else 0,
            reorder_point=60,
            safety_stock=15,
            demand_per_day=Decimal((n % 9) + 1),
        )
        for n, (site, sku) in enumerate((site, sku) for site in sites for sku in skus)
    )
    low = [level for level in levels if level.on_hand - level.reserved <= level.reorder_point]
    for level in low[::2]:
        suggestion_for(level, 48)
    assert len(levels) == 200

    sign_in(page, live_server, "carla")
    page.goto(f"{live_server.url}/inventory/")
    page.evaluate("window.__sameDocument = true")
    assert page.locator("#stock-levels tbody tr").count() == 50
    assert "200 stock levels · page 1 of 4" in page.locator(".pager").inner_text()
    screenshot("inventory_list")

    page.get_by_label("At or below reorder point").check()
    page.locator(".pager", has_text=f"{len(low)} stock levels").wait_for()
    assert page.evaluate("window.__sameDocument") is True
    assert "low=on" in page.url
    assert page.locator("#stock-levels tbody tr.below-reorder, #stock-levels tbody tr.below-safety").count() == min(50, len(low))

    page.get_by_label("At or below reorder point").uncheck()
    page.locator("#id_q").fill("sku-0007")
    page.locator(".pager", has_text="4 stock levels").wait_for()
    assert page.locator("#stock-levels tbody tr").count() == 4
    assert page.evaluate("window.__sameDocument") is True


def test_a_buyer_approves_and_orders_in_place(live_server, page, screenshot):
    user_with_role("carla", Role.COORDINATOR, "stock")
    site, mug = LocationFactory(code="WH-EAST"), SkuFactory(code="MUG-1", name="Blue mug")
    stock_receive(location_id=site.pk, sku_id=mug.pk, quantity=20, actor=TEST_ACTOR)
    StockLevel.objects.filter(location=site, sku=mug).update(reorder_point=38, safety_stock=8)
    suggestion = suggestion_for(StockLevel.objects.get(location=site, sku=mug), 48)

    sign_in(page, live_server, "carla")
    page.goto(f"{live_server.url}/inventory/replenishment/")
    page.evaluate("window.__sameDocument = true")
    row = page.locator(f"#suggestion-{suggestion.pk}")
    row.get_by_role("button", name="Approve", exact=True).click()
    row.get_by_text("Approved: 48 × MUG-1 at WH-EAST.").wait_for()

    row.locator("summary", has_text="Mark ordered").click()
    assert row.get_by_label("Units ordered").input_value() == "48"
    row.get_by_label("Units ordered").fill("60")
    row.get_by_label("Purchase order (optional)").fill("PO-4411")
    screenshot("inventory_replenishment")
    row.get_by_role("button", name="Mark ordered", exact=True).click()
    row.get_by_text("On order: 60 × MUG-1 at WH-EAST (PO-4411).").wait_for()
    assert row.get_by_label("Units received").input_value() == "60"

    assert page.evaluate("window.__sameDocument") is True
    suggestion.refresh_from_db()
    assert (suggestion.status, suggestion.quantity_ordered) == (SuggestionStatus.ORDERED, 60)
