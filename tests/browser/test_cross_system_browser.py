from datetime import timedelta

import pytest
from django.utils import timezone

from core.roles import Role
from integrations.models import DeliveryStatus, InboundStatus
from integrations.services.systems import system_ensure
from orders.models import OrderStatus, Shipment
from orders.services.partners import partner_ensure
from tests.factories import order_in_state, user_with_role
from tests.integrations.test_cross_system import said, told

from .conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_an_order_the_systems_disagree_on_shows_the_disagreements_above_the_columns(live_server, page, screenshot, settings):
    settings.INVOICE_GRACE_HOURS = 24
    user_with_role("carla", Role.COORDINATOR)
    partner_ensure(code="shop", name="Shop")
    shop = system_ensure(slug="shop", kind="storefront", adapter="shopify", partner="shop").system
    wms = system_ensure(slug="wms-east", kind="wms", adapter="generic_wms").system
    erp = system_ensure(slug="erp", kind="erp", adapter="generic_erp").system
    # One shipment left 30 hours ago; the WMS says the second left 2 hours ago, which we could not apply.
    order = order_in_state(OrderStatus.PARTIALLY_SHIPPED)
    first, second = Shipment.objects.filter(order=order).order_by("pk")
    Shipment.objects.filter(pk=first.pk).update(shipped_at=timezone.now() - timedelta(hours=30))
    said(order, shop, "orders/create", {"id": order.external_id, "fulfillment_status": None}, ago=timedelta(hours=40))
    said(
        order,
        wms,
        "shipment.shipped",
        {"shipment_id": second.pk, "tracking_number": "1Z999"},
        ago=timedelta(hours=2),
        subject=f"shipment:{second.pk}",
        status=InboundStatus.FAILED,
        error=f"Shipment {second.pk} is released, not picked.",
    )
    told(order, wms, "pick_ticket.created", DeliveryStatus.DELIVERED, ago=timedelta(hours=39), delivered_at=timezone.now())
    told(order, erp, "item_fulfillment.created", DeliveryStatus.DEAD, ago=timedelta(hours=30), attempts=8)

    sign_in(page, live_server, "carla")
    page.goto(f"{live_server.url}/orders/{order.pk}/")
    warning = page.locator("#cross-system-disagreements")
    warning.wait_for()

    headline = warning.locator("strong").inner_text()
    assert headline.startswith("Storefront says unfulfilled; we shipped it 30 h ago; WMS shipped it 2 h ago")
    assert f"ERP has no invoice for shipment {first.pk}, shipped 30 h ago" in headline
    assert "ERP (erp) never acknowledged item_fulfillment.created (dead after 8 attempts)" in headline
    assert page.locator("#cross-system-storefront .means").inner_text() == "unfulfilled"
    assert page.locator("#cross-system-wms .means").inner_text() == f"shipment {second.pk} shipped"
    assert "Partially shipped" in page.locator("#cross-system-ours").inner_text()
    panel_top = page.locator("#cross-system").bounding_box()["y"]
    assert panel_top < page.locator("#system-messages").bounding_box()["y"]
    page.locator("#cross-system").scroll_into_view_if_needed()
    screenshot("cross-system")
