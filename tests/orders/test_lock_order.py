"""Two transactions touching the same rows take their locks in one order, so PostgreSQL never has to
break a deadlock by failing one of them (which a partner would see as a 500).

Each test slows the step between two locks, so that without a common order both transactions hold
one row and wait for the other's: the interleaving that happens now and then under real load.
"""

import time

import pytest

from exceptions.models import FulfillmentException
from inventory.models import StockLevel
from inventory.services import InsufficientStock, stock_reserve
from orders.models import Order, OrderStatus, RoutingDecision, Shipment
from orders.services import allocation as allocation_services
from orders.services import intake as intake_services
from orders.services import lifecycle as lifecycle_services
from orders.services import reservations as reservations_services
from orders.services import shipments as shipments_services
from tests.factories import TEST_ACTOR, LocationFactory, SkuFactory, make_order, single_site_plan, stock
from tests.threads import run_together

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)
STEP = 0.3


def slowed(monkeypatch, module, name: str) -> None:
    """Pause after each call of module.name, while its transaction holds what the call locked."""
    original = getattr(module, name)

    def slow(*args, **kwargs):
        result = original(*args, **kwargs)
        time.sleep(STEP)
        return result

    monkeypatch.setattr(module, name, slow)


def released(location, lines) -> Order:
    order = lifecycle_services.order_mark_ready(order=make_order(lines=lines), actor=TEST_ACTOR)
    order = allocation_services.order_allocate(order=order, plan=single_site_plan(order, location), actor=TEST_ACTOR)
    return lifecycle_services.order_release(order=order, actor=TEST_ACTOR)


@pytest.fixture
def site_with_two_skus():
    site, first, second = LocationFactory(), SkuFactory(), SkuFactory()
    stock(site, first, 50)
    stock(site, second, 50)
    return site, first, second


def test_two_picks_of_the_same_skus_listed_in_opposite_order_both_go_through(monkeypatch, site_with_two_skus):
    site, first, second = site_with_two_skus
    shipments = [
        Shipment.objects.get(order=released(site, [(first, 1), (second, 1)])),
        Shipment.objects.get(order=released(site, [(second, 1), (first, 1)])),
    ]
    slowed(monkeypatch, shipments_services, "stock_pick")

    failures = run_together(2, lambda i: shipments_services.shipment_pick(shipment=shipments[i], actor=TEST_ACTOR))

    assert failures == []
    assert set(StockLevel.objects.values_list("picked", flat=True)) == {2}


def test_a_cancel_and_a_pick_of_another_order_with_opposite_lines_both_go_through(monkeypatch, site_with_two_skus):
    site, first, second = site_with_two_skus
    cancelled = released(site, [(first, 1), (second, 1)])
    picked = Shipment.objects.get(order=released(site, [(second, 1), (first, 1)]))
    slowed(monkeypatch, reservations_services, "stock_release")
    slowed(monkeypatch, shipments_services, "stock_pick")

    failures = run_together(
        2,
        lambda i: (
            lifecycle_services.order_cancel(order=cancelled, reason="customer asked", actor=TEST_ACTOR)
            if i == 0
            else shipments_services.shipment_pick(shipment=picked, actor=TEST_ACTOR)
        ),
    )

    assert failures == []
    assert Order.objects.get(pk=cancelled.pk).status == OrderStatus.CANCELLED
    assert set(StockLevel.objects.values_list("reserved", "picked")) == {(1, 1)}


def test_a_cancel_does_not_lock_the_site_and_sku_rows_that_another_orders_allocation_points_at(monkeypatch, site_with_two_skus):
    # The allocation shares no stock row with the cancel; it only inserts rows whose foreign keys
    # PostgreSQL checks at commit, against the site and the SKU.
    site, first, second = site_with_two_skus
    cancelled = released(site, [(first, 1), (second, 1)])
    allocated = lifecycle_services.order_mark_ready(order=make_order(lines=[(second, 1)]), actor=TEST_ACTOR)
    slowed(monkeypatch, reservations_services, "stock_release")

    def work(index: int) -> None:
        if index == 0:
            lifecycle_services.order_cancel(order=cancelled, reason="customer asked", actor=TEST_ACTOR)
        else:
            time.sleep(STEP / 2)
            allocation_services.order_allocate(order=allocated, plan=single_site_plan(allocated, site), actor=TEST_ACTOR)

    assert run_together(2, work) == []
    assert Order.objects.get(pk=allocated.pk).status == OrderStatus.ALLOCATED


def test_two_orders_with_the_same_two_problems_in_opposite_order_are_both_held(monkeypatch):
    from tests.api.conftest import order_body, partner_client

    site = LocationFactory()
    stock(site, SkuFactory(code="SKU-1", unit_price="12.50"), 100)
    partner = partner_client("acme").partner
    unknown, mispriced = (
        {"sku": "NOPE", "quantity": 1, "uom": "each", "unit_price": "1"},
        {"sku": "SKU-1", "quantity": 1, "uom": "each", "unit_price": "99.00"},
    )
    bodies = [
        order_body(
            external_id="A", customer={"name": "A", "email": "a@example.com", "tier": "standard"}, lines=[unknown, mispriced]
        ),
        order_body(
            external_id="B", customer={"name": "B", "email": "b@example.com", "tier": "standard"}, lines=[mispriced, unknown]
        ),
    ]
    slowed(monkeypatch, intake_services, "exception_raise")

    def work(index: int) -> None:
        from django.db import transaction

        from orders.serializers import OrderInputSerializer

        serializer = OrderInputSerializer(data=bodies[index])
        serializer.is_valid(raise_exception=True)
        with transaction.atomic():
            intake_services.order_intake(
                partner=partner, data=serializer.validated_data, body_fingerprint=str(index), actor=TEST_ACTOR
            )

    assert run_together(2, work) == []
    assert sorted(Order.objects.values_list("external_id", "status")) == [("A", "on_hold"), ("B", "on_hold")]
    assert FulfillmentException.objects.count() == 4


def test_reallocating_to_a_site_whose_stock_just_went_elsewhere_is_refused_and_changes_nothing(monkeypatch):
    first, chosen, sku = LocationFactory(), LocationFactory(), SkuFactory()
    stock(first, sku, 5)
    stock(chosen, sku, 5)
    order = lifecycle_services.order_backorder(
        order=lifecycle_services.order_mark_ready(order=make_order(lines=[(sku, 2)]), actor=TEST_ACTOR), actor=TEST_ACTOR
    )
    route = allocation_services.order_route_locked

    def another_order_reserves_first(order, **kwargs):
        # Commits on its own connection between the look at the chosen site's stock and the reservation.
        assert run_together(1, lambda _: stock_reserve(location_id=chosen.pk, sku_id=sku.pk, quantity=4, actor=TEST_ACTOR)) == []
        return route(order, **kwargs)

    monkeypatch.setattr(allocation_services, "order_route_locked", another_order_reserves_first)

    with pytest.raises(InsufficientStock, match="went to another order"):
        allocation_services.order_reallocate_to(order=order, location=chosen, actor=TEST_ACTOR)

    assert Order.objects.get(pk=order.pk).status == OrderStatus.BACKORDERED
    assert not RoutingDecision.objects.filter(order=order).exists()
    assert not FulfillmentException.objects.filter(order=order).exists()
