"""The 201 answer of an intake is the order exactly as a later GET shows it, whatever the outcome,
and the order's history is written in the order things happened."""

import pytest

from orders.models import Order, OrderEvent, RoutingRule

from .conftest import order_body

ORDERS = "/api/v1/orders/"
pytestmark = pytest.mark.django_db


def submitted_then_read(client, body: dict) -> tuple[dict, dict]:
    created = client.post(ORDERS, body, format="json")
    assert created.status_code == 201, created.json()
    read = client.get(f"{ORDERS}{created.json()['id']}/")
    assert read.status_code == 200
    return created.json(), read.json()


@pytest.mark.parametrize(
    ("changes", "status"),
    [
        ({}, "allocated"),
        (
            {"lines": [{"sku": f"SKU-{1 + n % 3}", "quantity": 1, "uom": "each", "unit_price": "12.50"} for n in range(50)]},
            "allocated",
        ),
        ({"lines": [{"sku": "SKU-3", "quantity": 1000, "uom": "each", "unit_price": "12.50"}]}, "backordered"),
        ({"service_level": "same_day"}, "released"),
        ({"lines": [{"sku": "NOT-IN-CATALOGUE", "quantity": 1, "uom": "each", "unit_price": "12.50"}]}, "on_hold"),
        ({"lines": [{"sku": "SKU-1", "quantity": 1, "uom": "each", "unit_price": "99.00"}]}, "on_hold"),
    ],
    ids=["allocated", "allocated-50-lines", "backordered", "same-day-released", "unknown-sku-held", "price-held"],
)
def test_the_answer_is_the_order_as_stored(acme, catalogue, changes, status):
    created, read = submitted_then_read(acme, order_body(**changes))
    assert created["status"] == status
    assert created == read


@pytest.mark.parametrize("requires_approval", [False, True], ids=["split", "split-awaiting-approval"])
def test_the_answer_of_a_split_is_the_order_as_stored(acme, catalogue, requires_approval):
    RoutingRule.objects.create(
        name="Split freely", priority=1, allow_split=True, max_shipments=2, split_requires_approval=requires_approval
    )
    # 103 of SKU-2: WH-EAST has 100, WH-WEST 5.
    created, read = submitted_then_read(
        acme, order_body(lines=[{"sku": "SKU-2", "quantity": 103, "uom": "each", "unit_price": "12.50"}])
    )
    assert created["status"] == ("awaiting_approval" if requires_approval else "allocated")
    assert sorted(s["location"] for s in created["shipments"]) == ["WH-EAST", "WH-WEST"]
    assert created == read


def test_a_clean_order_history_reads_created_ready_allocated_in_that_order(acme, catalogue):
    created, _ = submitted_then_read(acme, order_body())
    history = list(
        OrderEvent.objects.filter(order_id=created["id"]).order_by("at", "id").values_list("name", "from_status", "to_status")
    )
    assert history == [("created", "", "received"), ("mark_ready", "received", "ready"), ("allocate", "ready", "allocated")]
    by_id = list(OrderEvent.objects.filter(order_id=created["id"]).order_by("id").values_list("name", flat=True))
    assert by_id == [name for name, _, _ in history]
    assert Order.objects.get(pk=created["id"]).status == "allocated"
