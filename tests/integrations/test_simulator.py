"""The partner simulator against a real portal (live_server), on its own HTTP servers, through the real relay."""

import dataclasses
import itertools
import json
import time
import uuid
from decimal import Decimal
from io import StringIO

import httpx
import pytest
from django.core.management import call_command

from exceptions.models import FulfillmentException
from integrations.models import Delivery, DeliveryStatus, InboundEvent, InboundStatus, Invoice, ReportedStock
from integrations.services import relay
from integrations.services.inbound import inbound_apply
from integrations.services.outbox import availability_changed
from integrations.signatures import standard_headers
from integrations.simulator import BAD_ADDRESSES, ERP, GOOD_ADDRESSES, STOREFRONT, WMS, Simulator
from inventory.models import Sku
from orders.models import Order, OrderStatus, Shipment, ShipmentStatus
from orders.services import lifecycle
from tests.factories import TEST_ACTOR, order_in_state
from tests.integrations.conftest import QUIET

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def deliver_pending(slug: str) -> list[Delivery]:
    """Send every pending delivery to the system through the real relay, as the worker would."""
    pending = list(Delivery.objects.filter(system__slug=slug, status=DeliveryStatus.PENDING).order_by("pk"))
    for delivery in pending:
        relay.delivery_send(delivery.pk)
        delivery.refresh_from_db()
    return pending


def send_and_apply(simulator: Simulator, webhook) -> InboundEvent:
    assert simulator.send(webhook) == 202
    event = InboundEvent.objects.get(system__slug=webhook.slug, sender_id=webhook.message_id)
    inbound_apply(event.pk)  # None if a worker on the test broker applied it first; either way it is applied once
    event.refresh_from_db()
    return event


def play_out(simulator: Simulator) -> list:
    """Everything the simulator has to say, in order, as if all the time it waits between steps had passed."""
    webhooks = []
    for step in itertools.count(1):
        batch = simulator.follow_ups(now=time.monotonic() + 1000 * step)
        if not batch:
            return webhooks
        webhooks += batch


def post_delivery(simulator: Simulator, slug: str, body: bytes, *, delivery_id: str, secret: str | None = None) -> int:
    headers = standard_headers(secret or simulator.systems[slug].secret, message_id=delivery_id, body=body)
    url = f"http://127.0.0.1:{simulator.ports[slug]}/"
    return httpx.post(url, content=body, headers={"content-type": "application/json", **headers}).status_code


# --- deliveries from the portal ---------------------------------------------------------------------------------


def test_a_delivery_sent_by_the_relay_and_again_is_received_once(simulate, sample_catalogue):
    simulator = simulate()
    availability_changed(sku_code="SKU2006-001", location_code="WH-EAST", available=7)
    (delivery,) = deliver_pending(STOREFRONT)
    assert delivery.status == DeliveryStatus.DELIVERED

    # The relay's retry after an answer it did not see: same delivery id, signed afresh.
    again = post_delivery(simulator, STOREFRONT, relay.envelope(delivery), delivery_id=str(delivery.delivery_id))

    assert again == 200
    tally = simulator.systems[STOREFRONT].tally
    assert (tally.received, tally.duplicates, tally.rejected) == (1, 1, 0)
    assert simulator.delivered_types == {f"{STOREFRONT}:availability.changed": 1}


def test_a_delivery_with_a_bad_or_no_signature_is_401_and_not_received(simulate):
    simulator = simulate()
    body = json.dumps({"id": str(uuid.uuid4()), "type": "pick_ticket.created", "data": {"shipment_id": 1}}).encode()

    forged = post_delivery(simulator, WMS, body, delivery_id="msg_1", secret="whsec_" + "A" * 32)
    unsigned = httpx.post(f"http://127.0.0.1:{simulator.ports[WMS]}/", content=body).status_code
    genuine = post_delivery(simulator, WMS, body, delivery_id="msg_1")

    assert (forged, unsigned, genuine) == (401, 401, 200)
    tally = simulator.systems[WMS].tally
    assert (tally.received, tally.duplicates, tally.rejected) == (1, 0, 2)  # the forgery did not take the id
    assert list(simulator.tickets) == [1]


