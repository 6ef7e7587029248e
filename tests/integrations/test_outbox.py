"""The outbox: which change writes which message to whom, in the change's own transaction; and the relay that
delivers it to a real local HTTP server, signed, with backoff, until it is acknowledged or dead."""

import json
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from core.actors import Actor
from exceptions.models import ExceptionStatus, FulfillmentException
from integrations.models import Delivery, DeliveryStatus, OutboxMessage
from integrations.services import relay
from integrations.services.outbox import MessageType, availability_changed
from integrations.services.retries import exception_retry_sync
from integrations.services.systems import system_ensure
from orders.models import Shipment
from orders.services import lifecycle, shipments
from orders.services.partners import partner_ensure
from tests.factories import LocationFactory, SkuFactory, make_order, single_site_plan, stock

pytestmark = pytest.mark.django_db
ACTOR = Actor.job("test")


@pytest.fixture
def site(db):
    east, west = LocationFactory(code="WH-EAST"), LocationFactory(code="WH-WEST")
    sku = SkuFactory(code="MUG-1")
    stock(east, sku, 10)
    return {"east": east, "west": west, "sku": sku}


@pytest.fixture
def receivers(site, httpserver):
    partner, _, _ = partner_ensure(code="shop", name="Shop")
    url = httpserver.url_for("/")
    return {
        "partner": partner,
        "wms_east": system_ensure(
            slug="wms-east", kind="wms", adapter="generic_wms", base_url=url + "wms-east", locations=["WH-EAST"]
        ).system,
        "wms_west": system_ensure(
            slug="wms-west", kind="wms", adapter="generic_wms", base_url=url + "wms-west", locations=["WH-WEST"]
        ).system,
        "erp": system_ensure(slug="erp", kind="erp", adapter="generic_erp", base_url=url + "erp").system,
        "shop": system_ensure(
            slug="shop", kind="storefront", adapter="generic_storefront", base_url=url + "shop", partner="shop"
        ).system,
    }


def allocated(receivers, site):
    from orders.services.allocation import order_allocate
    from orders.services.lifecycle import order_mark_ready

    order = make_order(partner=receivers["partner"], lines=[(site["sku"], 2)])
    order = order_mark_ready(order=order, actor=ACTOR)
    return order_allocate(order=order, plan=single_site_plan(order, site["east"]), actor=ACTOR)


def deliveries(type):
    return list(Delivery.objects.filter(message__type=type).select_related("system", "message"))


def test_a_release_writes_a_pick_ticket_for_the_wms_of_that_location_only(receivers, site):
    order = allocated(receivers, site)
    lifecycle.order_release(order=order, actor=ACTOR)
    (delivery,) = deliveries(MessageType.PICK_TICKET)
    assert delivery.system == receivers["wms_east"]
    shipment = Shipment.objects.get(order=order)
    ticket = delivery.message.payload
    assert ticket["shipment_id"] == shipment.pk
    assert (ticket["order_id"], ticket["external_id"], ticket["partner"], ticket["location"]) == (
        order.pk,
        order.external_id,
        "shop",
        "WH-EAST",
    )
    assert ticket["lines"] == [{"order_line_id": order.lines.get().pk, "sku": "MUG-1", "quantity": 2, "uom": "each"}]
    assert ticket["ship_to"]["postal_code"] == "62701" and ticket["service_level"] == "standard"
    assert delivery.message.order == order and delivery.status == DeliveryStatus.PENDING


def test_a_release_that_rolls_back_leaves_no_message(receivers, site):
    order = allocated(receivers, site)
    with pytest.raises(RuntimeError), transaction.atomic():
        lifecycle.order_release(order=order, actor=ACTOR)
        raise RuntimeError("after the change")
    assert not OutboxMessage.objects.exists()


def test_a_cancellation_after_release_tells_that_wms(receivers, site):
    order = lifecycle.order_release(order=allocated(receivers, site), actor=ACTOR)
    lifecycle.order_cancel(order=order, reason="customer called", actor=ACTOR)
    (delivery,) = deliveries(MessageType.PICK_TICKET_CANCELLED)
    assert delivery.system == receivers["wms_east"]
    assert delivery.message.payload["reason"] == "customer called"


def test_a_cancellation_before_release_tells_no_warehouse(receivers, site):
    lifecycle.order_cancel(order=allocated(receivers, site), reason="customer called", actor=ACTOR)
    assert not OutboxMessage.objects.exists()


