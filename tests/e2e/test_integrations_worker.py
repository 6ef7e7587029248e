"""Webhooks in and the outbox out, end to end: the live server, a real Celery worker on Redis, and real local
HTTP receivers that dedupe by the delivery's id and count what they got."""

import threading
import time
from collections import Counter

import httpx
import pytest
from django.db import transaction
from standardwebhooks.webhooks import Webhook
from werkzeug import Request, Response

from core.actors import Actor
from exceptions.models import ExceptionStatus, FulfillmentException
from fulfillment.celery import app as celery_app
from integrations.models import Delivery, DeliveryStatus, InboundEvent, InboundStatus
from integrations.services.retries import exception_retry_sync
from integrations.services.systems import system_ensure
from integrations.signatures import shopify_signature
from integrations.tasks import outbox_sweep_task
from orders.models import Order, OrderStatus, Shipment
from orders.services import allocation, lifecycle
from tests.factories import LocationFactory, SkuFactory, make_order, single_site_plan, stock
from tests.integrations.conftest import SHOPIFY_SECRET, shopify_sample

from .conftest import wait_until

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)
ACTOR = Actor.job("test")


@pytest.fixture
def worker_env():
    # Seconds, not minutes: the test watches several attempts.
    return {
        "OUTBOX_BACKOFF_SECONDS": "0.3",
        "OUTBOX_MAX_ATTEMPTS": "5",
        "OUTBOX_LEASE_SECONDS": "2",
        "OUTBOX_TIMEOUT_SECONDS": "10",
    }


class Receiver:
    """A WMS endpoint: checks the signature, dedupes on webhook-id, and fails or stalls on command."""

    def __init__(self, secret: str):
        self.webhook = Webhook(secret)
        self.lock = threading.Lock()
        self.requests: list[str] = []
        self.accepted: Counter = Counter()  # webhook-id -> times it was new
        self.bodies: dict[str, dict] = {}
        self.fail_first = 0
        self.always_fail = False
        self.stall_first_for = 0.0
        self.arrived = threading.Event()

    def __call__(self, request: Request) -> Response:
        headers = {name.lower(): value for name, value in request.headers.items()}
        body = self.webhook.verify(request.get_data(), headers)  # raises, and the test fails, if it is not ours
        with self.lock:
            self.requests.append(headers["webhook-id"])
            number = len(self.requests)
        self.arrived.set()
        if number == 1 and self.stall_first_for:
            time.sleep(self.stall_first_for)
            return Response("too late", status=200)
        if self.always_fail or number <= self.fail_first:
            return Response("unavailable", status=503)
        with self.lock:
            if headers["webhook-id"] not in self.bodies:
                self.accepted[headers["webhook-id"]] += 1
                self.bodies[headers["webhook-id"]] = body
        return Response("ok", status=200)


@pytest.fixture
def warehouse(db, httpserver):
    east = LocationFactory(code="WH-EAST")
    sku = SkuFactory(code="MUG-1")
    stock(east, sku, 1000)
    wms = system_ensure(
        slug="wms", kind="wms", adapter="generic_wms", base_url=httpserver.url_for("/pick"), locations=["WH-EAST"]
    )
    receiver = Receiver(wms.secret)
    httpserver.expect_request("/pick", method="POST").respond_with_handler(receiver)
    return {"east": east, "sku": sku, "receiver": receiver}


def allocated_order(site) -> Order:
    order = lifecycle.order_mark_ready(order=make_order(lines=[(site["sku"], 1)]), actor=ACTOR)
    return allocation.order_allocate(order=order, plan=single_site_plan(order, site["east"]), actor=ACTOR)


def the_delivery() -> Delivery:
    return Delivery.objects.select_related("message").get()


def test_the_real_shopify_sample_signed_becomes_one_allocated_order_however_often_it_is_sent(
    live_server, celery_worker, shop, sample_catalogue
):
    body = shopify_sample()
    headers = {
        "Content-Type": "application/json",
        "X-Shopify-Topic": "orders/create",
        "X-Shopify-Webhook-Id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
        "X-Shopify-Hmac-Sha256": shopify_signature(SHOPIFY_SECRET, body),
    }
    url = f"{live_server.url}/integrations/shop/webhooks/"
    assert httpx.post(url, content=body, headers=headers).status_code == 202
    order = wait_until(lambda: Order.objects.filter(external_id="820982911946154508", status=OrderStatus.ALLOCATED).first())
    assert [httpx.post(url, content=body, headers=headers).status_code for _ in range(3)] == [200, 200, 200]
    time.sleep(1)  # give a wrongly queued second apply the time to show
    assert Order.objects.count() == 1 and order.is_test
    assert InboundEvent.objects.get().status == InboundStatus.APPLIED
    assert celery_worker.succeeded("inbound_apply_task")


