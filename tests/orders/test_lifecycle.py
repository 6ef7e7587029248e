"""Every legal order and shipment transition works and is audited; every illegal one raises and changes nothing."""

import pytest

from core.errors import Conflict
from core.fsm import IllegalTransition
from inventory.models import StockLevel, StockMovement
from inventory.selectors import stock_ledger_mismatches
from orders.models import Order, OrderEvent, OrderLine, Shipment
from orders.models import OrderStatus as S
from orders.models import ShipmentStatus as SS
from orders.services import allocation as allocation_services
from orders.services import lifecycle as lifecycle_services
from orders.services import reservations as reservations_services
from orders.services import shipments as shipments_services
from tests.factories import (
    TEST_ACTOR,
    LocationFactory,
    SkuFactory,
    make_order,
    order_in_state,
    raise_on_order,
    single_site_plan,
    split_plan,
    stock,
)
from tests.threads import run_together

pytestmark = pytest.mark.django_db


def _first_location(order):
    return StockLevel.objects.filter(sku=order.lines.first().sku).order_by("location__code").first().location


def _locations(order):
    return [lvl.location for lvl in StockLevel.objects.filter(sku=order.lines.first().sku).order_by("location__code")]


# What each order-level service does, called the way a page, the API or a job would.
ORDER_OPERATIONS = {
    "mark_ready": lambda o: lifecycle_services.order_mark_ready(order=o, actor=TEST_ACTOR),
    "hold": lambda o: lifecycle_services.order_hold(order=o, reason="check payment", actor=TEST_ACTOR),
    "release_hold": lambda o: lifecycle_services.order_release_hold(order=o, actor=TEST_ACTOR),
    "allocate": lambda o: allocation_services.order_allocate(
        order=o, plan=single_site_plan(o, _first_location(o)), actor=TEST_ACTOR
    ),
    "propose_split": lambda o: allocation_services.order_allocate(
        order=o, plan=split_plan(o, _locations(o)), actor=TEST_ACTOR, requires_approval=True
    ),
    "approve_split": lambda o: allocation_services.order_approve_split(order=o, actor=TEST_ACTOR).order,
    "reject_split": lambda o: allocation_services.order_reject_split(order=o, actor=TEST_ACTOR),
    "backorder": lambda o: lifecycle_services.order_backorder(order=o, actor=TEST_ACTOR),
    "retry_allocation": lambda o: lifecycle_services.order_retry_allocation(order=o, actor=TEST_ACTOR),
    "release": lambda o: lifecycle_services.order_release(order=o, actor=TEST_ACTOR),
    "cancel": lambda o: lifecycle_services.order_cancel(order=o, reason="customer asked", actor=TEST_ACTOR),
}

# The order lifecycle of DESIGN §4, written out independently of the model: (operation, from) -> to.
LEGAL = {
    ("mark_ready", S.RECEIVED): S.READY,
    **{("hold", src): S.ON_HOLD for src in (S.RECEIVED, S.READY, S.ALLOCATED, S.BACKORDERED, S.AWAITING_APPROVAL)},
    ("release_hold", S.ON_HOLD): S.READY,
    ("allocate", S.READY): S.ALLOCATED,
    ("propose_split", S.READY): S.AWAITING_APPROVAL,
    ("approve_split", S.AWAITING_APPROVAL): S.ALLOCATED,
    ("reject_split", S.AWAITING_APPROVAL): S.BACKORDERED,
    ("backorder", S.READY): S.BACKORDERED,
    ("retry_allocation", S.BACKORDERED): S.READY,
    ("release", S.ALLOCATED): S.RELEASED,
    **{
        ("cancel", src): S.CANCELLED
        for src in (S.RECEIVED, S.READY, S.ON_HOLD, S.ALLOCATED, S.AWAITING_APPROVAL, S.BACKORDERED, S.RELEASED)
    },
}


def snapshot(order: Order) -> tuple:
    return (
        Order.objects.get(pk=order.pk).status,
        OrderEvent.objects.filter(order=order).count(),
        StockMovement.objects.count(),
        list(StockLevel.objects.order_by("pk").values_list("on_hand", "reserved", "picked")),
        list(Shipment.objects.filter(order=order).order_by("pk").values_list("status", flat=True)),
        list(OrderLine.objects.filter(order=order).values_list("quantity_allocated", "quantity_shipped", "quantity_cancelled")),
    )


