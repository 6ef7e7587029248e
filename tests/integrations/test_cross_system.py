"""The cross-system panel: what the storefront, ERP and WMS last said and acknowledged, and where they disagree."""

import json
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from core import panels
from integrations import crosscheck
from integrations.models import Delivery, DeliveryStatus, InboundEvent, InboundStatus, Invoice, OutboxMessage
from integrations.panels import cross_system_panel, exception_panel, order_panel
from orders.addresses import Address
from orders.models import OrderStatus, Shipment
from orders.services import addresses, lifecycle
from tests.factories import TEST_ACTOR, make_order, order_in_state, raise_on_order

pytestmark = pytest.mark.django_db
HOUR = timedelta(hours=1)


def said(order, system, topic: str, payload: dict, *, ago: timedelta = HOUR, subject: str = "", **fields) -> InboundEvent:
    """An event `system` sent about `order`, stamped `ago` before now; a generic sender's payload goes in an envelope."""
    at = timezone.now() - ago
    body = payload if system.adapter == "shopify" else {"type": topic, "occurred_at": at.isoformat(), "data": payload}
    return InboundEvent.objects.create(
        system=system,
        sender_id=f"msg_{uuid.uuid4().hex}",
        topic=topic,
        body=json.dumps(body).encode(),
        occurred_at=at,
        received_at=at,
        subject=subject,
        status=fields.pop("status", InboundStatus.APPLIED),
        order=order,
        **fields,
    )


def told(order, system, type: str, status: str, *, ago: timedelta = HOUR, **fields) -> Delivery:
    at = timezone.now() - ago
    message = OutboxMessage.objects.create(type=type, payload={}, order=order, created_at=at)
    if status == DeliveryStatus.DELIVERED:
        fields.setdefault("delivered_at", at)
    return Delivery.objects.create(message=message, system=system, status=status, created_at=at, **fields)


def first_shipment(order) -> Shipment:
    return Shipment.objects.filter(order=order).order_by("pk").first()


def wms_shipped(order, wms, *, ago: timedelta = 2 * HOUR, **fields) -> InboundEvent:
    shipment = first_shipment(order)
    return said(
        order,
        wms,
        "shipment.shipped",
        {"shipment_id": shipment.pk, "tracking_number": "1Z999"},
        ago=ago,
        subject=f"shipment:{shipment.pk}",
        **fields,
    )


def storefront_order(order, shop, *, fulfillment_status=None, ago: timedelta = 3 * HOUR, address: dict | None = None):
    address = address or {"address1": "1 Main St", "city": "Springfield", "province_code": "IL", "zip": "62701"}
    payload = {
        "id": order.external_id,
        "fulfillment_status": fulfillment_status,
        "shipping_address": {"name": "Ada Lovelace", "country_code": "US", **address},
    }
    return said(order, shop, "orders/create", payload, ago=ago, subject=f"order:{order.external_id}")


def rule(check, order) -> str | None:
    return check(crosscheck.facts_for(order))


# --- the storefront still shows the order open ------------------------------------------------


def test_storefront_unfulfilled_while_we_shipped_it(shop):
    order = order_in_state(OrderStatus.SHIPPED)
    Shipment.objects.filter(order=order).update(shipped_at=timezone.now() - 2 * HOUR)
    storefront_order(order, shop, ago=5 * HOUR)

    assert rule(crosscheck.storefront_open_but_shipped, order) == "storefront says unfulfilled; we shipped it 2 h ago"


def test_storefront_unfulfilled_while_the_wms_shipped_it(shop, wms):
    order = order_in_state(OrderStatus.RELEASED)
    storefront_order(order, shop)
    wms_shipped(order, wms, status=InboundStatus.FAILED)

    assert rule(crosscheck.storefront_open_but_shipped, order) == "storefront says unfulfilled; WMS shipped it 2 h ago"


def test_a_storefront_that_acknowledged_the_fulfillment_since_agrees(shop):
    order = order_in_state(OrderStatus.SHIPPED)
    storefront_order(order, shop, ago=5 * HOUR)
    told(order, shop, "fulfillment.created", DeliveryStatus.DELIVERED, ago=HOUR)

    assert rule(crosscheck.storefront_open_but_shipped, order) is None


def test_a_storefront_unfulfilled_order_we_have_not_shipped_agrees(shop):
    order = order_in_state(OrderStatus.RELEASED)
    storefront_order(order, shop)

    assert rule(crosscheck.storefront_open_but_shipped, order) is None


