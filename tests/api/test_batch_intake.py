"""POST /api/v1/orders/batch/: one outcome per order, a savepoint each, keys per order, throttled per order."""

import json

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from exceptions.models import FulfillmentException
from inventory.models import StockLevel
from orders.models import IdempotencyKey, Order
from tests.factories import SkuFactory

from .conftest import order_body

BATCH = "/api/v1/orders/batch/"
pytestmark = pytest.mark.django_db


def item(external_id: str, key: str | None = None, **changes) -> dict:
    entry = {"order": order_body(external_id=external_id, **changes)}
    if key is not None:
        entry["idempotency_key"] = key
    return entry


def lines_of(quantity: int) -> list[dict]:
    """A line its own quantity makes distinct, so that orders of one customer are not taken for twins."""
    return [{"sku": "SKU-1", "quantity": quantity, "uom": "each", "unit_price": "12.50"}]


def customer(tag: str) -> dict:
    """Another customer, so that orders with the same lines are not taken for twins."""
    return {"name": f"Customer {tag}", "email": f"customer-{tag}@example.com", "tier": "standard"}


def send(client, *items):
    return client.post(BATCH, {"orders": list(items)}, format="json")


def test_each_order_gets_its_own_outcome_at_its_index(acme, catalogue):
    acme.post("/api/v1/orders/", order_body(external_id="SENT-BEFORE"), format="json")
    bad_line = order_body(external_id="BAD")["lines"]
    bad_line[0]["quantity"] = 0

    response = send(acme, item("B-1"), item("SENT-BEFORE"), item("BAD", lines=bad_line), item("B-2"))

    assert response.status_code == 200
    body = response.json()
    assert [(r["index"], r["status"]) for r in body["results"]] == [(0, 201), (1, 409), (2, 400), (3, 201)]
    assert (body["created"], body["failed"]) == (2, 2)
    created = body["results"][0]["order"]
    assert created["external_id"] == "B-1" and created["status"] == Order.objects.get(external_id="B-1").status
    assert body["results"][1]["error"]["code"] == "duplicate_order"
    assert body["results"][1]["error"]["order_id"] == Order.objects.get(external_id="SENT-BEFORE").pk
    assert body["results"][2]["error"]["code"] == "validation_error"
    assert "quantity" in body["results"][2]["error"]["fields"]["lines"]["0"]
    assert set(Order.objects.values_list("external_id", flat=True)) == {"SENT-BEFORE", "B-1", "B-2"}


def test_an_order_the_intake_refuses_rolls_back_alone(acme, catalogue):
    # More base units than the store can hold: the intake refuses it after storing the order, inside its savepoint.
    SkuFactory(code="BULK", case_pack=10_000)
    huge = [{"sku": "BULK", "quantity": 1_000_000, "uom": "case", "unit_price": "1.00"}]
    reserved_before = sum(StockLevel.objects.values_list("reserved", flat=True))

    three = [{"sku": "SKU-1", "quantity": 3, "uom": "each", "unit_price": "12.50"}]  # not a twin of OK-1
    body = send(acme, item("OK-1"), item("HUGE", lines=huge), item("OK-2", lines=three)).json()

    assert [r["status"] for r in body["results"]] == [201, 400, 201]
    assert body["results"][1]["error"]["code"] == "invalid_order"
    assert not Order.objects.filter(external_id="HUGE").exists()
    assert Order.objects.filter(external_id__in=["OK-1", "OK-2"]).count() == 2
    assert sum(StockLevel.objects.values_list("reserved", flat=True)) == reserved_before + 2 + 3


def test_an_order_that_needs_a_person_is_created_on_hold_with_its_exception(acme, catalogue):
    unknown = [{"sku": "NO-SUCH-SKU", "quantity": 1, "uom": "each", "unit_price": "1.00"}]
    body = send(acme, item("HOLD-1", lines=unknown)).json()
    assert body["results"][0]["status"] == 201
    order = Order.objects.get(external_id="HOLD-1")
    assert body["results"][0]["order"]["open_exceptions"]
    assert FulfillmentException.objects.filter(order=order, type__code="unknown_sku").exists()


