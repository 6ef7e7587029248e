"""Applying inbound events through the order services: each topic, stale events, and failures that stay visible."""

import copy
import json
from datetime import UTC, datetime, timedelta

import pytest

from exceptions.models import ExceptionStatus, FulfillmentException
from integrations.models import InboundEvent, InboundStatus, Invoice, ReportedStock, ShippingMapping
from integrations.services.inbound import inbound_apply
from orders.models import Order, OrderEvent, OrderStatus, Shipment, ShipmentStatus
from orders.services import lifecycle
from tests.factories import SkuFactory, make_order
from tests.integrations.conftest import envelope, post_shopify, post_standard, shopify_sample

pytestmark = pytest.mark.django_db

T0 = datetime.now(UTC) - timedelta(minutes=2)


def applied(response) -> InboundEvent:
    assert response.status_code == 202, response.content
    return inbound_apply(response.json()["event"])


def sample(**changes) -> bytes:
    payload = json.loads(shopify_sample())
    payload.update(changes)
    return json.dumps(payload).encode()


def sync_failures():
    return FulfillmentException.objects.filter(type__code="sync_failure")


# --- Shopify -------------------------------------------------------------------------------------------


def test_the_real_orders_create_sample_becomes_an_allocated_test_order_with_its_exact_64_bit_id(client, shop, sample_catalogue):
    event = applied(post_shopify(client, shop, shopify_sample()))
    assert event.status == InboundStatus.APPLIED, event.error
    order = event.order
    # The sample's "id" was rounded by a JavaScript parser; the GraphQL id keeps every digit.
    assert order.external_id == "820982911946154508"
    assert (order.partner.code, order.status, order.is_test) == ("shop", OrderStatus.ALLOCATED, True)
    assert (order.ship_postal_code, order.ship_region, order.ship_country) == ("40003", "KY", "US")
    assert sorted(order.lines.values_list("sku_code", "quantity")) == sorted(
        [("SKU2006-001", 1), ("LENS-PROTECT-2YR", 1), ("CASE-LEATHER-PREM", 1), ("SKU2006-020", 1), ("SKU2006-035", 1)]
    )
    received = OrderEvent.objects.get(order=order, kind=OrderEvent.Kind.INBOUND)
    assert (received.name, received.actor, received.data["inbound_event"]) == ("orders/create", "system:shop", event.pk)
    assert order.events.filter(kind=OrderEvent.Kind.CREATED, actor="system:shop").exists()


def test_the_same_order_in_another_delivery_is_not_taken_twice(client, shop, sample_catalogue):
    first = applied(post_shopify(client, shop, shopify_sample()))
    again = applied(post_shopify(client, shop, shopify_sample()))
    assert again.status == InboundStatus.APPLIED
    assert again.order == first.order
    assert "received before" in again.error
    assert Order.objects.count() == 1


def test_the_shipping_line_maps_to_a_service_level_the_admin_set(client, shop, sample_catalogue):
    ShippingMapping.objects.create(system=shop, shipping_code="generic shipping", service_level="express")
    assert applied(post_shopify(client, shop, shopify_sample())).order.service_level == "express"


def test_an_unmapped_shipping_line_is_standard(client, shop, sample_catalogue):
    assert applied(post_shopify(client, shop, shopify_sample())).order.service_level == "standard"


def test_a_real_order_is_not_a_test(client, shop, sample_catalogue):
    assert applied(post_shopify(client, shop, sample(test=False))).order.is_test is False


def test_an_unknown_sku_keeps_the_order_and_holds_it_on_an_unknown_sku_exception(client, shop, sample_catalogue):
    payload = json.loads(shopify_sample())
    payload["line_items"][0]["sku"] = "NOT-IN-CATALOGUE"
    event = applied(post_shopify(client, shop, json.dumps(payload).encode()))
    assert event.status == InboundStatus.APPLIED
    assert event.order.exceptions.get().type.code == "unknown_sku"
    assert Order.objects.get(pk=event.order_id).status == OrderStatus.ON_HOLD


def test_a_line_item_without_sku_fails_the_event_and_opens_a_sync_failure(client, shop, sample_catalogue):
    payload = json.loads(shopify_sample())
    payload["line_items"][2]["sku"] = None
    event = applied(post_shopify(client, shop, json.dumps(payload).encode()))
    assert (event.status, event.error) == (InboundStatus.FAILED, "Line item 3 has no SKU.")
    failure = sync_failures().get()
    assert failure.detail["inbound_event"] == event.pk
    assert (failure.order, failure.source_system) == (None, "storefront")
    assert not Order.objects.exists()


