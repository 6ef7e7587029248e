"""Stock received: the orders backordered on the SKU are allocated again, most urgent and then oldest first,
and their out_of_stock exceptions close with actor system."""

import pytest

from exceptions.models import ExceptionEvent, ExceptionStatus, FulfillmentException
from fulfillment.celery import app as celery_app
from inventory.selectors import stock_ledger_mismatches
from inventory.services import stock_adjust, stock_receive
from orders.models import OrderStatus, RoutingRule
from orders.services.allocation import order_route
from orders.services.backorders import backorders_refill
from orders.services.counts import stock_count_accept
from orders.services.lifecycle import order_mark_ready
from tests.factories import TEST_ACTOR, LocationFactory, SkuFactory, make_order, stock

pytestmark = pytest.mark.django_db


@pytest.fixture
def site(db):
    east, mug = LocationFactory(code="WH-EAST"), SkuFactory(code="MUG-1")
    rule = RoutingRule.objects.create(name="East", priority=1)
    rule.ranked_locations.create(location=east, rank=1)
    return {"east": east, "mug": mug}


def backordered(site, quantity, *, priority="P3"):
    order = order_mark_ready(order=make_order(lines=[(site["mug"], quantity)], priority=priority), actor=TEST_ACTOR)
    order_route(order=order, actor=TEST_ACTOR)
    order.refresh_from_db()
    assert order.status == OrderStatus.BACKORDERED
    return order


def out_of_stock(order):
    return FulfillmentException.objects.get(order=order, type__code="out_of_stock")


@pytest.fixture
def three(site):
    """An old P3, a newer P3, and the newest a P1: ten units each, none in stock."""
    return backordered(site, 10), backordered(site, 10), backordered(site, 10, priority="P1")


def statuses(*orders):
    for order in orders:
        order.refresh_from_db()
    return [order.status for order in orders]


def test_a_receipt_too_small_for_all_fills_the_most_urgent_then_the_oldest(site, three):
    old, newer, urgent = three
    stock(site["east"], site["mug"], 20)

    refills = backorders_refill(sku_id=site["mug"].pk)

    assert [r.order_id for r in refills] == [urgent.pk, old.pk, newer.pk]
    assert [r.outcome for r in refills] == ["single", "single", "backorder"]
    assert statuses(old, newer, urgent) == [OrderStatus.ALLOCATED, OrderStatus.BACKORDERED, OrderStatus.ALLOCATED]
    for order in (urgent, old):
        exception = out_of_stock(order)
        assert (exception.status, exception.resolution_action) == (ExceptionStatus.RESOLVED, "stock_received")
        assert ExceptionEvent.objects.filter(exception=exception).latest("id").actor == "system"
    assert out_of_stock(newer).status == ExceptionStatus.OPEN
    assert out_of_stock(newer).occurrences == 1  # looked at, not routed again: nothing written
    assert stock_ledger_mismatches() == []


def test_a_receipt_large_enough_fills_them_all(site, three):
    stock(site["east"], site["mug"], 30)
    backorders_refill(sku_id=site["mug"].pk)
    assert statuses(*three) == [OrderStatus.ALLOCATED] * 3
    assert not FulfillmentException.objects.filter(type__code="out_of_stock", status__in=["open", "in_progress"]).exists()


def test_a_second_run_finds_nothing_more_to_do(site, three):
    stock(site["east"], site["mug"], 30)
    backorders_refill(sku_id=site["mug"].pk)
    assert backorders_refill(sku_id=site["mug"].pk) == []


@pytest.fixture
def tasks_run_here():
    """The task a commit sends runs in this process, at once, as the worker would run it."""
    before = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = before


def test_a_receipt_refills_the_backorders_once_it_commits(site, three, tasks_run_here, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        stock_receive(location_id=site["east"].pk, sku_id=site["mug"].pk, quantity=20, actor=TEST_ACTOR)
    assert len(callbacks) == 1
    assert statuses(*three) == [OrderStatus.ALLOCATED, OrderStatus.BACKORDERED, OrderStatus.ALLOCATED]


def test_a_positive_adjustment_refills_and_a_negative_one_does_not_try(
    site, three, tasks_run_here, django_capture_on_commit_callbacks
):
    stock(site["east"], site["mug"], 5)  # not enough for anyone
    with django_capture_on_commit_callbacks(execute=True) as raised:
        stock_adjust(location_id=site["east"].pk, sku_id=site["mug"].pk, delta=5, reason="found", actor=TEST_ACTOR)
    assert len(raised) == 1
    assert statuses(*three)[2] == OrderStatus.ALLOCATED
    stock(site["east"], site["mug"], 3)
    with django_capture_on_commit_callbacks(execute=True) as lowered:
        stock_adjust(location_id=site["east"].pk, sku_id=site["mug"].pk, delta=-1, reason="broken", actor=TEST_ACTOR)
    assert lowered == []


def test_an_accepted_count_that_raises_stock_refills_too(site, three, tasks_run_here, django_capture_on_commit_callbacks):
    stock(site["east"], site["mug"], 1)
    with django_capture_on_commit_callbacks(execute=True):
        stock_count_accept(location=site["east"], sku=site["mug"], counted=11, actor=TEST_ACTOR)
    assert statuses(*three)[2] == OrderStatus.ALLOCATED