def test_keys_per_order_replay_and_are_shared_with_the_single_intake(acme, catalogue):
    first = send(acme, item("K-1", key="key-1"), item("K-2", key="key-2")).json()
    again = send(acme, item("K-1", key="key-1"), item("K-2", key="key-2")).json()

    assert [r["status"] for r in again["results"]] == [201, 201]
    assert all(r.get("replayed") for r in again["results"])
    assert [r["order"] for r in again["results"]] == [r["order"] for r in first["results"]]
    assert again["created"] == 0 and Order.objects.count() == 2
    # The single intake answers the same key with the same bytes.
    single = acme.post("/api/v1/orders/", order_body(external_id="K-1"), format="json", HTTP_IDEMPOTENCY_KEY="key-1")
    assert single.status_code == 201 and single["Idempotent-Replayed"] == "true"
    assert json.loads(single.content) == first["results"][0]["order"]
    # Reused with another body: 422 for that order only.
    reused = send(acme, item("K-OTHER", key="key-1"), item("K-3")).json()
    assert [r["status"] for r in reused["results"]] == [422, 201]
    assert reused["results"][0]["error"]["code"] == "idempotency_key_reused"
    assert IdempotencyKey.objects.count() == 2


def test_a_bad_key_fails_its_order_only(acme, catalogue):
    body = send(acme, item("E-1", key="   "), item("E-2", key="x" * 300), item("E-3")).json()
    assert [r["status"] for r in body["results"]] == [400, 400, 201]
    assert "idempotency_key" in body["results"][0]["error"]["fields"]
    assert not Order.objects.filter(external_id__in=["E-1", "E-2"]).exists()


@pytest.mark.parametrize(
    "payload, message",
    [
        ([], "Send an object with one field"),
        ({"orders": []}, "A list of 1 to 100 orders."),
        ({"orders": [{"order": {}}] * 101}, "A list of 1 to 100 orders."),
        ({"orders": [{"external_id": "x"}]}, "Each item is"),
        ({"orders": [{"order": {}, "key": "k"}]}, "Each item is"),
        ({"orders": [item("x")], "extra": 1}, "Send an object with one field"),
    ],
)
def test_a_request_of_the_wrong_shape_is_a_400_that_changes_nothing(acme, catalogue, payload, message):
    response = acme.post(BATCH, payload, format="json")
    assert response.status_code == 400
    assert message in json.dumps(response.json()["error"]["fields"])
    assert Order.objects.count() == 0


def test_staff_may_not_submit(client, ops_admin, catalogue):
    client.force_login(ops_admin)
    response = client.post(BATCH, {"orders": [item("S-1")]}, content_type="application/json")
    assert response.status_code == 403
    assert Order.objects.count() == 0


def test_the_throttle_counts_each_order(acme, catalogue, monkeypatch):
    from core.api import PartnerRateThrottle

    cache.clear()
    monkeypatch.setattr(PartnerRateThrottle, "THROTTLE_RATES", {"partner": "5/min"})
    assert send(acme, *(item(f"T-{n}", lines=lines_of(n + 1)) for n in range(3))).status_code == 200
    # 3 used; 3 more would make 6 of the 5 a minute.
    refused = send(acme, *(item(f"U-{n}", lines=lines_of(n + 1)) for n in range(3)))
    assert refused.status_code == 429
    assert not Order.objects.filter(external_id__startswith="U-").exists()
    cache.clear()


def test_queries_per_order_do_not_repeat_the_batch_reads(acme, catalogue):
    """Authentication, throttle and the stock locks are once per batch: ten more orders cost ten times one
    order's own statements and nothing else."""

    def statements(count: int, prefix: str) -> int:
        with CaptureQueriesContext(connection) as captured:
            response = send(acme, *(item(f"{prefix}-{n}", customer=customer(f"{prefix}-{n}")) for n in range(count)))
        assert response.status_code == 200 and response.json()["created"] == count
        return len(captured)

    statements(1, "WARM")  # the first request of a process reads what it then keeps (content types, settings)
    one, eleven, twenty_one = statements(1, "Q1"), statements(11, "Q11"), statements(21, "Q21")
    per_order = (eleven - one) / 10
    assert per_order == (twenty_one - eleven) / 10
    fixed = one - per_order
    assert fixed >= 3  # the token, the batch's savepoint and its stock locks: once, not per order
    assert eleven == fixed + 11 * per_order


def test_the_schema_documents_the_batch_with_an_example(client):
    schema = client.get("/api/schema/?format=json").json()
    post = schema["paths"]["/api/v1/orders/batch/"]["post"]
    assert "up to 100 orders" in post["description"]
    examples = post["requestBody"]["content"]["application/json"]["examples"]
    assert any("orders" in example["value"] for example in examples.values())
    assert "200" in post["responses"]