def test_orders_updated_changes_the_address_and_cancelled_cancels(client, shop, sample_catalogue):
    order = applied(post_shopify(client, shop, shopify_sample())).order
    payload = json.loads(shopify_sample())
    payload["shipping_address"].update(zip="40202", address1="500 W Jefferson St", city="Louisville")
    updated = applied(post_shopify(client, shop, json.dumps(payload).encode(), topic="orders/updated"))
    assert updated.status == InboundStatus.APPLIED, updated.error
    order.refresh_from_db()
    assert (order.ship_postal_code, order.ship_line1, order.ship_city) == ("40202", "500 W Jefferson St", "Louisville")
    unchanged = applied(post_shopify(client, shop, json.dumps(payload).encode(), topic="orders/updated"))
    assert unchanged.error == "No change to the shipping address."
    cancelled = applied(post_shopify(client, shop, shopify_sample(), topic="orders/cancelled"))
    assert cancelled.status == InboundStatus.APPLIED
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED and "customer" in order.cancel_reason


def test_an_update_for_an_order_we_never_received_fails_visibly(client, shop, sample_catalogue):
    event = applied(post_shopify(client, shop, shopify_sample(), topic="orders/updated"))
    assert event.status == InboundStatus.FAILED
    assert "no order 820982911946154508" in event.error
    assert sync_failures().count() == 1


def test_inventory_levels_update_keeps_the_storefronts_figure_even_when_untracked(client, shop):
    body = (FIXTURE := shopify_sample("inventory_levels_update"))
    event = applied(post_shopify(client, shop, body, topic="inventory_levels/update"))
    assert event.status == InboundStatus.APPLIED
    reported = ReportedStock.objects.get()
    assert (reported.item_ref, reported.location_ref, reported.quantity) == ("271878346596884015", "24826418", None)
    counted = json.loads(FIXTURE) | {"available": 7}
    applied(post_shopify(client, shop, json.dumps(counted).encode(), topic="inventory_levels/update"))
    assert ReportedStock.objects.get().quantity == 7


def test_an_unknown_topic_fails_the_event_and_opens_a_sync_failure(client, shop):
    event = applied(post_shopify(client, shop, shopify_sample(), topic="carts/update"))
    assert event.status == InboundStatus.FAILED
    assert "carts/update" in event.error
    assert sync_failures().get().detail["topic"] == "carts/update"


def test_malformed_json_fails_the_event_and_opens_a_sync_failure(client, wms):
    event = applied(post_standard(client, wms, b'{"type": "shipment.picked", "data": '))
    assert event.status == InboundStatus.FAILED
    assert event.error.startswith("The body is not JSON")
    assert sync_failures().count() == 1


def test_failures_of_one_kind_add_occurrences_instead_of_exceptions(client, wms):
    for _ in range(3):
        applied(post_standard(client, wms, envelope("shipment.picked", {"shipment_id": 999999})))
    failure = sync_failures().get()
    assert failure.occurrences == 3


# --- WMS ----------------------------------------------------------------------------------------------


@pytest.fixture
def released(client, shop, sample_catalogue):
    order = applied(post_shopify(client, shop, shopify_sample())).order
    lifecycle.order_release(order=order, actor=lifecycle.RELEASE_WAVE)
    return Shipment.objects.get(order=order)


def wms_event(client, wms, type, data, at):
    return applied(post_standard(client, wms, envelope(type, data, occurred_at=at)))


def test_the_wms_moves_a_shipment_through_picked_packed_shipped_and_delivered(client, wms, released):
    data = {"shipment_id": released.pk}
    assert wms_event(client, wms, "shipment.picked", data, T0).status == InboundStatus.APPLIED
    assert wms_event(client, wms, "shipment.packed", data, T0 + timedelta(seconds=1)).status == InboundStatus.APPLIED
    tracking = {**data, "carrier": "UPS", "tracking_number": "1Z999"}
    shipped = wms_event(client, wms, "shipment.shipped", tracking, T0 + timedelta(seconds=2))
    assert shipped.status == InboundStatus.APPLIED, shipped.error
    released.refresh_from_db()
    assert (released.status, released.carrier, released.tracking_number) == (ShipmentStatus.SHIPPED, "UPS", "1Z999")
    assert released.order.status == OrderStatus.SHIPPED
    wms_event(client, wms, "shipment.delivered", data, T0 + timedelta(seconds=3))
    released.refresh_from_db()
    assert released.status == ShipmentStatus.DELIVERED
    assert set(InboundEvent.objects.filter(system=wms).values_list("order", flat=True)) == {released.order_id}


def test_an_older_event_arriving_late_is_recorded_and_ignored_as_stale(client, wms, released):
    data = {"shipment_id": released.pk}
    wms_event(client, wms, "shipment.picked", data, T0)
    wms_event(client, wms, "shipment.shipped", {**data, "tracking_number": "1Z1"}, T0 + timedelta(minutes=1))
    late = wms_event(client, wms, "shipment.packed", data, T0 + timedelta(seconds=30))
    assert late.status == InboundStatus.STALE
    assert "shipment.shipped" in late.error
    released.refresh_from_db()
    assert released.status == ShipmentStatus.SHIPPED
    assert not sync_failures().exists()


