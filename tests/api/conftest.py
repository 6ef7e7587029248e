import copy

import pytest
from rest_framework.test import APIClient

from orders.services.partners import partner_ensure
from tests.factories import LocationFactory, SkuFactory, stock

ORDERS = "/api/v1/orders/"
ORDER_BODY = {
    "external_id": "1001",
    "placed_at": "2026-11-20T10:00:00Z",
    "currency": "USD",
    "service_level": "standard",
    "customer": {"name": "Ada Lovelace", "email": "ada@example.com", "tier": "standard"},
    "shipping_address": {
        "name": "Ada Lovelace",
        "line1": "1 Main St",
        "line2": "",
        "city": "Springfield",
        "region": "IL",
        "postal_code": "62701",
        "country": "US",
    },
    "lines": [{"sku": "SKU-1", "quantity": 2, "uom": "each", "unit_price": "12.50"}],
}


def order_body(**changes) -> dict:
    body = copy.deepcopy(ORDER_BODY)
    body.update(changes)
    return body


@pytest.fixture
def catalogue(db):
    east, west = LocationFactory(code="WH-EAST"), LocationFactory(code="WH-WEST")
    skus = {code: SkuFactory(code=code, unit_price="12.50", case_pack=12) for code in ("SKU-1", "SKU-2", "SKU-3")}
    for sku in skus.values():
        stock(east, sku, 100)
    stock(west, skus["SKU-2"], 5)
    return {"east": east, "west": west, **skus}


def partner_client(code: str) -> APIClient:
    partner, token, _ = partner_ensure(code=code, name=code.title())
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    client.partner = partner
    return client


@pytest.fixture
def acme(db):
    return partner_client("acme")


@pytest.fixture
def globex(db):
    return partner_client("globex")
