"""Orders after release over the API: short picks, stock counts, and finding the orders that changed."""

import pytest
from django.utils import timezone

from exceptions.models import FulfillmentException
from inventory.models import StockLevel
from inventory.selectors import stock_ledger_mismatches
from inventory.services import stock_count_correction
from orders.models import Order, OrderStatus
from orders.services.lifecycle import order_line_cancel, order_release
from tests.factories import TEST_ACTOR

from .conftest import order_body

pytestmark = pytest.mark.django_db
ORDERS = "/api/v1/orders/"
THREE_OF_SKU_1 = [{"sku": "SKU-1", "quantity": 3, "uom": "each", "unit_price": "12.50"}]


def released(acme, **changes) -> dict:
    order = acme.post(ORDERS, order_body(**changes), format="json").json()
    order_release(order=Order.objects.get(pk=order["id"]), actor=TEST_ACTOR)
    return acme.get(f"{ORDERS}{order['id']}/").json()


def event(acme, order: dict, kind: str, **fields):
    return acme.post(f"/api/v1/shipments/{order['shipments'][0]['id']}/events/", {"type": kind, **fields}, format="json")


def short_picked_and_shipped(acme) -> dict:
    # WH-WEST keeps no SKU-1, so the 2 units short cannot go elsewhere: a short_pick exception asks a person.
    order = released(acme, lines=THREE_OF_SKU_1)
    assert event(acme, order, "short_picked", lines=[{"line": order["lines"][0]["id"], "picked": 1}]).status_code == 200
    assert event(acme, order, "shipped", carrier="UPS", tracking_number="1Z1").status_code == 200
    return order


def test_an_order_that_still_owes_short_picked_units_is_partially_shipped_not_shipped(acme, catalogue):
    order = short_picked_and_shipped(acme)

    body = acme.get(f"{ORDERS}{order['id']}/").json()
    line = body["lines"][0]
    assert (line["quantity"], line["quantity_shipped"], line["quantity_cancelled"]) == (3, 1, 0)
    assert [e["code"] for e in body["open_exceptions"]] == ["short_pick"]
    assert body["status"] == "partially_shipped"
    assert event(acme, order, "delivered").status_code == 200
    assert acme.get(f"{ORDERS}{order['id']}/").json()["status"] == "partially_shipped"  # not delivered while units are owed


def test_cancelling_the_owed_units_of_a_delivered_shipment_makes_the_order_delivered(acme, catalogue):
    order = short_picked_and_shipped(acme)
    event(acme, order, "delivered")
    stored = Order.objects.get(pk=order["id"])

    order_line_cancel(order=stored, line=stored.lines.get(), reason="the customer keeps the one unit", actor=TEST_ACTOR)

    line = stored.lines.get()
    assert (line.quantity_shipped, line.quantity_cancelled, line.cancelled) == (1, 2, True)
    assert Order.objects.get(pk=order["id"]).status == OrderStatus.DELIVERED
    assert list(stored.events.filter(kind="transition").values_list("name", flat=True))[-2:] == ["ship", "deliver"]


def test_cancelling_the_owed_units_while_the_rest_is_on_its_way_makes_the_order_shipped(acme, catalogue):
    order = short_picked_and_shipped(acme)
    stored = Order.objects.get(pk=order["id"])

    order_line_cancel(order=stored, line=stored.lines.get(), reason="the customer keeps the one unit", actor=TEST_ACTOR)

    assert Order.objects.get(pk=order["id"]).status == OrderStatus.SHIPPED
    assert event(acme, order, "delivered").status_code == 200
    assert Order.objects.get(pk=order["id"]).status == OrderStatus.DELIVERED


@pytest.mark.parametrize("counted", [0, 1])
def test_a_short_pick_after_a_stock_count_writes_off_only_what_the_count_left_reserved(acme, catalogue, counted):
    order = released(acme)  # 2 units of SKU-1 reserved at WH-EAST
    # The WMS owns physical counts: it finds `counted` units on the shelf, and the reservation shrinks with it.
    stock_count_correction(
        location_id=catalogue["east"].pk, sku_id=catalogue["SKU-1"].pk, counted=counted, actor=TEST_ACTOR, source_system="wms"
    )

    response = event(acme, order, "short_picked", lines=[{"line": order["lines"][0]["id"], "picked": counted}])

    assert response.status_code == 200, response.json()
    level = StockLevel.objects.get(location=catalogue["east"], sku=catalogue["SKU-1"])
    assert (level.on_hand, level.reserved, level.picked) == (counted, counted, counted)  # nothing written off twice
    assert stock_ledger_mismatches() == []
    assert FulfillmentException.objects.filter(order_id=order["id"], type__code="short_pick").exists()


# Committed, as the portal commits each change: the order's stamp is taken once per transaction.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_updated_after_finds_an_order_whose_shipment_moved_or_exception_opened(acme, catalogue):
    order = released(acme)
    before_pick = timezone.now()
    assert acme.get(ORDERS, {"updated_after": before_pick.isoformat()}).json()["count"] == 0

    assert event(acme, order, "picked").status_code == 200  # changes the shipment, not the order row
    before_change = timezone.now()
    changed = acme.patch(
        f"{ORDERS}{order['id']}/shipping-address/", {"line1": "9 Elm St"}, format="json"
    )  # 202: an exception opens

    assert changed.status_code == 202
    assert [o["id"] for o in acme.get(ORDERS, {"updated_after": before_pick.isoformat()}).json()["results"]] == [order["id"]]
    assert [o["id"] for o in acme.get(ORDERS, {"updated_after": before_change.isoformat()}).json()["results"]] == [order["id"]]
    assert acme.get(ORDERS, {"updated_after": timezone.now().isoformat()}).json()["count"] == 0