def test_a_storefront_saying_fulfilled_agrees_with_our_shipment(shop):
    order = order_in_state(OrderStatus.SHIPPED)
    storefront_order(order, shop, fulfillment_status="fulfilled", ago=0.5 * HOUR)

    assert rule(crosscheck.storefront_open_but_shipped, order) is None


# --- the storefront cancelled it -------------------------------------------------------------


def test_storefront_cancelled_while_we_carry_on(shop):
    order = order_in_state(OrderStatus.RELEASED)
    said(order, shop, "orders/cancelled", {"id": order.external_id}, ago=3 * HOUR, status=InboundStatus.FAILED)

    assert rule(crosscheck.storefront_cancelled_we_did_not, order) == "storefront says cancelled 3 h ago; we have it released"


def test_storefront_cancelled_and_so_did_we(shop):
    order = order_in_state(OrderStatus.CANCELLED)
    said(order, shop, "orders/cancelled", {"id": order.external_id})

    assert rule(crosscheck.storefront_cancelled_we_did_not, order) is None


# --- the WMS shipped it ----------------------------------------------------------------------


def test_wms_shipped_what_we_do_not_have_shipped(wms):
    order = order_in_state(OrderStatus.RELEASED)
    wms_shipped(order, wms, status=InboundStatus.FAILED)

    assert (
        rule(crosscheck.wms_shipped_we_did_not, order)
        == f"WMS shipped it 2 h ago; we have shipment {first_shipment(order).pk} released"
    )


def test_wms_shipped_and_so_did_we(wms):
    order = order_in_state(OrderStatus.SHIPPED)
    wms_shipped(order, wms)

    assert rule(crosscheck.wms_shipped_we_did_not, order) is None


# --- we cancelled it -------------------------------------------------------------------------


def cancelled_after_release(wms, *, acknowledged: str | None):
    order = order_in_state(OrderStatus.RELEASED)
    told(order, wms, "pick_ticket.created", DeliveryStatus.DELIVERED, ago=5 * HOUR)
    order = lifecycle.order_cancel(order=order, reason="customer asked", actor=TEST_ACTOR)
    if acknowledged:
        told(order, wms, "pick_ticket.cancelled", acknowledged, ago=timedelta(0))
    return order


@pytest.mark.parametrize("acknowledged", [None, DeliveryStatus.PENDING, DeliveryStatus.DEAD])
def test_we_cancelled_and_the_wms_acknowledged_no_cancellation(wms, acknowledged):
    order = cancelled_after_release(wms, acknowledged=acknowledged)

    assert rule(crosscheck.cancelled_but_wms_carries_on, order) == "we cancelled it; WMS acknowledged no cancellation"


def test_we_cancelled_and_the_wms_picked_it_after(wms):
    order = cancelled_after_release(wms, acknowledged=DeliveryStatus.DELIVERED)
    shipment = first_shipment(order)
    said(order, wms, "shipment.picked", {"shipment_id": shipment.pk}, ago=timedelta(0), subject=f"shipment:{shipment.pk}")

    assert rule(crosscheck.cancelled_but_wms_carries_on, order) == "we cancelled it; WMS reported it picked 1 min ago, after"


def test_we_cancelled_and_the_wms_acknowledged_it(wms):
    order = cancelled_after_release(wms, acknowledged=DeliveryStatus.DELIVERED)
    shipment = first_shipment(order)
    # Picked before the cancellation: the WMS stopped when told.
    said(order, wms, "shipment.picked", {"shipment_id": shipment.pk}, ago=4 * HOUR, subject=f"shipment:{shipment.pk}")

    assert rule(crosscheck.cancelled_but_wms_carries_on, order) is None


# --- the ERP has not invoiced it -------------------------------------------------------------


def shipped_hours_ago(hours: float):
    order = order_in_state(OrderStatus.SHIPPED)
    Shipment.objects.filter(order=order).update(shipped_at=timezone.now() - timedelta(hours=hours))
    return order


def test_shipped_past_the_grace_period_and_not_invoiced(erp, settings):
    settings.INVOICE_GRACE_HOURS = 24
    order = shipped_hours_ago(30)

    assert (
        rule(crosscheck.shipped_not_invoiced, order)
        == f"ERP has no invoice for shipment {first_shipment(order).pk}, shipped 30 h ago"
    )