def test_a_delivery_answered_500_is_received_when_the_relay_tries_again(simulate, sample_catalogue):
    simulator = simulate(fault_rate=1.0, timeout_share=0.0)
    availability_changed(sku_code="SKU2006-001", location_code="WH-EAST", available=7)
    (delivery,) = deliver_pending(STOREFRONT)
    assert (delivery.status, delivery.last_error) == (DeliveryStatus.PENDING, "HTTP 500")

    simulator.options = dataclasses.replace(simulator.options, fault_rate=0.0)
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=delivery.created_at)
    (delivery,) = deliver_pending(STOREFRONT)

    assert delivery.status == DeliveryStatus.DELIVERED
    tally = simulator.systems[STOREFRONT].tally
    assert (tally.failed, tally.received, tally.duplicates) == (1, 1, 0)


def test_a_delivery_left_to_time_out_is_taken_in_and_its_retry_is_a_duplicate(simulate, sample_catalogue, settings):
    settings.OUTBOX_TIMEOUT_SECONDS = 0.5
    simulator = simulate(fault_rate=1.0, timeout_share=1.0)
    availability_changed(sku_code="SKU2006-001", location_code="WH-EAST", available=7)
    (delivery,) = deliver_pending(STOREFRONT)
    assert delivery.status == DeliveryStatus.PENDING
    assert delivery.last_error.startswith("ReadTimeout")

    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=delivery.created_at)
    (delivery,) = deliver_pending(STOREFRONT)

    assert delivery.status == DeliveryStatus.DELIVERED
    tally = simulator.systems[STOREFRONT].tally
    assert (tally.stalled, tally.received, tally.duplicates) == (1, 1, 1)


# --- webhooks to the portal ---------------------------------------------------------------------------------------


def test_a_built_shopify_order_is_accepted_stored_and_taken_in_with_catalogue_skus(simulate, sample_catalogue):
    simulator = simulate()
    webhook = simulator.build_shopify_order()

    event = send_and_apply(simulator, webhook)

    assert event.topic == "orders/create"
    assert event.headers["X-Shopify-Webhook-Id"] == webhook.message_id
    body = json.loads(bytes(event.body))
    assert body["admin_graphql_api_id"] == f"gid://shopify/Order/{body['id']}"
    catalogue = dict(Sku.objects.values_list("code", "unit_price"))
    assert 1 <= len(body["line_items"]) <= 3
    for item in body["line_items"]:
        assert Decimal(item["price"]) == catalogue[item["sku"]]
        assert 1 <= item["quantity"] <= 3
    assert event.status == InboundStatus.APPLIED, event.error
    order = Order.objects.get(partner__code=STOREFRONT, external_id=str(body["id"]))
    assert sorted(order.lines.values_list("sku_code", flat=True)) == sorted(item["sku"] for item in body["line_items"])
    assert order.is_test is False
    assert simulator.send(webhook) == 200  # the portal dedupes a resend of the same webhook id
    # One webhook, posted twice.
    assert simulator.sent == {"orders/create": 1} and simulator.answers == {"202": 1, "200": 1}


def test_each_built_order_is_a_new_one(simulate, sample_catalogue):
    simulator = simulate()
    webhooks = simulator.next_webhooks(3)

    statuses = [simulator.send(webhook) for webhook in webhooks]

    assert statuses == [202, 202, 202]
    ids = {webhook.payload["id"] for webhook in webhooks}
    assert len(ids) == 3
    assert len({webhook.payload["email"] for webhook in webhooks}) == 3


