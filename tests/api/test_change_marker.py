"""The order's change marker (changed_at, kept by triggers) and the list that reads it, GET /api/v1/orders/?updated_after=.

The stamp is taken once per transaction, so these tests commit each change (transaction=True) as the portal does.
"""

import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from exceptions.models import FulfillmentException
from exceptions.services import exception_comment, exception_resolve, sla_sweep
from orders.models import Order, OrderStatus, Shipment
from orders.services.lifecycle import order_hold, order_line_cancel
from orders.services.shipments import shipment_pick
from tests.factories import TEST_ACTOR, make_order, order_in_state, raise_on_order

from .conftest import order_body

ORDERS = "/api/v1/orders/"
committed = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def stamp(order: Order):
    return Order.objects.values_list("changed_at", flat=True).get(pk=order.pk)


def hold(order: Order) -> None:
    order_hold(order=order, reason="customer called", actor=TEST_ACTOR)


def cancel_a_line(order: Order) -> None:
    order_line_cancel(order=order, line=order.lines.order_by("pk").first(), reason="out of range", actor=TEST_ACTOR)


def pick_a_shipment(order: Order) -> None:
    shipment_pick(shipment=Shipment.objects.filter(order=order).order_by("pk").first(), actor=TEST_ACTOR)


def open_an_exception(order: Order) -> None:
    with transaction.atomic():
        raise_on_order("damaged_item", order=Order.objects.select_for_update().get(pk=order.pk))


def comment_on_its_exception(order: Order) -> None:
    exception_comment(exception=_its_exception(order), note="called the carrier", actor=TEST_ACTOR)


def resolve_its_exception(order: Order) -> None:
    exception_resolve(exception=_its_exception(order), note="replaced", actor=TEST_ACTOR)


def warn_of_its_deadline(order: Order) -> None:
    now = timezone.now()
    due = {"warn_at": now - timedelta(minutes=1), "due_at": now + timedelta(hours=1)}
    FulfillmentException.objects.filter(pk=_its_exception(order).pk).update(**due)
    before = stamp(order)  # after the setup's own change: what follows is the sweep's
    assert sla_sweep(now=timezone.now())["warned"] == 1
    assert stamp(order) > before


def _its_exception(order: Order) -> FulfillmentException:
    return FulfillmentException.objects.filter(order=order).order_by("pk").first()


# Each change, and the state the order is in for it (an exception opened first where the change needs one).
CHANGES = {
    "the order row (a hold)": (OrderStatus.READY, hold),
    "a line (cancelled)": (OrderStatus.READY, cancel_a_line),
    "a shipment (picked)": (OrderStatus.RELEASED, pick_a_shipment),
    "an exception opened": (OrderStatus.RELEASED, open_an_exception),
    "an exception commented": (OrderStatus.RELEASED, comment_on_its_exception),
    "an exception resolved": (OrderStatus.RELEASED, resolve_its_exception),
    "an exception's deadline warned by the sweep": (OrderStatus.RELEASED, warn_of_its_deadline),
}


@committed
@pytest.mark.parametrize("change", CHANGES)
def test_every_kind_of_change_stamps_its_order_and_no_other(change):
    state, make_the_change = CHANGES[change]
    order, bystander = order_in_state(state), make_order()
    if make_the_change not in (hold, cancel_a_line, pick_a_shipment, open_an_exception):
        open_an_exception(order)
    before, bystander_before = stamp(order), stamp(bystander)

    make_the_change(order)

    assert stamp(order) > before
    assert stamp(bystander) == bystander_before


@committed
def test_a_transaction_stamps_its_order_once_at_its_first_change():
    order = order_in_state(OrderStatus.READY)
    started = timezone.now()
    with transaction.atomic():
        hold(order)
        first = stamp(order)
        open_an_exception(order)  # a second change in the same transaction
        assert stamp(order) == first
    assert first >= started


@committed
def test_the_sweep_leaves_an_exception_whose_order_another_transaction_holds_for_its_next_run():
    order = order_in_state(OrderStatus.RELEASED)
    open_an_exception(order)
    now = timezone.now()
    FulfillmentException.objects.filter(order=order).update(warn_at=now - timedelta(minutes=1), due_at=now + timedelta(hours=1))
    locked, release, done = threading.Event(), threading.Event(), threading.Event()

    def hold_the_order() -> None:
        try:
            with transaction.atomic():
                Order.objects.select_for_update().get(pk=order.pk)
                locked.set()
                release.wait(10)
        finally:
            connection.close()
            done.set()

    threading.Thread(target=hold_the_order).start()
    assert locked.wait(10)
    try:
        # Not waiting on the order while holding its exception (every other path takes the order first).
        assert sla_sweep(now=timezone.now())["warned"] == 0
    finally:
        release.set()
        assert done.wait(10)
    assert sla_sweep(now=timezone.now())["warned"] == 1


@committed
def test_updated_after_lists_exactly_the_orders_changed_since_in_the_same_queries_however_many(acme, catalogue):
    counted = []
    for many in (2, 6):
        for number in range(many):
            body = order_body(external_id=f"W{many}-{number}", customer={"name": "Ada", "email": f"w{many}-{number}@example.com"})
            assert acme.post(ORDERS, body, format="json").status_code == 201
        moment = timezone.now()
        changed = list(Order.objects.filter(external_id__startswith=f"W{many}-").order_by("pk")[: many // 2])
        for order in changed:
            hold(order)
        with CaptureQueriesContext(connection) as captured:
            answer = acme.get(ORDERS, {"updated_after": moment.isoformat()}).json()
        counted.append(len(captured))
        assert sorted(row["id"] for row in answer["results"]) == [order.pk for order in changed]
        assert answer["count"] == many // 2
    assert counted[0] == counted[1]
