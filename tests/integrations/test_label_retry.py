"""change_carrier: a failed label, or a service the carrier refused, gets another carrier or service and the WMS is
asked to print the label again."""

import time

import pytest
from django.urls import reverse

from core.errors import Conflict, InvalidInput
from exceptions.actions import action_perform
from exceptions.models import ExceptionEvent, ExceptionStatus, FulfillmentException
from integrations.models import Delivery, InboundStatus, OutboxMessage
from integrations.services.labels import LABEL_RETRY
from integrations.services.systems import system_ensure
from integrations.simulator import WMS
from orders.models import OrderEvent, OrderStatus, RoutingRule, Shipment, ShipmentStatus
from orders.services.allocation import order_route
from orders.services.lifecycle import order_mark_ready, order_release
from orders.services.shipments import shipment_label_failed, shipment_pick, shipment_ship
from tests.factories import TEST_ACTOR, LocationFactory, SkuFactory, make_order, raise_on_order, stock
from tests.integrations.test_simulator import deliver_pending, send_and_apply

pytestmark = pytest.mark.django_db


def act(code, exception, user, **data):
    return action_perform(code=code, exception_id=exception.pk, user=user, data=data)


def released(*, preferred="UPS", fallback="FedEx"):
    site, sku = LocationFactory(code="WH-EAST"), SkuFactory(code="MUG-1")
    stock(site, sku, 10)
    rule = RoutingRule.objects.create(name="East", priority=1, preferred_carrier=preferred, fallback_carrier=fallback)
    rule.ranked_locations.create(location=site, rank=1)
    order = order_mark_ready(order=make_order(lines=[(sku, 2)]), actor=TEST_ACTOR)
    order_route(order=order, actor=TEST_ACTOR)
    order = order_release(order=order, actor=TEST_ACTOR)
    return order, order.shipments.get()


def failed_label(shipment) -> FulfillmentException:
    shipment_label_failed(shipment=shipment, reason="Carrier rejected the address", actor=TEST_ACTOR, source_system="wms")
    return FulfillmentException.objects.get(shipment=shipment, type__code="label_failure", status=ExceptionStatus.OPEN)


@pytest.fixture
def wms(db):
    return system_ensure(slug="wms", kind="wms", adapter="generic_wms", base_url="http://127.0.0.1:9/").system


def test_changing_the_carrier_updates_the_shipment_and_asks_the_wms_to_print_the_label_again(wms, coordinator):
    order, shipment = released()
    label = failed_label(shipment)

    result = act(
        "change_carrier", label, coordinator, carrier="FedEx", service="express", note="Use the side door", operator_minutes=4
    )

    assert "now goes by FedEx express" in result.message
    shipment.refresh_from_db()
    assert (shipment.carrier, shipment.service, shipment.status) == ("FedEx", "express", ShipmentStatus.RELEASED)
    event = OrderEvent.objects.get(order=order, name="change_carrier")
    assert (event.actor, event.data) == (
        "user:coord",
        {"shipment": shipment.pk, "before": {"carrier": "", "service": ""}, "after": {"carrier": "FedEx", "service": "express"}},
    )
    message = OutboxMessage.objects.get(type=LABEL_RETRY)
    assert message.order == order
    assert message.payload == {
        "order_id": order.pk,
        "external_id": order.external_id,
        "partner": order.partner.code,
        "shipment_id": shipment.pk,
        "location": "WH-EAST",
        "carrier": "FedEx",
        "service": "express",
        "previous": {"carrier": "", "service": ""},
        "ship_to": {
            "name": "Ada Lovelace",
            "line1": "1 Main St",
            "line2": "",
            "city": "Springfield",
            "region": "IL",
            "postal_code": "62701",
            "country": "US",
        },
        "exception_id": label.pk,
        "note": "Use the side door",
    }
    assert [d.system.slug for d in message.deliveries.all()] == ["wms"]
    label.refresh_from_db()
    assert (label.status, label.resolution_action) == (ExceptionStatus.RESOLVED, "change_carrier")
    closed = ExceptionEvent.objects.get(exception=label, to_status="resolved")
    assert (closed.action, closed.operator_minutes) == ("change_carrier", 4)
    assert "asked wms to print the label again" in closed.note


def test_a_label_that_fails_again_opens_a_new_exception(wms, coordinator):
    _order, shipment = released()
    first = failed_label(shipment)
    act("change_carrier", first, coordinator, carrier="FedEx", service="standard")

    again = failed_label(shipment)

    assert again.pk != first.pk and again.status == ExceptionStatus.OPEN


