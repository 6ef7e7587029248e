"""Short picks over the API: what the order says while units are owed, and after a stock count."""

import pytest

from exceptions.models import FulfillmentException
from inventory.models import StockLevel
from inventory.selectors import stock_ledger_mismatches
from inventory.services import stock_count_correction
from orders.models import Order, OrderStatus
from orders.services import order_line_cancel, order_release
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