def test_a_seed_repeats_the_orders_it_builds(sample_catalogue):
    def drawn(simulator: Simulator) -> list:
        orders = [simulator.build_shopify_order().payload for _ in range(5)]
        return [
            (order["shipping_address"]["address1"], [(item["sku"], item["quantity"]) for item in order["line_items"]])
            for order in orders
        ]

    first, again = Simulator(dataclasses.replace(QUIET, seed=11)), Simulator(dataclasses.replace(QUIET, seed=11))
    again.behaviour_rng.random()  # deliveries draw from the other generator: they do not change the orders

    assert drawn(first) == drawn(again)


@pytest.mark.parametrize(
    ("address", "held"),
    [(address, False) for address in GOOD_ADDRESSES] + [(address, True) for address in BAD_ADDRESSES],
    ids=lambda value: value["address1"] if isinstance(value, dict) else None,
)
def test_the_good_addresses_pass_the_portal_and_the_bad_ones_are_held(simulate, sample_catalogue, address, held):
    simulator = simulate()

    event = send_and_apply(simulator, simulator.build_shopify_order(address))

    assert event.status == InboundStatus.APPLIED, event.error
    assert (event.order.ship_country, event.order.ship_line1) == (address["country_code"], address["address1"])
    assert FulfillmentException.objects.filter(order=event.order, type__code="invalid_address").exists() is held


def test_an_order_with_a_bad_address_is_held_for_a_person(simulate, sample_catalogue):
    simulator = simulate(bad_address_rate=1.0)

    event = send_and_apply(simulator, simulator.build_shopify_order())

    assert event.status == InboundStatus.APPLIED, event.error
    assert FulfillmentException.objects.filter(order=event.order, type__code="invalid_address").exists()


def test_a_pick_ticket_becomes_shipment_webhooks_the_portal_applies_and_the_erp_invoices(simulate, sample_catalogue):
    sample_catalogue["east"].ships_to = ["US", "CA", "GB", "DE"]
    sample_catalogue["east"].save()
    simulator = simulate()
    event = send_and_apply(simulator, simulator.build_shopify_order())
    assert event.order.status == OrderStatus.ALLOCATED
    lifecycle.order_release(order=event.order, actor=TEST_ACTOR)
    (ticket,) = deliver_pending(WMS)
    assert ticket.status == DeliveryStatus.DELIVERED
    shipment = Shipment.objects.get(order=event.order)

    webhooks = play_out(simulator)

    assert [webhook.topic for webhook in webhooks] == [
        "shipment.picked",
        "shipment.packed",
        "shipment.shipped",
        "shipment.delivered",
    ]
    assert all(webhook.payload["data"]["shipment_id"] == shipment.pk for webhook in webhooks)
    for webhook in webhooks:
        applied = send_and_apply(simulator, webhook)
        assert applied.status == InboundStatus.APPLIED, (webhook.topic, applied.error)
        if webhook.topic == "shipment.shipped":
            # Shipped: the portal tells the storefront and the ERP; the ERP invoices it after a while.
            assert [d.status for d in deliver_pending(STOREFRONT)] == [DeliveryStatus.DELIVERED]
            assert [d.status for d in deliver_pending(ERP)] == [DeliveryStatus.DELIVERED]
    shipment.refresh_from_db()
    assert shipment.status == ShipmentStatus.DELIVERED
    assert shipment.tracking_number == webhooks[2].payload["data"]["tracking_number"]

    (invoice_webhook,) = play_out(simulator)
    assert invoice_webhook.topic == "invoice.posted"
    assert send_and_apply(simulator, invoice_webhook).status == InboundStatus.APPLIED
    invoice = Invoice.objects.get(system__slug=ERP)
    total = sum(line.unit_price * line.quantity for line in event.order.lines.all())
    assert (invoice.shipment, invoice.order, invoice.amount) == (shipment, event.order, total)
    assert invoice.currency == event.order.currency
    assert simulator.systems[STOREFRONT].tally.received == 1
    assert simulator.sent["shipment.shipped"] == 1 and simulator.answers == {"202": 6}