def test_the_choices_are_the_rules_carriers_and_the_page_offers_them(client, wms, coordinator):
    _, shipment = released()
    label = failed_label(shipment)
    client.force_login(coordinator)

    page = client.get(reverse("exception-detail", args=[label.pk])).content.decode()

    form = page[page.index("Change carrier and retry the label") :]
    assert '<option value="UPS"' in form and '<option value="FedEx"' in form
    with pytest.raises(InvalidInput, match="DHL is not a carrier"):
        from integrations.services.labels import exception_change_carrier

        exception_change_carrier(exception=label, carrier="DHL", service="standard", actor=TEST_ACTOR)
    with pytest.raises(InvalidInput, match="DHL is not a carrier of this order's routing rule"):
        act("change_carrier", label, coordinator, carrier="DHL", service="standard")
    assert not OutboxMessage.objects.filter(type=LABEL_RETRY).exists()


def test_without_carriers_on_the_rule_the_shipments_own_carrier_is_the_choice(wms, coordinator):
    order, shipment = released(preferred="", fallback="")
    Shipment.objects.filter(pk=shipment.pk).update(carrier="USPS", service="express")
    invalid = raise_on_order("carrier_service_invalid", order=order, shipment=shipment)

    with pytest.raises(InvalidInput, match="already goes by USPS express"):
        act("change_carrier", invalid, coordinator, carrier="USPS", service="express")
    act("change_carrier", invalid, coordinator, carrier="USPS", service="standard")

    shipment.refresh_from_db()
    assert (shipment.carrier, shipment.service) == ("USPS", "standard")
    assert OutboxMessage.objects.get(type=LABEL_RETRY).payload["previous"] == {"carrier": "USPS", "service": "express"}


def test_with_no_carrier_anywhere_it_is_not_offered(client, wms, coordinator):
    _, shipment = released(preferred="", fallback="")
    label = failed_label(shipment)
    client.force_login(coordinator)

    assert "Change carrier and retry the label" not in client.get(reverse("exception-detail", args=[label.pk])).content.decode()
    with pytest.raises(Conflict, match="not possible on this exception now"):
        act("change_carrier", label, coordinator, carrier="", service="standard")


def test_it_is_refused_when_no_wms_runs_the_location(coordinator):
    _, shipment = released()
    label = failed_label(shipment)

    with pytest.raises(Conflict, match="No active WMS with an address runs WH-EAST"):
        act("change_carrier", label, coordinator, carrier="FedEx", service="express")

    shipment.refresh_from_db()
    assert (shipment.carrier, shipment.service) == ("", "")
    assert not OrderEvent.objects.filter(name="change_carrier").exists()
    assert not OutboxMessage.objects.filter(type=LABEL_RETRY).exists()
    assert FulfillmentException.objects.get(pk=label.pk).status == ExceptionStatus.OPEN


def test_it_is_refused_once_the_parcel_has_left(wms, coordinator):
    _order, shipment = released()
    label = failed_label(shipment)
    shipment_pick(shipment=shipment, actor=TEST_ACTOR)
    shipment_ship(shipment=shipment, carrier="UPS", tracking_number="1Z", actor=TEST_ACTOR)

    with pytest.raises(Conflict, match="not possible on this exception now"):
        act("change_carrier", label, coordinator, carrier="FedEx", service="express")

    assert not OutboxMessage.objects.filter(type=LABEL_RETRY).exists()
    assert Shipment.objects.get(pk=shipment.pk).carrier == "UPS"


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_simulated_wms_prints_the_label_again_and_ships_with_the_new_carrier(simulate):
    from core.roles import Role
    from tests.factories import user_with_role

    coordinator = user_with_role("coord", Role.COORDINATOR, "shipping")
    simulator = simulate(label_failure_rate=1.0)
    order, shipment = released()
    deliver_pending(WMS)  # the pick ticket

    def next_webhook():
        (webhook,) = simulator.follow_ups(now=time.monotonic() + 10_000, limit=1)
        assert send_and_apply(simulator, webhook).status == InboundStatus.APPLIED
        return webhook

    assert [next_webhook().topic for _ in range(3)] == ["shipment.picked", "shipment.packed", "shipment.label_failed"]
    label = FulfillmentException.objects.get(shipment=shipment, type__code="label_failure")

    act("change_carrier", label, coordinator, carrier="FedEx", service="express")
    (retry,) = deliver_pending(WMS)
    assert Delivery.objects.get(pk=retry.pk).message.type == LABEL_RETRY
    assert simulator.delivered_types[f"{WMS}:{LABEL_RETRY}"] == 1

    shipped = next_webhook()
    assert (shipped.topic, shipped.payload["data"]["carrier"]) == ("shipment.shipped", "FedEx")
    shipment.refresh_from_db()
    assert (shipment.status, shipment.carrier) == (ShipmentStatus.SHIPPED, "FedEx")
    assert order.__class__.objects.get(pk=order.pk).status == OrderStatus.SHIPPED
