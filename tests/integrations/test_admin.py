"""The admin pages of integrations: found by order, system, status and type; dead deliveries re-queued."""

import pytest
from django.urls import reverse

from integrations.models import Delivery, DeliveryStatus, InboundEvent, OutboxMessage
from integrations.services.systems import system_ensure
from tests.factories import make_order

pytestmark = pytest.mark.django_db


@pytest.fixture
def records(db):
    wms = system_ensure(slug="wms", kind="wms", adapter="generic_wms", base_url="http://127.0.0.1:9/").system
    order, other = make_order(external_id="FIND-ME"), make_order(external_id="OTHER")
    for number, (target, status) in enumerate([(order, "failed"), (other, "applied")]):
        InboundEvent.objects.create(
            system=wms,
            sender_id=f"msg_{number}",
            topic="shipment.picked",
            body=b"{}",
            occurred_at=order.created_at,
            status=status,
            order=target,
        )
    dead = Delivery.objects.create(
        message=OutboxMessage.objects.create(type="pick_ticket.created", payload={}, order=order),
        system=wms,
        status=DeliveryStatus.DEAD,
        attempts=8,
    )
    delivered = Delivery.objects.create(
        message=OutboxMessage.objects.create(type="pick_ticket.created", payload={}, order=other),
        system=wms,
        status=DeliveryStatus.DELIVERED,
        attempts=1,
    )
    return {"order": order, "dead": dead, "delivered": delivered}


@pytest.mark.parametrize("query", ["?q=FIND-ME", "?status__exact=failed", "?topic=shipment.picked&q=FIND"])
def test_inbound_events_are_found_by_order_status_and_topic(admin_client, records, query):
    page = admin_client.get(reverse("admin:integrations_inboundevent_changelist") + query).content.decode()
    assert "msg_0" in page and "msg_1" not in page


@pytest.mark.parametrize("query", ["?q=FIND-ME", "?status__exact=dead", "?q=nonsense-that-is-no-uuid"])
def test_deliveries_are_found_by_order_and_status_and_a_bad_search_is_no_error(admin_client, records, query):
    response = admin_client.get(reverse("admin:integrations_delivery_changelist") + query)
    assert response.status_code == 200
    assert (str(records["dead"].system) in response.content.decode()) is (query != "?q=nonsense-that-is-no-uuid")


def test_a_dead_delivery_is_re_queued_from_the_admin_and_a_delivered_one_is_left(admin_client, records):
    url = reverse("admin:integrations_delivery_changelist")
    chosen = [records["dead"].pk, records["delivered"].pk]
    response = admin_client.post(url, {"action": "requeue", "_selected_action": chosen}, follow=True)
    assert "Re-queued 1 deliveries." in response.content.decode()
    records["dead"].refresh_from_db()
    records["delivered"].refresh_from_db()
    assert (records["dead"].status, records["dead"].attempts) == (DeliveryStatus.PENDING, 0)
    assert records["delivered"].status == DeliveryStatus.DELIVERED
    assert records["order"].events.filter(name="delivery_requeued", actor="user:admin").exists()


def test_an_inbound_event_shows_its_body_as_received(admin_client, records):
    event = InboundEvent.objects.get(sender_id="msg_0")
    page = admin_client.get(reverse("admin:integrations_inboundevent_change", args=[event.pk])).content.decode()
    assert "Body as received" in page and "{}" in page


def test_the_system_page_shows_the_secrets_by_their_ends_only(admin_client, records):
    wms = records["dead"].system
    page = admin_client.get(reverse("admin:integrations_externalsystem_change", args=[wms.pk])).content.decode()
    assert f"…{wms.secret[-4:]}" in page and wms.secret not in page
