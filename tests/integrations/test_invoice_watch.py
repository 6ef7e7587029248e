"""Shipped but not invoiced: the watch opens the exception once, and the invoice arriving later closes it."""

from datetime import timedelta

import pytest
from django.utils import timezone

from exceptions.models import ExceptionEvent, ExceptionStatus, FulfillmentException
from integrations.models import InboundStatus
from integrations.services.inbound import inbound_apply
from integrations.services.invoices import invoice_watch
from orders.models import Order, Shipment
from orders.services import lifecycle, shipments
from tests.factories import TEST_ACTOR
from tests.integrations.conftest import envelope, post_shopify, post_standard, shopify_sample

pytestmark = pytest.mark.django_db


def shipped(client, shop, hours_ago: float) -> Shipment:
    response = post_shopify(client, shop, shopify_sample())
    order = inbound_apply(response.json()["event"]).order
    Order.objects.filter(pk=order.pk).update(is_test=False)  # the sample is a test order, which the watch skips
    lifecycle.order_release(order=order, actor=TEST_ACTOR)
    shipment = Shipment.objects.get(order=order)
    shipments.shipment_pick(shipment=shipment, actor=TEST_ACTOR)
    shipments.shipment_ship(shipment=shipment, carrier="UPS", tracking_number="1Z42", actor=TEST_ACTOR)
    Shipment.objects.filter(pk=shipment.pk).update(shipped_at=timezone.now() - timedelta(hours=hours_ago))
    return Shipment.objects.get(pk=shipment.pk)


def not_invoiced():
    return FulfillmentException.objects.filter(type__code="shipment_not_invoiced")


def invoice(client, erp, **data):
    response = post_standard(client, erp, envelope("invoice.posted", {"invoice_number": "INV-1", "amount": "10.00", **data}))
    event = inbound_apply(response.json()["event"])
    assert event.status == InboundStatus.APPLIED, event.error
    return event


def test_a_shipment_not_invoiced_after_a_day_opens_the_exception_once(client, shop, erp, sample_catalogue):
    late = shipped(client, shop, hours_ago=25)

    assert invoice_watch() == 1
    assert invoice_watch() == 0  # flagged once

    exception = not_invoiced().get()
    assert (exception.order, exception.shipment, exception.source_system) == (late.order, late, "erp")
    assert exception.queue.slug == "finance"
    assert "no invoice after 24 hours" in exception.summary


def test_the_invoice_arriving_later_resolves_it_with_the_erp_as_actor(client, shop, erp, sample_catalogue):
    late = shipped(client, shop, hours_ago=30)
    invoice_watch()

    invoice(client, erp, shipment_id=late.pk)

    exception = not_invoiced().get()
    assert (exception.status, exception.resolution_action) == (ExceptionStatus.RESOLVED, "invoice_posted")
    closing = ExceptionEvent.objects.filter(exception=exception).latest("id")
    assert closing.actor == "system:erp"
    assert exception.resolution_note == "erp posted invoice INV-1."


def test_an_invoice_for_the_whole_order_resolves_the_exception_of_its_shipment(client, shop, erp, sample_catalogue):
    late = shipped(client, shop, hours_ago=30)
    invoice_watch()
    invoice(client, erp, order_id=late.order_id)
    assert not_invoiced().get().status == ExceptionStatus.RESOLVED


def test_a_shipment_invoiced_in_time_is_not_flagged(client, shop, erp, sample_catalogue):
    late = shipped(client, shop, hours_ago=30)
    invoice(client, erp, order_id=late.order_id)
    assert invoice_watch() == 0
    assert not not_invoiced().exists()


def test_the_watch_waits_out_the_grace_period_and_its_setting(client, shop, erp, sample_catalogue, settings):
    shipped(client, shop, hours_ago=23)
    assert invoice_watch() == 0
    settings.INVOICE_GRACE_HOURS = 12
    assert invoice_watch() == 1


def test_test_orders_and_a_portal_without_an_erp_are_not_watched(client, shop, sample_catalogue):
    shipped(client, shop, hours_ago=48)
    assert invoice_watch() == 0  # no ERP connected
    from integrations.services.systems import system_ensure

    system_ensure(slug="erp", kind="erp", adapter="generic_erp")
    Order.objects.update(is_test=True)
    assert invoice_watch() == 0
    Order.objects.update(is_test=False)
    assert invoice_watch() == 1


def test_a_dismissed_one_does_not_come_back(client, shop, erp, sample_catalogue, ops_admin):
    from core.actors import Actor
    from exceptions.services import exception_dismiss

    shipped(client, shop, hours_ago=30)
    invoice_watch()
    exception_dismiss(exception=not_invoiced().get(), reason="Samples are not invoiced", actor=Actor.for_user(ops_admin))
    assert invoice_watch() == 0
    assert not_invoiced().count() == 1