def test_a_shipment_that_left_tells_the_orders_storefront_and_the_erp(receivers, site):
    partner_ensure(code="other", name="Other")
    system_ensure(
        slug="other-shop", kind="storefront", adapter="generic_storefront", base_url="http://127.0.0.1:9/", partner="other"
    )
    order = lifecycle.order_release(order=allocated(receivers, site), actor=ACTOR)
    shipment = Shipment.objects.get(order=order)
    shipments.shipment_pick(shipment=shipment, actor=ACTOR)
    shipments.shipment_ship(shipment=shipment, carrier="UPS", tracking_number="1Z42", actor=ACTOR)
    (to_shop,) = deliveries(MessageType.FULFILLMENT)
    (to_erp,) = deliveries(MessageType.ITEM_FULFILLMENT)
    assert (to_shop.system, to_erp.system) == (receivers["shop"], receivers["erp"])
    assert to_shop.message.payload["tracking_number"] == "1Z42"
    assert to_shop.message.payload["lines"] == [{"order_line_id": order.lines.get().pk, "sku": "MUG-1", "quantity": 2}]


def test_no_receiving_system_no_message(site):
    order = make_order(lines=[(site["sku"], 1)])
    from orders.services.allocation import order_allocate
    from orders.services.lifecycle import order_mark_ready

    order = order_allocate(
        order=order_mark_ready(order=order, actor=ACTOR), plan=single_site_plan(order, site["east"]), actor=ACTOR
    )
    lifecycle.order_release(order=order, actor=ACTOR)
    assert not OutboxMessage.objects.exists()


def test_availability_goes_to_every_storefront(receivers):
    message = availability_changed(sku_code="MUG-1", location_code="WH-EAST", available=8)
    assert message.type == MessageType.AVAILABILITY
    assert [d.system for d in message.deliveries.all()] == [receivers["shop"]]


# --- the relay ---------------------------------------------------------------------------------------


@pytest.fixture
def ticket(receivers, site):
    lifecycle.order_release(order=allocated(receivers, site), actor=ACTOR)
    return deliveries(MessageType.PICK_TICKET)[0]


def test_a_delivery_is_posted_signed_the_standard_webhooks_way_and_kept(ticket, httpserver):
    httpserver.expect_oneshot_request("/wms-east", method="POST").respond_with_data("ok", status=200)
    assert relay.delivery_send(ticket.pk) == "delivered"
    (request, _), *_ = httpserver.log
    headers = {name.lower(): value for name, value in request.headers.items()}
    body = Webhook(ticket.system.secret).verify(request.get_data(), headers)
    assert headers["webhook-id"] == str(ticket.delivery_id)
    assert (body["id"], body["type"]) == (str(ticket.message.event_id), "pick_ticket.created")
    assert body["data"]["shipment_id"] == ticket.message.payload["shipment_id"]
    ticket.refresh_from_db()
    assert (ticket.status, ticket.attempts) == (DeliveryStatus.DELIVERED, 1)
    attempt = ticket.attempt_log.get()
    assert (attempt.number, attempt.status_code, attempt.response_excerpt, attempt.error) == (1, 200, "ok", "")
    assert relay.delivery_send(ticket.pk) is None  # delivered stays delivered


def test_a_failure_is_retried_later_with_the_same_ids(ticket, httpserver, settings):
    settings.OUTBOX_BACKOFF_SECONDS = 60
    httpserver.expect_oneshot_request("/wms-east").respond_with_data("down for maintenance", status=503)
    before = timezone.now()
    assert relay.delivery_send(ticket.pk) == "retry"
    ticket.refresh_from_db()
    assert ticket.status == DeliveryStatus.PENDING and ticket.last_error == "HTTP 503"
    assert before + timedelta(seconds=47) < ticket.next_attempt_at < timezone.now() + timedelta(seconds=73)
    assert relay.delivery_send(ticket.pk) is None  # not due yet
    Delivery.objects.filter(pk=ticket.pk).update(next_attempt_at=timezone.now())
    httpserver.expect_oneshot_request("/wms-east").respond_with_data("ok")
    assert relay.delivery_send(ticket.pk) == "delivered"
    ids = {request.headers["webhook-id"] for request, _ in httpserver.log}
    assert ids == {str(ticket.delivery_id)}
    assert list(ticket.attempt_log.values_list("status_code", flat=True)) == [503, 200]


