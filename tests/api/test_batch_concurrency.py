"""Batch intake under real concurrency (PostgreSQL, a real HTTP server): stock never oversold, keys claimed once."""

import json
import urllib.error
import urllib.request

import pytest
from django.db.models import Sum

from inventory.models import StockLevel
from orders.models import IdempotencyKey, Order, OrderStatus, ShipmentLine
from tests.factories import SkuFactory, stock
from tests.threads import run_together

from .conftest import order_body, partner_client

BATCH = "/api/v1/orders/batch/"
CLIENTS = 8
ORDERS_PER_BATCH = 10
SCARCE_UNITS = 25


def post_batch(url: str, token: str, items: list[dict]) -> tuple[int, dict]:
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
    request = urllib.request.Request(url, data=json.dumps({"orders": items}).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as failure:
        return failure.code, json.loads(failure.read() or b"{}")


def distinct_order(client: int, number: int, lines: list[dict]) -> dict:
    """Its own external id and customer, so that no two orders are taken for twins."""
    tag = f"C{client}-{number}"
    customer = {"name": f"Customer {tag}", "email": f"{tag.lower()}@example.com", "tier": "standard"}
    return order_body(external_id=tag, customer=customer, lines=lines)


@pytest.fixture(autouse=True)
def budget_for_every_order(monkeypatch):
    """The throttle counts each order of a batch; these batches together send more than a minute's budget."""
    from django.core.cache import cache

    from core.api import PartnerRateThrottle

    monkeypatch.setattr(PartnerRateThrottle, "THROTTLE_RATES", {"partner": "100000/min"})
    cache.clear()
    yield
    cache.clear()


def token_of(client) -> str:
    from rest_framework.authtoken.models import Token

    return Token.objects.get(user=client.partner.api_user).key


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_batches_for_scarce_stock_never_oversell(live_server, catalogue):
    scarce = [SkuFactory(code=code, unit_price="12.50", case_pack=12) for code in ("SCARCE-A", "SCARCE-B")]
    for sku in scarce:
        stock(catalogue["east"], sku, SCARCE_UNITS)
    token = token_of(partner_client("acme"))
    answers = {}

    def send(client: int) -> None:
        # 1-2 units of each SKU, in either order, so that batches name the SKUs in different orders.
        items = []
        for number in range(ORDERS_PER_BATCH):
            lines = [
                {"sku": sku.code, "quantity": 1 + (client + number + n) % 2, "uom": "each", "unit_price": "12.50"}
                for n, sku in enumerate(scarce)
            ]
            items.append({"order": distinct_order(client, number, lines[:: 1 if number % 2 else -1])})
        answers[client] = post_batch(f"{live_server.url}{BATCH}", token, items)

    assert run_together(CLIENTS, send) == []

    assert sorted(status for status, _ in answers.values()) == [200] * CLIENTS, answers
    for client, (_, body) in answers.items():
        assert [r["index"] for r in body["results"]] == list(range(ORDERS_PER_BATCH))
        assert all(r["status"] == 201 for r in body["results"]), body
        assert body["created"] == ORDERS_PER_BATCH and body["failed"] == 0
        assert {r["order"]["external_id"] for r in body["results"]} == {f"C{client}-{n}" for n in range(ORDERS_PER_BATCH)}
    assert Order.objects.count() == CLIENTS * ORDERS_PER_BATCH

    levels = StockLevel.objects.filter(sku__in=scarce)
    assert all(level.reserved <= level.on_hand for level in levels)
    reserved = levels.aggregate(total=Sum("reserved"))["total"]
    allocated = ShipmentLine.objects.filter(order_line__sku__in=scarce).aggregate(total=Sum("quantity"))["total"] or 0
    assert reserved == allocated
    assert 0 < reserved <= SCARCE_UNITS * len(scarce)

    answered = {r["order"]["id"]: r["order"]["status"] for _, body in answers.values() for r in body["results"]}
    orders = Order.objects.prefetch_related("lines__shipment_lines")
    assert {order.pk: order.status for order in orders} == answered
    statuses = {order.status for order in orders}
    assert statuses <= {OrderStatus.ALLOCATED, OrderStatus.BACKORDERED, OrderStatus.ON_HOLD}
    assert OrderStatus.ALLOCATED in statuses and statuses - {OrderStatus.ALLOCATED}
    for order in orders:
        shipped_per_line = [sum(s.quantity for s in line.shipment_lines.all()) for line in order.lines.all()]
        if order.status == OrderStatus.ALLOCATED:
            assert shipped_per_line == [line.base_quantity for line in order.lines.all()]
        else:
            assert sum(shipped_per_line) == 0


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_batches_sharing_one_key_create_that_order_once(live_server, catalogue):
    token = token_of(partner_client("acme"))
    shared_body = distinct_order(99, 0, [{"sku": "SKU-1", "quantity": 1, "uom": "each", "unit_price": "12.50"}])
    answers = {}

    def send(client: int) -> None:
        own = [
            {"order": distinct_order(client, n, [{"sku": "SKU-3", "quantity": 1, "uom": "each", "unit_price": "12.50"}])}
            for n in range(3)
        ]
        items = [*own[:1], {"order": shared_body, "idempotency_key": "shared-key"}, *own[1:]]
        answers[client] = post_batch(f"{live_server.url}{BATCH}", token, items)

    assert run_together(CLIENTS, send) == []

    assert sorted(status for status, _ in answers.values()) == [200] * CLIENTS, answers
    shared = [body["results"][1] for _, body in answers.values()]
    assert Order.objects.filter(external_id=shared_body["external_id"]).count() == 1
    assert IdempotencyKey.objects.filter(key="shared-key").count() == 1
    created = [r for r in shared if r["status"] == 201 and not r.get("replayed")]
    replayed = [r for r in shared if r["status"] == 201 and r.get("replayed")]
    in_flight = [r for r in shared if r["status"] == 409]
    assert len(created) == 1 and len(created) + len(replayed) + len(in_flight) == CLIENTS
    assert all(r["order"] == created[0]["order"] for r in replayed)
    assert all(r["error"]["code"] == "request_in_progress" for r in in_flight)
    # The other orders of every batch are created, whatever became of the shared one.
    for _, body in answers.values():
        others = [r for r in body["results"] if r["index"] != 1]
        assert [r["status"] for r in others] == [201, 201, 201]
        assert body["created"] == 3 + (body["results"][1] in created)
    assert Order.objects.count() == 1 + 3 * CLIENTS
