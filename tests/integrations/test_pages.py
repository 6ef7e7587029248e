"""The order and exception pages list what the other systems told us about the order, and what we told them."""

import re
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from core import panels
from integrations.models import Delivery, DeliveryStatus, InboundEvent, InboundStatus, OutboxMessage
from integrations.panels import exception_panel, order_panel
from tests.factories import TEST_ACTOR, make_order, raise_on_order

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "detail"}


def add_events(order, system, count: int, *, topic: str = "shipment.updated", **fields) -> list[InboundEvent]:
    """`count` events, each received a minute after the one before; returned oldest first."""
    start = timezone.now() - timedelta(days=1)
    return InboundEvent.objects.bulk_create(
        [
            InboundEvent(
                system=system,
                sender_id=f"msg_{uuid.uuid4().hex}",
                topic=topic,
                body=b"{}",
                occurred_at=start + timedelta(minutes=n, seconds=-30),
                received_at=start + timedelta(minutes=n),
                order=order,
                **fields,
            )
            for n in range(count)
        ]
    )


def add_deliveries(order, system, count: int, *, type: str = "pick_ticket.created", **fields) -> list[Delivery]:
    """`count` messages with one delivery each, a minute apart; returned oldest first."""
    start = timezone.now() - timedelta(days=1)
    messages = OutboxMessage.objects.bulk_create(
        [OutboxMessage(type=type, payload={"n": n}, order=order, created_at=start + timedelta(minutes=n)) for n in range(count)]
    )
    return Delivery.objects.bulk_create([Delivery(message=m, system=system, created_at=m.created_at, **fields) for m in messages])


def row_ids(body: str, prefix: str) -> list[int]:
    return [int(pk) for pk in re.findall(rf'<tr id="{prefix}-(\d+)"', body)]


def highlighted(body: str) -> list[str]:
    return re.findall(r'<tr id="([a-z-]+-\d+)" class="highlight" aria-current="true"', body)


