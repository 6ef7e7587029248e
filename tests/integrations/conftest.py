"""Systems around the portal, and signed webhooks from them, as the real senders would send them."""

import dataclasses
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.test import Client

from integrations.services.systems import system_ensure
from integrations.signatures import shopify_signature, standard_headers
from integrations.simulator import Options, Simulator
from orders.services.partners import partner_ensure
from tests.factories import LocationFactory, SkuFactory, stock

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "shopify"
SHOPIFY_SECRET = "shpss_test_app_secret"
# The sample's line items: SKU and unit price.
SAMPLE_SKUS = {
    "SKU2006-001": "89.99",
    "LENS-PROTECT-2YR": "19.99",
    "CASE-LEATHER-PREM": "24.99",
    "SKU2006-020": "159.99",
    "SKU2006-035": "119.99",
}


def shopify_sample(name: str = "orders_create") -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def webhook_url(system) -> str:
    return f"/integrations/{system.slug}/webhooks/"


def post_shopify(client: Client, system, body: bytes, *, topic: str = "orders/create", webhook_id: str | None = None, **headers):
    signed = {
        "HTTP_X_SHOPIFY_TOPIC": topic,
        "HTTP_X_SHOPIFY_WEBHOOK_ID": webhook_id or str(uuid.uuid4()),
        "HTTP_X_SHOPIFY_HMAC_SHA256": shopify_signature(system.secret, body),
        "HTTP_X_SHOPIFY_TRIGGERED_AT": datetime.now(UTC).isoformat(),
    }
    signed.update(headers)
    return client.post(webhook_url(system), data=body, content_type="application/json", **signed)


def envelope(type: str, data: dict, *, occurred_at: datetime | None = None) -> bytes:
    return json.dumps({"type": type, "occurred_at": (occurred_at or datetime.now(UTC)).isoformat(), "data": data}).encode()


def post_standard(client: Client, system, body: bytes, *, message_id: str | None = None, at: datetime | None = None, **headers):
    signed = standard_headers(system.secret, message_id=message_id or f"msg_{uuid.uuid4().hex}", body=body, at=at)
    meta = {f"HTTP_{name.upper().replace('-', '_')}": value for name, value in signed.items()}
    meta.update(headers)
    return client.post(webhook_url(system), data=body, content_type="application/json", **meta)


@pytest.fixture
def sample_catalogue(db):
    """The Shopify sample's five SKUs at its prices, in stock at one warehouse."""
    east = LocationFactory(code="WH-EAST")
    skus = {code: SkuFactory(code=code, unit_price=price) for code, price in SAMPLE_SKUS.items()}
    for sku in skus.values():
        stock(east, sku, 50)
    return {"east": east, **skus}


@pytest.fixture
def shop(db):
    partner_ensure(code="shop", name="Shop")
    return system_ensure(slug="shop", kind="storefront", adapter="shopify", partner="shop", secret=SHOPIFY_SECRET).system


@pytest.fixture
def wms(db):
    return system_ensure(slug="wms", kind="wms", adapter="generic_wms").system


@pytest.fixture
def erp(db):
    return system_ensure(slug="erp", kind="erp", adapter="generic_erp").system


# The simulator with nothing random unless a test asks for it.
QUIET = Options(
    storefront_port=0,
    erp_port=0,
    wms_port=0,
    fault_rate=0,
    bad_address_rate=0,
    short_pick_rate=0,
    label_failure_rate=0,
    uninvoiced_rate=0,
    count_interval=0,
    count_drift_rate=0,
    seed=20240601,
)


@pytest.fixture
def simulate(live_server):
    """Start a simulator against the live server (free ports, nothing random unless asked); stopped afterwards."""
    started = []

    def start(**changes) -> Simulator:
        simulator = Simulator(dataclasses.replace(QUIET, portal_url=live_server.url, **changes))
        assert simulator.start() == []
        started.append(simulator)
        return simulator

    yield start
    for simulator in started:
        simulator.stop()