@pytest.mark.parametrize("state", S.values)
@pytest.mark.parametrize("operation", ORDER_OPERATIONS)
def test_order_operation_from_every_state(state, operation):
    order = order_in_state(state)
    assert order.status == state
    before = snapshot(order)
    expected = LEGAL.get((operation, state))

    if expected is None:
        with pytest.raises(IllegalTransition) as excinfo:
            ORDER_OPERATIONS[operation](order)
        assert excinfo.value.code == "illegal_transition"
        assert snapshot(order) == before
    else:
        ORDER_OPERATIONS[operation](order)
        order.refresh_from_db()
        assert order.status == expected
        event = OrderEvent.objects.filter(order=order, kind=OrderEvent.Kind.TRANSITION).latest("id")
        assert (event.name, event.from_status, event.to_status, event.actor) == (operation, state, expected, "job:test")
    assert stock_ledger_mismatches() == []


def test_mark_ready_needs_every_line_resolved():
    order = make_order(lines=[(SkuFactory(), 1)])
    OrderLine.objects.create(order=order, line_number=2, sku_code="NOPE", quantity=1)

    with pytest.raises(IllegalTransition) as excinfo:
        lifecycle_services.order_mark_ready(order=order, actor=TEST_ACTOR)

    assert "known SKU" in excinfo.value.message
    order.refresh_from_db()
    assert order.status == S.RECEIVED


def test_allocating_reserves_stock_and_cancel_releases_it():
    site, sku = LocationFactory(), SkuFactory()
    stock(site, sku, 10)
    order = lifecycle_services.order_mark_ready(order=make_order(lines=[(sku, 4)]), actor=TEST_ACTOR)
    order = allocation_services.order_allocate(order=order, plan=single_site_plan(order, site), actor=TEST_ACTOR)
    order = lifecycle_services.order_release(order=order, actor=TEST_ACTOR)
    assert StockLevel.objects.get(location=site, sku=sku).reserved == 4
    assert order.lines.get().quantity_allocated == 4

    lifecycle_services.order_cancel(order=order, reason="customer asked", actor=TEST_ACTOR)

    assert StockLevel.objects.get(location=site, sku=sku).reserved == 0
    line = OrderLine.objects.get(order=order)
    assert (line.quantity_allocated, line.quantity_cancelled) == (0, 4)
    assert list(order.shipments.values_list("status", flat=True)) == [SS.CANCELLED]
    release = StockMovement.objects.get(kind="release")
    assert (release.quantity, release.reference, release.reason) == (4, f"order:{order.pk}", "customer asked")
    names = list(OrderEvent.objects.filter(order=order).values_list("kind", "name"))
    # Released: the warehouse system was told of the shipment, so it is told of the cancellation too.
    assert names[-3:] == [("transition", "cancel"), ("shipment", "cancel"), ("outbound", "cancel_to_wms")]


def test_cancel_is_refused_once_units_are_picked():
    order = order_in_state(S.RELEASED)
    shipments_services.shipment_pick(shipment=order.shipments.get(), actor=TEST_ACTOR)
    before = snapshot(order)

    with pytest.raises(IllegalTransition) as excinfo:
        lifecycle_services.order_cancel(order=order, reason="too late", actor=TEST_ACTOR)

    assert "off the shelf" in excinfo.value.message
    assert snapshot(order) == before


def test_a_plan_that_does_not_fit_the_stock_reserves_nothing():
    site, sku1, sku2 = LocationFactory(), SkuFactory(), SkuFactory()
    stock(site, sku1, 10)
    stock(site, sku2, 1)
    order = lifecycle_services.order_mark_ready(order=make_order(lines=[(sku1, 2), (sku2, 2)]), actor=TEST_ACTOR)
    before = snapshot(order)

    with pytest.raises(Conflict):
        allocation_services.order_allocate(order=order, plan=single_site_plan(order, site), actor=TEST_ACTOR)

    assert snapshot(order) == before
    assert not Shipment.objects.filter(order=order).exists()


# --- shipments --------------------------------------------------------------------

