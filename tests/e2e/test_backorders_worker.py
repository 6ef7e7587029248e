"""A receipt commits, and a real Celery worker allocates the orders that were waiting for it."""

import pytest

from exceptions.models import ExceptionStatus, FulfillmentException
from inventory.services import stock_receive
from orders.models import Order, OrderStatus, RoutingRule
from orders.services.allocation import order_route
from orders.services.lifecycle import order_mark_ready
from tests.factories import TEST_ACTOR, LocationFactory, SkuFactory, make_order

from .conftest import wait_until

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_a_receipt_lets_the_worker_allocate_the_backorders_in_turn(celery_worker):
    east, mug = LocationFactory(code="WH-EAST"), SkuFactory(code="MUG-1")
    rule = RoutingRule.objects.create(name="East", priority=1)
    rule.ranked_locations.create(location=east, rank=1)
    waiting = []
    for _ in range(3):
        order = order_mark_ready(order=make_order(lines=[(mug, 4)]), actor=TEST_ACTOR)
        order_route(order=order, actor=TEST_ACTOR)
        waiting.append(order.pk)
    assert set(Order.objects.filter(pk__in=waiting).values_list("status", flat=True)) == {OrderStatus.BACKORDERED}

    stock_receive(location_id=east.pk, sku_id=mug.pk, quantity=8, actor=TEST_ACTOR, reference="PO-1")

    wait_until(lambda: celery_worker.succeeded("backorders_refill_task"))
    statuses = [Order.objects.get(pk=pk).status for pk in waiting]
    assert statuses == [OrderStatus.ALLOCATED, OrderStatus.ALLOCATED, OrderStatus.BACKORDERED]
    open_ones = FulfillmentException.objects.filter(type__code="out_of_stock", status=ExceptionStatus.OPEN)
    assert list(open_ones.values_list("order_id", flat=True)) == [waiting[2]]