def test_a_release_reaches_the_wms_signed_with_its_secret(celery_worker, warehouse):
    order = lifecycle.order_release(order=allocated_order(warehouse), actor=ACTOR)
    receiver = warehouse["receiver"]
    wait_until(lambda: the_delivery().status == DeliveryStatus.DELIVERED)
    (ticket,) = receiver.bodies.values()
    assert ticket["type"] == "pick_ticket.created"
    assert ticket["data"]["shipment_id"] == Shipment.objects.get(order=order).pk
    assert list(receiver.accepted.values()) == [1]


def test_a_receiver_down_for_three_attempts_gets_the_message_once_in_the_end(celery_worker, warehouse, settings):
    receiver = warehouse["receiver"]
    receiver.fail_first = 3
    lifecycle.order_release(order=allocated_order(warehouse), actor=ACTOR)
    wait_until(lambda: the_delivery().status == DeliveryStatus.DELIVERED)
    delivery = the_delivery()
    assert receiver.requests == [str(delivery.delivery_id)] * 4
    assert list(receiver.accepted.values()) == [1]
    assert list(delivery.attempt_log.values_list("status_code", flat=True)) == [503, 503, 503, 200]


def test_a_receiver_that_always_fails_makes_the_delivery_dead_and_retry_sync_delivers_it(celery_worker, warehouse, ops_admin):
    receiver = warehouse["receiver"]
    receiver.always_fail = True
    lifecycle.order_release(order=allocated_order(warehouse), actor=ACTOR)
    wait_until(lambda: the_delivery().status == DeliveryStatus.DEAD)
    failure = FulfillmentException.objects.get(type__code="sync_failure", status=ExceptionStatus.OPEN)
    assert failure.detail["delivery_id"] == str(the_delivery().delivery_id)
    assert not receiver.accepted
    receiver.always_fail = False
    exception_retry_sync(exception=failure, actor=Actor.for_user(ops_admin))
    wait_until(lambda: the_delivery().status == DeliveryStatus.DELIVERED)
    assert list(receiver.accepted.values()) == [1]
    assert FulfillmentException.objects.get(pk=failure.pk).status == ExceptionStatus.RESOLVED


def test_a_worker_killed_mid_delivery_delivers_after_the_restart(celery_worker, warehouse):
    receiver = warehouse["receiver"]
    receiver.stall_first_for = 4.0
    lifecycle.order_release(order=allocated_order(warehouse), actor=ACTOR)
    assert receiver.arrived.wait(30), "the worker never posted"
    celery_worker.kill()
    assert the_delivery().attempt_log.count() == 0  # it died before it could record the attempt
    celery_worker.start()
    time.sleep(2.5)  # the claim's lease (OUTBOX_LEASE_SECONDS=2) runs out
    outbox_sweep_task.apply_async(queue=celery_worker.queue)
    wait_until(lambda: the_delivery().status == DeliveryStatus.DELIVERED)
    delivery = the_delivery()
    assert set(receiver.requests) == {str(delivery.delivery_id)}
    assert list(receiver.accepted.values()) == [1]
    assert delivery.attempts == 2


def test_of_200_releases_exactly_the_committed_ones_are_delivered(celery_worker, warehouse):
    orders = [allocated_order(warehouse) for _ in range(200)]
    committed = set()
    for number, order in enumerate(orders):
        try:
            with transaction.atomic():
                lifecycle.order_release(order=order, actor=ACTOR)
                if number % 10 == 0:
                    raise RuntimeError("the transaction fails after the change")
            committed.add(order.pk)
        except RuntimeError:
            pass
    assert len(committed) == 180
    receiver = warehouse["receiver"]
    wait_until(lambda: len(receiver.bodies) >= 180, timeout=120)
    time.sleep(1)
    assert {body["data"]["order_id"] for body in receiver.bodies.values()} == committed
    assert set(receiver.accepted.values()) == {1}
    assert Delivery.objects.filter(status=DeliveryStatus.DELIVERED).count() == 180
    assert celery_app.conf.task_default_queue == celery_worker.queue