def test_an_event_for_a_shipment_we_do_not_know_fails_visibly(client, wms, released):
    event = wms_event(client, wms, "shipment.picked", {"shipment_id": released.pk + 1000}, T0)
    assert (event.status, event.order) == (InboundStatus.FAILED, None)
    assert "no shipment" in event.error
    released.refresh_from_db()
    assert released.status == ShipmentStatus.RELEASED


def test_an_event_the_shipment_cannot_take_fails_on_its_order(client, wms, released):
    event = wms_event(client, wms, "shipment.packed", {"shipment_id": released.pk}, T0)  # never picked
    assert event.status == InboundStatus.FAILED
    assert event.order == released.order
    assert sync_failures().get().order == released.order


def test_a_wms_for_other_locations_cannot_touch_this_one(client, released):
    from integrations.services.systems import system_ensure
    from tests.factories import LocationFactory

    LocationFactory(code="WH-WEST")
    west = system_ensure(slug="wms-west", kind="wms", adapter="generic_wms", locations=["WH-WEST"]).system
    event = wms_event(client, west, "shipment.picked", {"shipment_id": released.pk}, T0)
    assert event.status == InboundStatus.FAILED and "does not run" in event.error


def test_a_short_pick_and_a_label_failure_go_to_their_services(client, wms, released):
    line = released.lines.first()
    picked = {"shipment_id": released.pk, "lines": [{"order_line_id": line.order_line_id, "picked": 0}]}
    short = wms_event(client, wms, "shipment.short_picked", picked, T0)
    assert short.status == InboundStatus.APPLIED, short.error
    # One warehouse only: nowhere else to fill the missing unit, so a person is asked.
    assert released.order.exceptions.filter(type__code="short_pick", source_system="wms").exists()
    label_failed = {"shipment_id": released.pk, "reason": "address rejected"}
    label = wms_event(client, wms, "shipment.label_failed", label_failed, T0 + timedelta(seconds=1))
    assert label.status == InboundStatus.APPLIED, label.error
    assert released.order.exceptions.get(type__code="label_failure").summary.endswith("address rejected")


def test_counts_from_the_wms_are_kept_and_an_unknown_sku_fails_them_all(client, wms, sample_catalogue):
    counts = {"location": "WH-EAST", "counts": [{"sku": "SKU2006-001", "quantity": 48}, {"sku": "SKU2006-020", "quantity": 50}]}
    assert wms_event(client, wms, "inventory.counted", counts, T0).status == InboundStatus.APPLIED
    assert dict(ReportedStock.objects.values_list("item_ref", "quantity")) == {"SKU2006-001": 48, "SKU2006-020": 50}
    bad = copy.deepcopy(counts)
    bad["counts"].append({"sku": "NOPE", "quantity": 1})
    bad["counts"][0]["quantity"] = 1
    event = wms_event(client, wms, "inventory.counted", bad, T0 + timedelta(seconds=1))
    assert (event.status, event.error) == (InboundStatus.FAILED, "There is no SKU NOPE.")
    assert ReportedStock.objects.get(item_ref="SKU2006-001").quantity == 48


# --- ERP ----------------------------------------------------------------------------------------------


def test_an_invoice_is_kept_against_its_shipment(client, erp, released):
    data = {"invoice_number": "INV-1", "shipment_id": released.pk, "amount": "414.95", "currency": "USD"}
    event = applied(post_standard(client, erp, envelope("invoice.posted", data)))
    assert event.status == InboundStatus.APPLIED, event.error
    invoice = Invoice.objects.get()
    assert (invoice.order, invoice.shipment, str(invoice.amount)) == (released.order, released, "414.95")


def test_a_credit_hold_holds_the_order_and_its_release_lets_it_go(client, erp, shop, sample_catalogue):
    order = applied(post_shopify(client, shop, shopify_sample())).order
    hold = {"order_id": order.pk, "reason": "over limit"}
    placed = applied(post_standard(client, erp, envelope("credit_hold.placed", hold, occurred_at=T0)))
    assert placed.status == InboundStatus.APPLIED, placed.error
    order.refresh_from_db()
    assert order.status == OrderStatus.ON_HOLD
    hold = order.exceptions.get(type__code="credit_hold")
    release = envelope("credit_hold.released", {"order_id": order.pk}, occurred_at=T0 + timedelta(seconds=1))
    released = applied(post_standard(client, erp, release))
    assert released.status == InboundStatus.APPLIED, released.error
    hold.refresh_from_db()
    order.refresh_from_db()
    assert hold.status == ExceptionStatus.RESOLVED
    assert hold.events.filter(actor="system:erp").exists()
    assert order.status == OrderStatus.ALLOCATED