def test_an_unreachable_or_slow_receiver_is_an_attempt_with_an_error(ticket, settings):
    settings.OUTBOX_TIMEOUT_SECONDS = 0.5

    ticket.system.base_url = "http://127.0.0.1:9/"  # discard port: nothing listens
    ticket.system.save()
    assert relay.delivery_send(ticket.pk) == "retry"
    attempt = ticket.attempt_log.get()
    assert attempt.status_code is None and attempt.error.startswith("ConnectError")


def test_after_the_last_attempt_it_is_dead_one_sync_failure_opens_and_retry_sync_delivers_it(
    ticket, httpserver, settings, ops_admin
):
    settings.OUTBOX_MAX_ATTEMPTS = 3
    httpserver.expect_request("/wms-east").respond_with_data("no", status=500)
    outcomes = []
    for _ in range(3):
        Delivery.objects.filter(pk=ticket.pk).update(next_attempt_at=timezone.now())
        outcomes.append(relay.delivery_send(ticket.pk))
    assert outcomes == ["retry", "retry", "dead"]
    failure = FulfillmentException.objects.get(type__code="sync_failure")
    assert failure.detail["delivery_id"] == str(ticket.delivery_id)
    assert failure.order_id == ticket.message.order_id
    httpserver.clear()
    httpserver.expect_request("/wms-east").respond_with_data("ok")
    exception_retry_sync(exception=failure, actor=Actor.for_user(ops_admin))
    failure.refresh_from_db()
    assert failure.status == ExceptionStatus.RESOLVED
    assert relay.delivery_send(ticket.pk) == "delivered"
    ticket.refresh_from_db()
    assert ticket.attempt_log.count() == 4
    assert ticket.message.order.events.filter(name="delivery_requeued").exists()


def test_retry_sync_is_offered_only_while_the_delivery_is_dead(ticket, ops_admin, settings):
    from exceptions.actions import available_actions
    from integrations.services.relay import _open_sync_failure

    Delivery.objects.filter(pk=ticket.pk).update(status=DeliveryStatus.DEAD, attempts=8)
    ticket.refresh_from_db()
    _open_sync_failure(ticket)
    failure = FulfillmentException.objects.get(type__code="sync_failure")
    assert next(action.code for action in available_actions(failure, ops_admin)) == "retry_sync"
    Delivery.objects.filter(pk=ticket.pk).update(status=DeliveryStatus.DELIVERED)
    assert "retry_sync" not in [action.code for action in available_actions(failure, ops_admin)]


def test_eight_attempts_span_about_four_hours():
    waits = [relay.backoff(n, jitter=1.0) for n in range(1, 8)]
    assert waits == sorted(waits)
    assert timedelta(hours=3.5) < sum(waits, timedelta()) < timedelta(hours=4.5)
    assert relay.backoff(3, jitter=0.8) < relay.backoff(3, jitter=1.0) < relay.backoff(3, jitter=1.2)


def test_the_sweep_finds_due_deliveries_only(ticket):
    assert relay.deliveries_due() == [ticket.pk]
    Delivery.objects.filter(pk=ticket.pk).update(next_attempt_at=timezone.now() + timedelta(minutes=5))
    assert relay.deliveries_due() == []


def test_a_claimed_delivery_is_not_claimed_again_until_its_lease_runs_out(ticket, settings):
    claim = relay._claim(ticket.pk, timezone.now())
    assert claim.attempt == 1
    assert relay._claim(ticket.pk, timezone.now()) is None
    later = timezone.now() + timedelta(seconds=settings.OUTBOX_LEASE_SECONDS + 1)
    assert relay._claim(ticket.pk, later).attempt == 2
    # The first attempt's answer comes in after the second took over: it is logged, and changes nothing.
    assert relay._record(claim, started_at=timezone.now(), status_code=200, excerpt="", error="", duration_ms=5) is None
    ticket.refresh_from_db()
    assert ticket.status == DeliveryStatus.PENDING and ticket.attempt_log.count() == 1


def test_the_envelope_is_json_with_the_stable_event_id(ticket):
    body = json.loads(relay.envelope(ticket))
    assert body["id"] == str(ticket.message.event_id) and body["data"] == ticket.message.payload