def page(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


def queries_for(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        page(client, url)
    return len(captured)


def order_url(order) -> str:
    return reverse("order-detail", args=[order.pk])


def exception_url(exception) -> str:
    return reverse("exception-detail", args=[exception.pk])


def test_the_panels_are_registered_at_start_up():
    assert order_panel in panels._providers["order"]
    assert exception_panel in panels._providers["exception"]


@pytest.mark.parametrize("role", ["coordinator", "ops_admin"])
def test_the_order_page_lists_what_each_system_said_and_acknowledged_newest_first(client, request, role, wms, erp):
    order = make_order()
    elsewhere = make_order()
    applied = add_events(order, wms, 1, topic="shipment.picked", status=InboundStatus.APPLIED)[0]
    failed = add_events(order, erp, 2, topic="invoice.posted", status=InboundStatus.FAILED, error="No shipment 99 on this order.")
    other = add_events(elsewhere, wms, 1)[0]
    now = timezone.now()
    delivered = add_deliveries(order, wms, 1, status=DeliveryStatus.DELIVERED, attempts=1, delivered_at=now)[0]
    dead = add_deliveries(
        order, erp, 1, type="item_fulfillment.created", status=DeliveryStatus.DEAD, attempts=8, last_error="HTTP 500"
    )[0]
    pending = add_deliveries(order, wms, 1, type="pick_ticket.cancelled", attempts=2, last_error="timed out")[0]
    # The creation order above is not the time order: give the three deliveries times of their own.
    for minutes, delivery in ((30, delivered), (20, dead), (10, pending)):
        Delivery.objects.filter(pk=delivery.pk).update(created_at=now - timedelta(minutes=minutes))
    client.force_login(request.getfixturevalue(role))

    body = page(client, order_url(order))

    assert row_ids(body, "inbound-event") == [failed[1].pk, failed[0].pk, applied.pk]
    assert other.pk not in row_ids(body, "inbound-event")
    assert row_ids(body, "delivery") == [pending.pk, dead.pk, delivered.pk]
    events = body[body.index('id="inbound-events"') : body.index('id="deliveries"')]
    assert "shipment.picked" in events and "invoice.posted" in events and "No shipment 99 on this order." in events
    assert ">Applied<" in events and ">Failed<" in events and ">wms<" in events and ">erp<" in events
    deliveries = body[body.index('id="deliveries"') :]
    assert "item_fulfillment.created" in deliveries and ">8<" in deliveries and "gave up: HTTP 500" in deliveries
    assert "acknowledged " + timezone.localtime(now).strftime("%d %b %H:%M:%S") in deliveries
    assert "next attempt" in deliveries and "last: timed out" in deliveries
    assert highlighted(body) == []
    assert "/admin/integrations/" not in body  # fewer than the cap: no link to the rest


def test_an_order_nothing_was_received_or_sent_for_says_so(client, coordinator):
    order = make_order()
    client.force_login(coordinator)

    body = page(client, order_url(order))

    assert "Nothing received or sent yet." in body
    assert 'id="inbound-events"' not in body and 'id="deliveries"' not in body


def test_sixty_of_each_show_the_newest_fifty_and_link_to_the_admin(client, coordinator, wms):
    order = make_order(external_id="BIG 60")
    events = add_events(order, wms, 60)
    deliveries = add_deliveries(order, wms, 60)
    client.force_login(coordinator)

    body = page(client, order_url(order))

    assert row_ids(body, "inbound-event") == [e.pk for e in reversed(events[10:])]
    assert row_ids(body, "delivery") == [d.pk for d in reversed(deliveries[10:])]
    assert 'href="/admin/integrations/inboundevent/?q=BIG%2060"' in body
    assert 'href="/admin/integrations/delivery/?q=BIG%2060"' in body


def test_the_admin_link_finds_the_order_s_rows(admin_client, wms):
    order = make_order()
    add_events(order, wms, 51)
    add_deliveries(order, wms, 51)

    for path in ("/admin/integrations/inboundevent/", "/admin/integrations/delivery/"):
        response = admin_client.get(path, {"q": order.external_id})
        assert response.status_code == 200
        assert response.context["cl"].result_count == 51


def test_the_order_page_reads_as_many_queries_for_five_rows_as_for_sixty(
    client, coordinator, wms, erp, django_assert_max_num_queries
):
    order = make_order()
    add_events(order, wms, 5)
    add_deliveries(order, erp, 5)
    client.force_login(coordinator)
    small = queries_for(client, order_url(order))
    add_events(order, erp, 55)
    add_deliveries(order, wms, 55)
    large = queries_for(client, order_url(order))

    assert large == small
    with django_assert_max_num_queries(small):
        page(client, order_url(order))


def test_the_panels_read_two_queries_for_an_order_and_at_most_four_for_an_exception(
    rf, coordinator, wms, erp, django_assert_max_num_queries
):
    order = make_order()
    events = add_events(order, wms, 60)
    deliveries = add_deliveries(order, erp, 60)
    exception = raise_on_order("sync_failure", order, detail={"inbound_event": events[0].pk, "delivery": deliveries[0].pk})
    request = rf.get("/")
    request.user = coordinator

    with django_assert_max_num_queries(2):
        html = order_panel(request, order)
    assert html.count('<tr id="inbound-event-') == 50 and html.count('<tr id="delivery-') == 50
    with django_assert_max_num_queries(4):
        html = exception_panel(request, exception)
    assert html.count('<tr id="inbound-event-') == 51 and html.count('<tr id="delivery-') == 51


def test_the_exception_page_lists_its_order_s_messages_and_marks_the_event_it_is_about(client, coordinator, wms):
    order = make_order()
    events = add_events(order, wms, 3, status=InboundStatus.FAILED, error="Unknown SKU")
    delivery = add_deliveries(order, wms, 1)[0]
    exception = raise_on_order("sync_failure", order, detail={"inbound_event": events[1].pk, "system": "wms"})
    client.force_login(coordinator)

    body = page(client, exception_url(exception))

    assert row_ids(body, "inbound-event") == [e.pk for e in reversed(events)]
    assert row_ids(body, "delivery") == [delivery.pk]
    assert highlighted(body) == [f"inbound-event-{events[1].pk}"]
    assert body.count("this exception</span>") == 1


def test_the_exception_page_marks_the_delivery_it_is_about(client, ops_admin, erp):
    order = make_order()
    deliveries = add_deliveries(order, erp, 3, status=DeliveryStatus.DEAD, attempts=8, last_error="HTTP 503")
    exception = raise_on_order("sync_failure", order, detail={"delivery": deliveries[0].pk, "system": "erp"})
    client.force_login(ops_admin)

    body = page(client, exception_url(exception))

    assert row_ids(body, "delivery") == [d.pk for d in reversed(deliveries)]
    assert highlighted(body) == [f"delivery-{deliveries[0].pk}"]
    assert "Nothing received yet." in body and "Nothing sent yet." not in body


def test_the_event_an_exception_is_about_is_listed_even_past_the_newest_fifty(client, coordinator, wms):
    order = make_order()
    events = add_events(order, wms, 60)
    exception = raise_on_order("sync_failure", order, detail={"inbound_event": events[0].pk})
    client.force_login(coordinator)

    body = page(client, exception_url(exception))

    listed = row_ids(body, "inbound-event")
    assert listed == [e.pk for e in reversed(events[10:])] + [events[0].pk]
    assert highlighted(body) == [f"inbound-event-{events[0].pk}"]
    assert "/admin/integrations/inboundevent/?q=" in body


def test_an_exception_without_an_order_shows_the_event_it_names(client, coordinator, wms):
    event = add_events(None, wms, 1, topic="orders/create", status=InboundStatus.FAILED, error="No line items.")[0]
    unrelated = add_events(None, wms, 1)[0]
    from exceptions.services import exception_raise

    exception = exception_raise(
        code="sync_failure",
        summary="wms sent orders/create we could not apply",
        actor=TEST_ACTOR,
        detail={"inbound_event": event.pk},
        dedupe_key="inbound:wms|topic:orders/create",
    )
    client.force_login(coordinator)

    body = page(client, exception_url(exception))

    assert row_ids(body, "inbound-event") == [event.pk]
    assert unrelated.pk not in row_ids(body, "inbound-event")
    assert highlighted(body) == [f"inbound-event-{event.pk}"]
    assert "No line items." in body


def test_an_exception_with_no_order_and_no_message_has_no_panel(client, coordinator):
    from exceptions.services import exception_raise

    exception = exception_raise(code="sync_failure", summary="something", actor=TEST_ACTOR, dedupe_key="x", detail={"x": 1})
    client.force_login(coordinator)

    body = page(client, exception_url(exception))

    assert 'id="system-messages"' not in body


def test_the_exception_page_s_htmx_body_keeps_the_panel(client, coordinator, wms):
    order = make_order()
    event = add_events(order, wms, 1)[0]
    exception = raise_on_order("sync_failure", order, detail={"inbound_event": event.pk})
    client.force_login(coordinator)

    response = client.get(exception_url(exception), **HTMX)

    body = response.content.decode()
    assert "<html" not in body and highlighted(body) == [f"inbound-event-{event.pk}"]


def test_the_exception_page_reads_as_many_queries_for_five_rows_as_for_sixty(
    client, coordinator, wms, erp, django_assert_max_num_queries
):
    order = make_order()
    events = add_events(order, wms, 5)
    add_deliveries(order, erp, 5)
    exception = raise_on_order("sync_failure", order, detail={"inbound_event": events[0].pk})
    client.force_login(coordinator)
    small = queries_for(client, exception_url(exception))
    add_events(order, erp, 55)
    add_deliveries(order, wms, 55)
    large = queries_for(client, exception_url(exception))

    assert large == small + 1  # the marked event is now past the newest fifty: one query fetches it
    with django_assert_max_num_queries(large):
        page(client, exception_url(exception))
