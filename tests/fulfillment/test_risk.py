"""Orders at risk on a hand-made history: the score and its reason in words, the minimum support, the window,
who is a candidate, and a query count that does not grow with the history."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from exceptions.models import ExceptionType
from fulfillment import risk
from orders.models import Order, OrderStatus, Shipment
from orders.services import allocation as allocation_services
from orders.services import lifecycle as lifecycle_services
from orders.services import shipments as shipment_services
from tests.factories import (
    TEST_ACTOR,
    LocationFactory,
    SkuFactory,
    make_order,
    order_in_state,
    raise_on_order,
    single_site_plan,
    stock,
)

pytestmark = pytest.mark.django_db


def allocated_at(location, **order_fields) -> Order:
    """An order of its own SKU and partner, allocated at `location`: only its location (and what every test
    order shares: region, service level, tier) can tie it to other orders."""
    sku = SkuFactory()
    stock(location, sku, 5)
    order = lifecycle_services.order_mark_ready(order=make_order(lines=[(sku, 1)], **order_fields), actor=TEST_ACTOR)
    return allocation_services.order_allocate(order=order, plan=single_site_plan(order, location), actor=TEST_ACTOR)


def released_at(location) -> Order:
    return lifecycle_services.order_release(order=allocated_at(location), actor=TEST_ACTOR)


def shipped_from(location, *, failed_with: str = "") -> Order:
    order = released_at(location)
    if failed_with:
        raise_on_order(failed_with, order=order)
    for shipment in Shipment.objects.filter(order=order):
        shipment_services.shipment_pick(shipment=shipment, actor=TEST_ACTOR)
        shipment_services.shipment_ship(shipment=shipment, carrier="UPS", tracking_number="1Z", actor=TEST_ACTOR)
    return Order.objects.get(pk=order.pk)


def unrelated(count: int) -> None:
    """Orders with no location and no exception: they water down what every test order shares."""
    for _ in range(count):
        make_order()


@pytest.fixture
def west(db):
    return LocationFactory(code="WH-WEST")


def test_the_score_is_the_rate_of_the_orders_sharing_its_location(west):
    past = [shipped_from(west, failed_with="label_failure" if n < 4 else "") for n in range(10)]
    long_ago = [shipped_from(west, failed_with="label_failure") for _ in range(5)]
    Order.objects.filter(pk__in=[o.pk for o in long_ago]).update(placed_at=timezone.now() - dt.timedelta(days=31))
    unrelated(10)
    candidate = allocated_at(west)

    (at_risk,) = risk.orders_at_risk()

    assert at_risk.order == candidate
    assert (at_risk.kind, at_risk.value, at_risk.exception_type.code) == ("location", "WH-WEST", "label_failure")
    assert (at_risk.failed, at_risk.orders, at_risk.percent) == (4, 10, 40)
    assert at_risk.score == pytest.approx(0.4)
    assert at_risk.reason == "orders from WH-WEST had a label failure 4 times in 10 in the last 30 days"
    assert all(o.status == OrderStatus.SHIPPED for o in past)


def test_a_feature_needs_five_other_orders_before_it_flags_anything(west):
    for _ in range(4):
        shipped_from(west, failed_with="label_failure")
    candidate = allocated_at(west)

    assert risk.orders_at_risk() == []

    shipped_from(west)
    (at_risk,) = risk.orders_at_risk()
    assert at_risk.order == candidate
    assert at_risk.reason == "orders from WH-WEST had a label failure 4 times in 5 in the last 30 days"


def test_the_order_scored_is_left_out_of_its_own_figures(west):
    for n in range(5):
        shipped_from(west, failed_with="label_failure" if n < 2 else "")
    unrelated(10)
    clean = allocated_at(west)
    failed = allocated_at(west)
    raise_on_order("label_failure", order=failed)

    reasons = {item.order.pk: item.reason for item in risk.orders_at_risk()}

    # Each is judged by the five shipped orders and the other candidate.
    assert reasons == {
        clean.pk: "orders from WH-WEST had a label failure 3 times in 6 in the last 30 days",
        failed.pk: "orders from WH-WEST had a label failure 2 times in 6 in the last 30 days",
    }


def test_only_allocated_and_released_orders_are_candidates(west):
    for n in range(6):
        shipped_from(west, failed_with="short_pick" if n < 3 else "")
    unrelated(10)
    allocated, released = allocated_at(west), released_at(west)
    on_hold = lifecycle_services.order_hold(order=allocated_at(west), reason="test", actor=TEST_ACTOR)

    listed = [item.order.pk for item in risk.orders_at_risk()]

    assert sorted(listed) == sorted([allocated.pk, released.pk])
    assert on_hold.pk not in listed


def test_the_highest_rate_wins_and_a_pair_reads_region_and_location(west):
    east = LocationFactory(code="WH-EAST")
    for n in range(10):
        shipped_from(west, failed_with="label_failure" if n < 3 else "")
    for n in range(8):
        shipped_from(east, failed_with="damaged_item" if n < 4 else "")
    unrelated(20)
    at_west, at_east = allocated_at(west), allocated_at(east)

    ranked = risk.orders_at_risk()

    assert [item.order for item in ranked] == [at_east, at_west]
    assert ranked[0].reason == "orders from WH-EAST had a damaged item 4 times in 8 in the last 30 days"
    assert ranked[1].reason == "orders from WH-WEST had a label failure 3 times in 10 in the last 30 days"
    assert risk.feature_phrase("region_location", "US 87|WH-WEST") == "orders to US 87xxx from WH-WEST"
    assert risk.feature_phrase("region", "US 87") == "orders to US 87xxx"


def test_type_names_read_as_what_an_order_had():
    def phrase(code):
        return risk.type_phrase(ExceptionType.objects.get(code=code))

    assert phrase("label_failure") == "a label failure"
    assert phrase("unknown_sku") == "an unknown SKU"
    assert phrase("invalid_address") == "an invalid address"
    assert phrase("out_of_stock") == "a stock-out"


def test_the_query_count_does_not_grow_with_the_history(west, django_assert_num_queries):
    for n in range(5):
        shipped_from(west, failed_with="label_failure" if n < 2 else "")
    allocated_at(west)
    with django_assert_num_queries(3):
        small = risk.orders_at_risk()
    east = LocationFactory(code="WH-EAST")
    for n in range(12):
        shipped_from(east, failed_with="damaged_item" if n % 3 else "label_failure")
    for _ in range(3):
        allocated_at(east)
        allocated_at(west)
    with django_assert_num_queries(3):
        larger = risk.orders_at_risk()
    assert (len(small), len(larger)) == (1, 7)


def test_the_page_shows_score_reason_and_a_hold_form(client, coordinator, west):
    for n in range(10):
        shipped_from(west, failed_with="label_failure" if n < 4 else "")
    unrelated(10)
    candidate = allocated_at(west)
    client.force_login(coordinator)

    response = client.get(reverse("orders-at-risk"))

    assert response.status_code == 200
    page = response.content.decode()
    assert f'href="/orders/{candidate.pk}/"' in page
    assert "40 %" in page
    assert "Orders from WH-WEST had a label failure 4 times in 10 in the last 30 days" in page
    assert f'action="/orders/{candidate.pk}/do/hold/"' in page

    held = client.post(reverse("order-action", args=[candidate.pk, "hold"]), {"reason": "At risk: label failures"})

    assert held.status_code == 302
    candidate.refresh_from_db()
    assert (candidate.status, candidate.hold_reason) == (OrderStatus.ON_HOLD, "At risk: label failures")
    assert candidate.pk not in [item.order.pk for item in risk.orders_at_risk()]


def test_a_released_order_is_listed_without_a_hold_it_could_not_take(client, coordinator, west):
    for n in range(5):
        shipped_from(west, failed_with="label_failure" if n < 2 else "")
    unrelated(10)
    released = released_at(west)
    client.force_login(coordinator)

    page = client.get(reverse("orders-at-risk")).content.decode()

    assert f'href="/orders/{released.pk}/"' in page
    assert f'action="/orders/{released.pk}/do/hold/"' not in page
    assert "too late to hold" in page


def test_an_anonymous_visitor_is_sent_to_sign_in(client):
    order_in_state(OrderStatus.ALLOCATED)

    response = client.get(reverse("orders-at-risk"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