SHIPMENT_OPERATIONS = {
    "pick": lambda sh: shipments_services.shipment_pick(shipment=sh, actor=TEST_ACTOR),
    "pack": lambda sh: shipments_services.shipment_pack(shipment=sh, actor=TEST_ACTOR),
    "ship": lambda sh: shipments_services.shipment_ship(shipment=sh, carrier="UPS", tracking_number="1Z999", actor=TEST_ACTOR),
    "deliver": lambda sh: shipments_services.shipment_deliver(shipment=sh, actor=TEST_ACTOR),
}
SHIPMENT_LEGAL = {
    ("pick", SS.RELEASED): SS.PICKED,
    ("pack", SS.PICKED): SS.PACKED,
    ("ship", SS.PICKED): SS.SHIPPED,
    ("ship", SS.PACKED): SS.SHIPPED,
    ("deliver", SS.SHIPPED): SS.DELIVERED,
}


def shipment_in_state(state: str) -> Shipment:
    if state == SS.PLANNED:
        return order_in_state(S.ALLOCATED).shipments.get()
    if state == SS.CANCELLED:
        return _cancelled_shipment()
    shipment = order_in_state(S.RELEASED).shipments.get()
    for step in ["pick", "pack", "ship", "deliver"][: [SS.RELEASED, SS.PICKED, SS.PACKED, SS.SHIPPED, SS.DELIVERED].index(state)]:
        SHIPMENT_OPERATIONS[step](shipment)
    return Shipment.objects.get(pk=shipment.pk)


def _cancelled_shipment() -> Shipment:
    order = order_in_state(S.RELEASED)
    lifecycle_services.order_cancel(order=order, reason="test", actor=TEST_ACTOR)
    return order.shipments.get()


@pytest.mark.parametrize("state", SS.values)
@pytest.mark.parametrize("operation", SHIPMENT_OPERATIONS)
def test_shipment_operation_from_every_state(state, operation):
    shipment = shipment_in_state(state)
    assert shipment.status == state
    before = snapshot(shipment.order)
    expected = SHIPMENT_LEGAL.get((operation, state))

    if expected is None:
        with pytest.raises(IllegalTransition):
            SHIPMENT_OPERATIONS[operation](shipment)
        assert snapshot(shipment.order) == before
    else:
        SHIPMENT_OPERATIONS[operation](shipment)
        shipment.refresh_from_db()
        assert shipment.status == expected
        event = OrderEvent.objects.filter(shipment=shipment).latest("id")
        assert (event.kind, event.name, event.from_status, event.to_status) == ("shipment", operation, state, expected)
    assert stock_ledger_mismatches() == []


def test_shipping_moves_stock_out_and_the_order_follows_its_shipments():
    order = order_in_state(S.PARTIALLY_SHIPPED)  # split over two sites, one shipment gone
    first, second = order.shipments.order_by("pk")
    assert (first.status, second.status) == (SS.SHIPPED, SS.RELEASED)
    assert order.status == S.PARTIALLY_SHIPPED

    shipments_services.shipment_pick(shipment=second, actor=TEST_ACTOR)
    shipments_services.shipment_pack(shipment=second, actor=TEST_ACTOR)
    shipments_services.shipment_ship(shipment=second, carrier="DHL", tracking_number="JD0001", actor=TEST_ACTOR)
    order.refresh_from_db()
    assert order.status == S.SHIPPED
    assert all(line.quantity_shipped == line.base_quantity and line.quantity_allocated == 0 for line in order.lines.all())

    shipments_services.shipment_deliver(shipment=first, actor=TEST_ACTOR)
    order.refresh_from_db()
    assert order.status == S.SHIPPED  # one parcel is still on its way
    shipments_services.shipment_deliver(shipment=second, actor=TEST_ACTOR)
    order.refresh_from_db()
    assert order.status == S.DELIVERED
    ship_rows = StockMovement.objects.filter(kind="ship", reference__in=[f"shipment:{first.pk}", f"shipment:{second.pk}"])
    assert sorted(ship_rows.values_list("on_hand_delta", flat=True)) == [-3, -2]
    assert stock_ledger_mismatches() == []