def test_a_late_hold_after_its_release_is_stale(client, erp, shop, sample_catalogue):
    order = applied(post_shopify(client, shop, shopify_sample())).order
    release = envelope("credit_hold.released", {"order_id": order.pk}, occurred_at=T0 + timedelta(seconds=1))
    applied(post_standard(client, erp, release))
    late = applied(post_standard(client, erp, envelope("credit_hold.placed", {"order_id": order.pk}, occurred_at=T0)))
    assert late.status == InboundStatus.STALE
    order.refresh_from_db()
    assert order.status == OrderStatus.ALLOCATED


# --- generic storefront -------------------------------------------------------------------------------


@pytest.fixture
def storefront(db):
    from integrations.services.systems import system_ensure
    from orders.services.partners import partner_ensure

    partner_ensure(code="web", name="Web")
    return system_ensure(slug="web", kind="storefront", adapter="generic_storefront", partner="web").system


def test_a_generic_storefront_creates_changes_and_cancels_orders(client, storefront, sample_catalogue):
    from tests.api.conftest import order_body

    body = order_body(external_id="W-1", lines=[{"sku": "SKU2006-001", "quantity": 1, "uom": "each", "unit_price": "89.99"}])
    created = applied(post_standard(client, storefront, envelope("order.created", body, occurred_at=T0)))
    assert created.status == InboundStatus.APPLIED, created.error
    assert created.order.status == OrderStatus.ALLOCATED
    change = {"external_id": "W-1", "shipping_address": {"line1": "2 Main St"}}
    changed = applied(
        post_standard(client, storefront, envelope("order.address_changed", change, occurred_at=T0 + timedelta(seconds=1)))
    )
    assert changed.status == InboundStatus.APPLIED, changed.error
    cancel = {"external_id": "W-1", "reason": "changed mind"}
    applied(post_standard(client, storefront, envelope("order.cancelled", cancel, occurred_at=T0 + timedelta(seconds=2))))
    order = Order.objects.get()
    assert (order.ship_line1, order.status) == ("2 Main St", OrderStatus.CANCELLED)


def test_a_generic_order_that_does_not_validate_fails_with_the_field_errors(client, storefront):
    event = applied(post_standard(client, storefront, envelope("order.created", {"external_id": "W-2"})))
    assert event.status == InboundStatus.FAILED
    assert "placed_at" in event.error and "lines" in event.error


# --- retry_sync on a failed event ---------------------------------------------------------------------


def test_retry_sync_applies_a_failed_event_again_once_its_cause_is_fixed(client, wms, sample_catalogue, ops_admin):
    from core.actors import Actor
    from integrations.services.retries import exception_retry_sync

    counts = {"location": "WH-EAST", "counts": [{"sku": "NEW-SKU", "quantity": 5}]}
    event = applied(post_standard(client, wms, envelope("inventory.counted", counts)))
    assert event.status == InboundStatus.FAILED
    SkuFactory(code="NEW-SKU")
    exception_retry_sync(exception=sync_failures().get(), actor=Actor.for_user(ops_admin))
    assert sync_failures().get().status == ExceptionStatus.RESOLVED
    event.refresh_from_db()
    assert event.status == InboundStatus.RECEIVED
    assert inbound_apply(event.pk).status == InboundStatus.APPLIED
    assert ReportedStock.objects.get().quantity == 5


def test_an_invoice_number_posted_again_for_another_shipment_is_refused(client, erp, released):
    first = {"invoice_number": "INV-9", "shipment_id": released.pk, "amount": "10.00"}
    assert applied(post_standard(client, erp, envelope("invoice.posted", first))).status == InboundStatus.APPLIED
    other = Shipment.objects.create(order=make_order(partner=released.order.partner), location=released.location)
    again = applied(post_standard(client, erp, envelope("invoice.posted", {**first, "shipment_id": other.pk})))
    assert again.status == InboundStatus.FAILED and "posted before" in again.error
    assert Invoice.objects.get().shipment == released


@pytest.mark.parametrize(
    ("counts", "error"),
    [
        (["SKU2006-001"], "Count 1 is not an object with sku and quantity."),
        ([{"sku": "SKU2006-001", "quantity": 1}, {"sku": "SKU2006-001", "quantity": 2}], "SKU SKU2006-001 is counted twice."),
    ],
)
def test_a_malformed_count_is_refused_whole(client, wms, sample_catalogue, counts, error):
    event = wms_event(client, wms, "inventory.counted", {"location": "WH-EAST", "counts": counts}, T0)
    assert (event.status, event.error) == (InboundStatus.FAILED, error)
    assert not ReportedStock.objects.exists()
