"""factory_boy factories and small builders shared by the tests."""

from __future__ import annotations

from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from core.actors import Actor
from inventory.models import Location, Sku
from inventory.services import stock_receive
from orders.addresses import Address
from orders.models import Order, OrderStatus, Partner, Shipment
from orders.services import allocation as allocation_services
from orders.services import intake as intake_services
from orders.services import lifecycle as lifecycle_services
from orders.services import reservations as reservations_services
from orders.services import shipments as shipment_services

TEST_ACTOR = Actor.job("test")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("pw")


class LocationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Location
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"WH-{n:02d}")
    name = factory.LazyAttribute(lambda o: f"Warehouse {o.code}")
    country = "US"
    ships_to = factory.LazyFunction(lambda: ["US", "CA"])


class SkuFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Sku
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"SKU-{n:04d}")
    name = factory.LazyAttribute(lambda o: f"Product {o.code}")
    unit_price = Decimal("12.50")
    case_pack = 12


class PartnerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Partner
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"partner-{n}")
    name = factory.LazyAttribute(lambda o: o.code.title())


def stock(location: Location, sku: Sku, quantity: int) -> None:
    stock_receive(location_id=location.pk, sku_id=sku.pk, quantity=quantity, actor=TEST_ACTOR, reference="test")


_external_ids = iter(range(1, 10**9))


def make_order(
    *, partner: Partner | None = None, lines: list[tuple[Sku, int]] | None = None, country: str = "US", **kwargs
) -> Order:
    partner = partner or PartnerFactory()
    if lines is None:
        lines = [(SkuFactory(), 2)]
    return intake_services.order_create(
        partner=partner,
        external_id=kwargs.pop("external_id", f"T-{next(_external_ids)}"),
        placed_at=timezone.now(),
        customer_name="Ada Lovelace",
        customer_email="ada@example.com",
        address=Address(
            name="Ada Lovelace", line1="1 Main St", city="Springfield", region="IL", postal_code="62701", country=country
        ),
        lines=[intake_services.LineInput(sku.code, qty, "each", Decimal("12.50")) for sku, qty in lines],
        actor=TEST_ACTOR,
        **kwargs,
    )


def single_site_plan(order: Order, location: Location) -> list[reservations_services.PlannedShipment]:
    return [
        reservations_services.PlannedShipment(location.pk, tuple((line.pk, line.quantity_open) for line in order.lines.all()))
    ]


def split_plan(order: Order, locations: list[Location]) -> list[reservations_services.PlannedShipment]:
    """Line i ships from locations[i]."""
    return [
        reservations_services.PlannedShipment(location.pk, ((line.pk, line.quantity_open),))
        for line, location in zip(order.lines.order_by("line_number"), locations, strict=True)
    ]


def order_in_state(state: str) -> Order:
    """A fresh two-line order driven through the services to `state`, with stock at two sites."""
    a, b = LocationFactory(), LocationFactory()
    sku1, sku2 = SkuFactory(), SkuFactory()
    for loc in (a, b):
        stock(loc, sku1, 10)
        stock(loc, sku2, 10)
    order = make_order(lines=[(sku1, 2), (sku2, 3)])
    S = OrderStatus
    if state == S.RECEIVED:
        return order
    if state == S.CANCELLED:
        return lifecycle_services.order_cancel(order=order, reason="test", actor=TEST_ACTOR)
    order = lifecycle_services.order_mark_ready(order=order, actor=TEST_ACTOR)
    if state == S.READY:
        return order
    if state == S.ON_HOLD:
        return lifecycle_services.order_hold(order=order, reason="test", actor=TEST_ACTOR)
    if state == S.BACKORDERED:
        return lifecycle_services.order_backorder(order=order, actor=TEST_ACTOR)
    if state == S.AWAITING_APPROVAL:
        return allocation_services.order_allocate(
            order=order, plan=split_plan(order, [a, b]), actor=TEST_ACTOR, requires_approval=True
        )
    plan = split_plan(order, [a, b]) if state == S.PARTIALLY_SHIPPED else single_site_plan(order, a)
    order = allocation_services.order_allocate(order=order, plan=plan, actor=TEST_ACTOR)
    if state == S.ALLOCATED:
        return order
    order = lifecycle_services.order_release(order=order, actor=TEST_ACTOR)
    if state == S.RELEASED:
        return order
    shipments = list(Shipment.objects.filter(order=order).order_by("pk"))
    for shipment in shipments[:1] if state == S.PARTIALLY_SHIPPED else shipments:
        shipment_services.shipment_pick(shipment=shipment, actor=TEST_ACTOR)
        shipment_services.shipment_ship(shipment=shipment, carrier="UPS", tracking_number="1Z", actor=TEST_ACTOR)
        if state == S.DELIVERED:
            shipment_services.shipment_deliver(shipment=shipment, actor=TEST_ACTOR)
    return Order.objects.get(pk=order.pk)


def user_with_role(username: str, role=None, *queue_slugs: str):
    """A person holding `role` (a core.roles.Role) and working the given queues."""
    from django.contrib.auth.models import Group

    from exceptions.models import Queue

    user = UserFactory(username=username)
    if role:
        user.groups.add(Group.objects.get(name=role))
    for queue in Queue.objects.filter(slug__in=queue_slugs):
        queue.members.add(user)
    return user


def raise_on_order(code: str, order=None, **kwargs):
    from exceptions.services import exception_raise

    order = order or make_order()
    return exception_raise(code=code, summary=f"{code} on {order.external_id}", order=order, actor=TEST_ACTOR, **kwargs)


def proposed_split(network: dict):
    """An order routed into a split proposal on the `network` fixture, with its split_approval_required exception."""
    from exceptions.models import FulfillmentException

    order = lifecycle_services.order_mark_ready(order=make_order(lines=[(network["x"], 2), (network["y"], 3)]), actor=TEST_ACTOR)
    allocation_services.order_route(order=order, actor=TEST_ACTOR)
    order.refresh_from_db()
    assert order.status == OrderStatus.AWAITING_APPROVAL
    return order, FulfillmentException.objects.get(order=order, type__code="split_approval_required")