# --- concurrency ------------------------------------------------------------------


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.parametrize(("first", "second"), [("approve_split", "reject_split"), ("approve_split", "approve_split")])
def test_two_concurrent_transitions_on_one_order_cannot_both_win(first, second):
    """Two agents act on the same proposed split at the same moment: one wins, the other gets a conflict."""
    order = order_in_state(S.AWAITING_APPROVAL)
    results: list[object] = [None, None]
    stale = [Order.objects.get(pk=order.pk) for _ in range(2)]  # both read the order before either acts

    def run(index):
        try:
            results[index] = ORDER_OPERATIONS[(first, second)[index]](stale[index])
        except Conflict as exc:
            results[index] = exc

    assert run_together(2, run) == []

    winners = [op for op, result in zip((first, second), results, strict=True) if isinstance(result, Order)]
    losers = [result for result in results if isinstance(result, Conflict)]
    assert len(winners) == 1 and len(losers) == 1, results
    order.refresh_from_db()
    assert order.status == {"approve_split": S.ALLOCATED, "reject_split": S.BACKORDERED}[winners[0]]
    assert OrderEvent.objects.filter(order=order, kind="transition", name__in=[first, second]).count() == 1
    assert stock_ledger_mismatches() == []


def test_saving_a_stale_copy_after_another_transition_is_refused():
    from django.db import transaction
    from django_fsm import ConcurrentTransition

    order = order_in_state(S.READY)
    stale = Order.objects.get(pk=order.pk)
    lifecycle_services.order_hold(order=order, reason="fraud check", actor=TEST_ACTOR)

    stale.backorder()
    with pytest.raises(ConcurrentTransition), transaction.atomic():
        stale.save()
    assert Order.objects.get(pk=order.pk).status == S.ON_HOLD


def test_status_cannot_be_assigned_directly():
    order = order_in_state(S.READY)
    with pytest.raises(AttributeError):
        order.status = S.SHIPPED


def test_an_order_from_order_create_reads_what_later_services_write():
    order = make_order()
    raise_on_order("invalid_address", order)
    assert order.exceptions.count() == 1  # not the empty set the order was stored with


def test_cancelling_the_last_unshipped_line_of_a_partially_shipped_order_ships_it():
    order = order_in_state(S.PARTIALLY_SHIPPED)  # line 1 shipped from one site; line 2 released at another
    line2 = order.lines.get(line_number=2)

    lifecycle_services.order_line_cancel(order=order, line=line2, reason="customer no longer wants it", actor=TEST_ACTOR)

    order.refresh_from_db()
    assert OrderEvent.objects.filter(order=order, name="cancel_to_wms").exists()
    assert not Shipment.objects.filter(order=order, status__in=Shipment.ACTIVE).exists()
    assert order.status == S.SHIPPED


def test_an_illegal_transition_names_the_order_as_people_know_it_and_keeps_its_id_in_the_detail():
    order = order_in_state(S.CANCELLED)

    with pytest.raises(IllegalTransition) as refused:
        lifecycle_services.order_cancel(order=order, reason="again", actor=TEST_ACTOR)

    assert refused.value.message == (
        f"Order {order.partner.code} {order.external_id} is cancelled; 'Cancel order' is not possible from that status."
    )
    assert refused.value.detail["id"] == order.pk


def test_an_illegal_transition_of_a_row_without_a_display_name_names_its_id():
    shipment = shipment_in_state(SS.DELIVERED)

    with pytest.raises(IllegalTransition) as refused:
        shipments_services.shipment_pick(shipment=shipment, actor=TEST_ACTOR)

    assert refused.value.message.startswith(f"Shipment {shipment.pk} is delivered;")


def test_reallocating_an_order_that_owes_nothing_names_it_by_its_external_id():
    order = order_in_state(S.RELEASED)

    with pytest.raises(Conflict) as refused:
        allocation_services.order_reallocate_owed_to(order=order, location=LocationFactory(), actor=TEST_ACTOR)

    assert refused.value.message.startswith(f"Order {order.partner.code} {order.external_id} owes nothing")
    assert refused.value.detail["order"] == order.pk


def test_a_plan_with_a_line_of_another_order_names_the_order_by_its_external_id():
    from core.errors import InvalidInput

    order, other = order_in_state(S.READY), make_order()
    site = LocationFactory()
    stranger = other.lines.get()

    with pytest.raises(InvalidInput) as refused:
        allocation_services.order_allocate(
            order=order,
            plan=[reservations_services.PlannedShipment(site.pk, ((stranger.pk, 1),))],
            actor=TEST_ACTOR,
        )

    assert refused.value.message == f"Line {stranger.pk} is not part of order {order.external_id}."
    assert refused.value.detail["order"] == order.pk