def test_shipped_within_the_grace_period_is_not_late(erp, settings):
    settings.INVOICE_GRACE_HOURS = 24
    order = shipped_hours_ago(20)

    assert rule(crosscheck.shipped_not_invoiced, order) is None


@pytest.mark.parametrize("for_the_shipment", [True, False])
def test_an_invoice_for_the_shipment_or_the_whole_order_settles_it(erp, settings, for_the_shipment):
    settings.INVOICE_GRACE_HOURS = 24
    order = shipped_hours_ago(30)
    event = said(order, erp, "invoice.posted", {"invoice_number": "INV-1"}, ago=2 * HOUR)
    Invoice.objects.create(
        system=erp,
        number="INV-1",
        order=order,
        shipment=first_shipment(order) if for_the_shipment else None,
        posted_at=event.occurred_at,
        event=event,
    )

    assert rule(crosscheck.shipped_not_invoiced, order) is None


def test_without_an_erp_nothing_is_late(settings):
    settings.INVOICE_GRACE_HOURS = 24
    order = shipped_hours_ago(30)

    assert rule(crosscheck.shipped_not_invoiced, order) is None


# --- a dead delivery -------------------------------------------------------------------------


def test_a_dead_delivery_was_never_acknowledged(erp, wms):
    order = order_in_state(OrderStatus.SHIPPED)
    told(order, erp, "item_fulfillment.created", DeliveryStatus.DEAD, attempts=8)
    told(order, wms, "pick_ticket.created", DeliveryStatus.DEAD, ago=3 * HOUR, attempts=8)

    assert (
        rule(crosscheck.dead_delivery, order)
        == "ERP (erp) never acknowledged item_fulfillment.created (dead after 8 attempts) (and 1 more)"
    )


def test_acknowledged_and_pending_deliveries_are_not_dead(erp, wms):
    order = order_in_state(OrderStatus.SHIPPED)
    told(order, erp, "item_fulfillment.created", DeliveryStatus.DELIVERED)
    told(order, wms, "pick_ticket.created", DeliveryStatus.PENDING, attempts=2)

    assert rule(crosscheck.dead_delivery, order) is None


# --- the storefront's address ----------------------------------------------------------------


def test_the_storefront_still_has_the_address_we_corrected(shop):
    order = make_order()
    storefront_order(order, shop)
    addresses.order_correct_address(
        order=order,
        address=Address(
            name="Ada Lovelace", line1="2 Elm St", city="Springfield", region="IL", postal_code="62701", country="US"
        ),
        actor=TEST_ACTOR,
    )
    order.refresh_from_db()

    assert (
        rule(crosscheck.storefront_address_differs, order)
        == "storefront still has the old address (line1); we corrected it 1 min ago"
    )


def test_the_storefront_s_address_differing_without_a_correction_says_so(shop):
    order = make_order()
    storefront_order(order, shop, address={"address1": "9 Far Rd", "city": "Springfield", "province_code": "IL", "zip": "62702"})

    assert rule(crosscheck.storefront_address_differs, order) == "storefront's address differs from ours (line1, postal code)"


def test_the_same_address_spelled_with_other_case_and_spaces_agrees(shop):
    order = make_order()
    storefront_order(
        order, shop, address={"address1": "1  MAIN st", "city": "springfield", "province_code": "IL", "zip": "627 01"}
    )

    assert rule(crosscheck.storefront_address_differs, order) is None


# --- the panel ------------------------------------------------------------------------------


def the_issue_s_order(shop, wms, erp):
    """Released here; the WMS says it shipped two hours ago (we could not apply it); the storefront shows it unfulfilled."""
    order = order_in_state(OrderStatus.RELEASED)
    storefront_order(order, shop)
    wms_shipped(order, wms, status=InboundStatus.FAILED)
    told(order, wms, "pick_ticket.created", DeliveryStatus.DELIVERED, ago=4 * HOUR)
    return order


