"""The timeline tells each event in plain words, naming people by role and systems by what they are."""

import pytest
from django.contrib.auth.models import Group

from core.actors import SYSTEM, Actor
from core.roles import Role
from exceptions.models import ExceptionEvent
from exceptions.services import exception_claim, exception_comment, exception_resolve, exception_set_priority
from exceptions.timeline import describe_actor, timeline
from orders.models import OrderEvent, OrderStatus, Shipment
from orders.services import shipments as shipment_services
from orders.services.allocation import order_allocate, order_reject_split
from orders.services.comments import order_comment
from orders.services.lifecycle import order_cancel, order_hold, order_line_cancel, order_mark_ready, order_release
from tests.factories import (
    TEST_ACTOR,
    LocationFactory,
    SkuFactory,
    UserFactory,
    make_order,
    proposed_split,
    raise_on_order,
    single_site_plan,
    stock,
    user_with_role,
)

pytestmark = pytest.mark.django_db


def titles(**kwargs) -> list[str]:
    return [entry.title for entry in timeline(**kwargs)]


@pytest.fixture
def ann(db):
    return user_with_role("ann", Role.COORDINATOR, "stock")


@pytest.fixture
def sam(db):
    return user_with_role("sam", Role.CUSTOMER_SERVICE, "customer-service")


def test_a_coordinator_putting_the_order_on_hold(ann):
    order = order_mark_ready(order=make_order(), actor=TEST_ACTOR)
    order_hold(order=order, reason="address check", actor=Actor.for_user(ann))

    assert "Coordinator ann put the order on hold: address check" in titles(order=order)


def test_customer_service_rejecting_a_split(network, sam):
    order, _ = proposed_split(network)
    order_reject_split(order=order, actor=Actor.for_user(sam), reason="customer prefers one parcel")

    assert "Customer service sam rejected the split: customer prefers one parcel" in titles(order=order)


def test_the_system_allocating_and_the_warehouse_shipping():
    site, sku = LocationFactory(code="WH-WEST"), SkuFactory()
    stock(site, sku, 5)
    order = order_mark_ready(order=make_order(lines=[(sku, 1)]), actor=TEST_ACTOR)
    order = order_allocate(order=order, plan=single_site_plan(order, site), actor=SYSTEM)
    order_release(order=order, actor=Actor.job("release_wave"))
    shipment = Shipment.objects.get(order=order)
    wms = Actor.external("sim-wms")
    shipment_services.shipment_pick(shipment=shipment, actor=wms)
    shipment_services.shipment_ship(shipment=shipment, carrier="UPS", tracking_number="1Z999", actor=wms)

    words = titles(order=order)

    assert "System allocated the order" in words
    assert "The release wave released the order to the warehouse" in words
    assert "The release wave sent the pick tickets to the warehouse" in words
    assert f"The warehouse picked shipment {shipment.pk} at WH-WEST" in words
    assert f"The warehouse shipped shipment {shipment.pk} from WH-WEST (UPS 1Z999)" in words
    assert "The warehouse marked the order shipped" in words
    assert words[-1] == "The test job created the order"  # newest first


def test_cancelling_a_line_and_the_order(sam):
    order = make_order(lines=[(SkuFactory(), 1), (SkuFactory(), 2)])
    line = order.lines.get(line_number=2)
    order_line_cancel(order=order, line=line, reason="out of the colour", actor=Actor.for_user(sam))
    order_cancel(order=order, reason="customer called", actor=Actor.for_user(sam))

    words = titles(order=order)

    assert f"Customer service sam cancelled line 2 ({line.sku_code}): out of the colour" in words
    assert "Customer service sam cancelled the order: customer called" in words


def test_a_comment_reads_as_a_comment_with_its_note(ann):
    order = make_order()
    order_comment(order=order, note="customer asked for the tracking link", actor=Actor.for_user(ann))

    entry = timeline(order=order)[0]

    assert (entry.title, entry.note, entry.source) == (
        "Coordinator ann commented on the order",
        "customer asked for the tracking link",
        "order",
    )