def test_a_short_pick_and_a_label_failure_reach_the_portal_as_exceptions(simulate):
    simulator = simulate(short_pick_rate=1.0, label_failure_rate=1.0)
    order = order_in_state(OrderStatus.RELEASED)
    deliver_pending(WMS)
    shipment = Shipment.objects.get(order=order)
    planned = dict(shipment.lines.values_list("order_line_id", "quantity"))

    webhooks = play_out(simulator)

    assert [webhook.topic for webhook in webhooks] == [
        "shipment.short_picked",
        "shipment.packed",
        "shipment.label_failed",
        "shipment.shipped",
        "shipment.delivered",
    ]
    picked = {line["order_line_id"]: line["picked"] for line in webhooks[0].payload["data"]["lines"]}
    assert sum(planned.values()) - sum(picked.values()) == 1
    assert all(0 <= planned[line] - picked[line] <= 1 for line in planned)
    for webhook in webhooks:
        applied = send_and_apply(simulator, webhook)
        assert applied.status == InboundStatus.APPLIED, (webhook.topic, applied.error)
    codes = set(FulfillmentException.objects.filter(order=order).values_list("type__code", flat=True))
    assert "label_failure" in codes
    shipment.refresh_from_db()
    assert shipment.status == ShipmentStatus.DELIVERED
    assert sum(shipment.lines.values_list("quantity", flat=True)) == sum(planned.values()) - 1


def test_a_pick_ticket_cancelled_before_it_was_picked_gets_no_shipment_webhooks(simulate):
    simulator = simulate()
    order = order_in_state(OrderStatus.RELEASED)
    deliver_pending(WMS)
    lifecycle.order_cancel(order=order, reason="customer changed their mind", actor=TEST_ACTOR)
    (cancellation,) = deliver_pending(WMS)
    assert cancellation.status == DeliveryStatus.DELIVERED

    assert play_out(simulator) == []
    assert simulator.delivered_types == {f"{WMS}:pick_ticket.created": 1, f"{WMS}:pick_ticket.cancelled": 1}


def test_the_erp_leaves_the_chosen_share_of_shipments_uninvoiced(simulate):
    simulator = simulate(uninvoiced_rate=1.0)
    order = order_in_state(OrderStatus.SHIPPED)
    (fulfillment,) = deliver_pending(ERP)
    assert fulfillment.message.order == order

    assert play_out(simulator) == []
    assert simulator.uninvoiced == 1


def test_a_stock_count_reports_the_portal_on_hand_and_can_be_off_by_a_few(simulate, sample_catalogue):
    simulator = simulate()
    exact = simulator.build_count()
    event = send_and_apply(simulator, exact)
    assert event.status == InboundStatus.APPLIED, event.error
    reported = dict(ReportedStock.objects.filter(system__slug=WMS).values_list("item_ref", "quantity"))
    assert reported == {code: 50 for code in sample_catalogue if code != "east"}

    simulator.options = dataclasses.replace(simulator.options, count_drift_rate=1.0)
    off = simulator.build_count().payload["data"]

    assert off["location"] == "WH-EAST"
    assert all(1 <= abs(count["quantity"] - 50) <= 3 for count in off["counts"])


# --- the command ---------------------------------------------------------------------------------------------------


def test_the_command_runs_for_its_duration_and_says_what_it_did(live_server, sample_catalogue):
    out = StringIO()

    call_command(
        "simulate_partners",
        "--portal-url",
        live_server.url,
        *("--storefront-port", "0", "--erp-port", "0", "--wms-port", "0"),
        *("--rate", "4", "--duration", "2", "--seed", "3", "--count-interval", "0"),
        stdout=out,
    )

    lines = out.getvalue().splitlines()
    assert any(line.startswith(f"{WMS} listens on http://127.0.0.1:") for line in lines)
    final = lines[-1]
    assert final.startswith("Final: ")
    stored = InboundEvent.objects.filter(system__slug=STOREFRONT, topic="orders/create").count()
    assert stored >= 4
    assert f"orders/create={stored}" in final and f"202={stored}" in final