def test_the_summary_names_each_disagreement_once(shop, wms, erp):
    order = the_issue_s_order(shop, wms, erp)

    check = crosscheck.cross_check(order)

    assert check.summary == (
        f"storefront says unfulfilled; WMS shipped it 2 h ago; we have shipment {first_shipment(order).pk} released"
    )
    assert [column.kind for column in check.columns] == ["storefront", "erp", "wms"]
    storefront, erp_column, wms_column = check.columns
    assert storefront.means == "unfulfilled" and storefront.said.topic == "orders/create"
    assert wms_column.means == f"shipment {first_shipment(order).pk} shipped"
    assert wms_column.acknowledged.message.type == "pick_ticket.created"
    assert erp_column.connected and erp_column.said is None


def test_systems_that_agree_show_no_warning(shop, wms, erp):
    order = order_in_state(OrderStatus.SHIPPED)
    storefront_order(order, shop, fulfillment_status="fulfilled", ago=0.5 * HOUR)
    wms_shipped(order, wms, ago=0.5 * HOUR)

    check = crosscheck.cross_check(order)

    assert check.disagreements == [] and check.summary == ""


def test_the_panel_is_registered_first_on_the_order_page_and_before_the_messages_on_the_exception_page():
    assert panels._providers["order"][:2] == [cross_system_panel, order_panel]
    exception_slot = panels._providers["exception"]
    assert exception_slot.index(cross_system_panel) < exception_slot.index(exception_panel)


def section(body: str) -> str:
    start = body.index('id="cross-system"')
    return body[start : body.index("</section>", start)]


def test_the_order_page_shows_the_disagreements_above_the_messages(client, coordinator, shop, wms, erp):
    order = the_issue_s_order(shop, wms, erp)
    client.force_login(coordinator)

    response = client.get(reverse("order-detail", args=[order.pk]))

    assert response.status_code == 200
    body = response.content.decode()
    assert body.index('id="cross-system"') < body.index('id="system-messages"')
    panel = section(body)
    assert 'id="cross-system-disagreements"' in panel
    assert "Storefront says unfulfilled; WMS shipped it 2 h ago; we have shipment" in panel
    assert "we could not apply it" in panel and "We say" in panel and "Released" in panel


def test_the_exception_page_shows_its_order_s_cross_system_view(client, coordinator, shop, wms, erp):
    order = the_issue_s_order(shop, wms, erp)
    exception = raise_on_order("sync_failure", order)
    client.force_login(coordinator)

    response = client.get(reverse("exception-detail", args=[exception.pk]))

    assert response.status_code == 200
    panel = section(response.content.decode())
    assert "Storefront says unfulfilled; WMS shipped it 2 h ago" in panel


def test_an_order_whose_systems_agree_says_so(client, coordinator):
    order = make_order()
    client.force_login(coordinator)

    panel = section(client.get(reverse("order-detail", args=[order.pk])).content.decode())

    assert "The systems agree with what we say." in panel and "cross-system-disagreements" not in panel
    assert panel.count("None connected.") == 3


def chatter(order, shop, wms, erp, count: int) -> None:
    """`count` events and `count` deliveries, spread over the three systems and several topics and subjects."""
    shipment = first_shipment(order)
    for n in range(count):
        system, topic = [(shop, "orders/updated"), (wms, "shipment.picked"), (erp, "credit_hold.placed")][n % 3]
        said(order, system, topic, {"shipment_id": shipment.pk, "id": order.external_id}, ago=timedelta(minutes=n + 1))
        told(order, [shop, wms, erp][n % 3], "pick_ticket.created", [DeliveryStatus.DEAD, DeliveryStatus.PENDING][n % 2])


def queries_for(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def test_the_order_page_reads_as_many_queries_for_two_events_as_for_twenty(
    client, coordinator, shop, wms, erp, django_assert_max_num_queries
):
    order = order_in_state(OrderStatus.RELEASED)
    client.force_login(coordinator)
    url = reverse("order-detail", args=[order.pk])
    chatter(order, shop, wms, erp, 2)
    small = queries_for(client, url)
    chatter(order, shop, wms, erp, 18)
    large = queries_for(client, url)

    assert large == small
    with django_assert_max_num_queries(small):
        client.get(url)


def test_the_panel_reads_a_fixed_number_of_queries(rf, coordinator, shop, wms, erp, django_assert_max_num_queries):
    order = order_in_state(OrderStatus.RELEASED)
    chatter(order, shop, wms, erp, 20)
    request = rf.get("/")
    request.user = coordinator

    with django_assert_max_num_queries(7):
        html = cross_system_panel(request, order)
    assert "never acknowledged pick_ticket.created" in html and 'id="cross-system-storefront"' in html