def test_an_exceptions_life_on_the_order_timeline_is_named_by_its_type(ann):
    order = make_order()
    exception = raise_on_order("out_of_stock", order)
    exception_claim(exception=exception, user=ann, actor=Actor.for_user(ann))
    exception_comment(exception=exception, note="looking at the other site", actor=Actor.for_user(ann), operator_minutes=5)
    priority_before = exception.priority
    exception_set_priority(exception=exception, priority="P4", actor=Actor.for_user(ann))
    exception_resolve(exception=exception, note="stock found", actor=Actor.for_user(ann))

    words = titles(order=order)

    assert f"The test job raised the Out of stock exception: out_of_stock on {order.external_id}" in words
    assert "Coordinator ann claimed the Out of stock exception" in words
    assert "Coordinator ann commented on the Out of stock exception (5 min)" in words
    assert f"Coordinator ann changed the priority of the Out of stock exception from {priority_before} to P4" in words
    assert "Coordinator ann resolved the Out of stock exception" in words
    notes = [entry.note for entry in timeline(order=order) if entry.source == "exception"]
    assert "looking at the other site" in notes and "stock found" in notes


def test_on_the_exceptions_own_page_it_is_the_exception(ann):
    exception = raise_on_order("out_of_stock")
    exception_claim(exception=exception, user=ann, actor=Actor.for_user(ann))

    words = titles(exception=exception)

    assert "Coordinator ann claimed the exception" in words
    assert "The test job created the order" in words


def test_escalation_and_sla_warnings_read_as_sentences():
    exception = raise_on_order("out_of_stock")
    ExceptionEvent.objects.create(exception=exception, kind="sla_warned", actor=str(SYSTEM))
    ExceptionEvent.objects.create(
        exception=exception,
        kind="escalated",
        actor=str(SYSTEM),
        data={"to_queue": "Escalations", "from_priority": "P2", "to_priority": "P1"},
    )

    words = titles(exception=exception)

    assert "System warned that the exception is close to its deadline" in words
    assert "System escalated the exception to Escalations, priority P2 → P1" in words


def test_an_event_nobody_taught_it_still_reads_as_a_sentence():
    order = make_order()
    OrderEvent.objects.create(order=order, kind="action", name="gift_wrap_added", actor="partner:acme")
    OrderEvent.objects.create(order=order, kind="transition", name="teleport", actor="job:nightly_sweep")
    exception = raise_on_order("out_of_stock", order)
    ExceptionEvent.objects.create(exception=exception, kind="action", action="poke_the_erp", actor="system:sim-erp")

    words = titles(order=order)

    assert "Partner acme recorded gift wrap added on the order" in words
    assert "The nightly sweep job recorded “teleport” (status changed) on the order" in words
    assert "The ERP took the action “poke the erp” on the Out of stock exception" in words


@pytest.mark.parametrize(
    ("actor", "words"),
    [
        ("system", "System"),
        ("system:sim-wms", "The warehouse"),
        ("system:sim-shop", "The storefront"),
        ("system:acme-feed", "The acme feed system"),
        ("job:outbox", "The outbox relay"),
        ("job:wms", "The warehouse"),
        ("partner:acme", "Partner acme"),
        ("user:ghost", "User ghost"),
    ],
)
def test_actors_are_named_by_what_they_are(actor, words):
    assert describe_actor(actor, {}) == words


def test_people_are_named_by_role_read_in_one_query_for_the_whole_timeline(django_assert_num_queries, ann, sam):
    boss = UserFactory(username="boss", is_superuser=True)
    nobody = UserFactory(username="nobody")
    both = user_with_role("both", Role.CUSTOMER_SERVICE)
    both.groups.add(Group.objects.get(name=Role.OPS_ADMIN))
    order = make_order()
    for user in (ann, sam, boss, nobody, both):
        OrderEvent.objects.create(order=order, kind="note", name="comment", actor=f"user:{user.username}", data={"note": "hi"})
    for number in range(3):
        exception = raise_on_order("out_of_stock", order, dedupe_key=f"order:{order.pk}|n:{number}")
        exception_comment(exception=exception, note="seen", actor=Actor.for_user(ann))

    with django_assert_num_queries(3):  # the exception events, the order events, the people's roles
        words = titles(order=order)

    for who in ("Coordinator ann", "Customer service sam", "Admin boss", "User nobody", "Customer service both"):
        assert f"{who} commented on the order" in words


def test_an_order_with_nothing_but_its_creation():
    order = make_order()

    assert titles(order=order) == ["The test job created the order"]
    assert order.status == OrderStatus.RECEIVED
