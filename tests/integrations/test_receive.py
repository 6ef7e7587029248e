"""POST /integrations/<slug>/webhooks/: each answer of DESIGN §4, and what is (not) stored."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from integrations.models import InboundEvent, InboundStatus
from integrations.services.systems import system_ensure
from integrations.signatures import shopify_signature, standard_headers
from tests.integrations.conftest import envelope, post_shopify, post_standard, shopify_sample, webhook_url

pytestmark = pytest.mark.django_db


def test_a_signed_shopify_webhook_is_kept_byte_for_byte_and_answered_202(client, shop):
    body = shopify_sample()
    response = post_shopify(client, shop, body, webhook_id="b54557e4-bdd9-4b37-8a5f-bf7d70bcd043")
    assert response.status_code == 202
    event = InboundEvent.objects.get()
    assert response.json() == {"status": "accepted", "event": event.pk}
    assert bytes(event.body) == body
    assert (event.system, event.sender_id, event.topic, event.status) == (
        shop,
        "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
        "orders/create",
        InboundStatus.RECEIVED,
    )
    assert event.headers["X-Shopify-Topic"] == "orders/create"
    assert "Cookie" not in event.headers


def test_a_replayed_webhook_id_answers_200_and_stores_nothing_new(client, shop):
    body = shopify_sample()
    assert post_shopify(client, shop, body, webhook_id="same").status_code == 202
    for _ in range(3):
        response = post_shopify(client, shop, body, webhook_id="same")
        assert response.status_code == 200
        assert response.json()["status"] == "duplicate"
    assert InboundEvent.objects.count() == 1


@pytest.mark.parametrize(
    "headers",
    [
        {"HTTP_X_SHOPIFY_HMAC_SHA256": "bm90IHRoZSBzaWduYXR1cmU="},
        {"HTTP_X_SHOPIFY_HMAC_SHA256": ""},
        {"HTTP_X_SHOPIFY_WEBHOOK_ID": ""},
    ],
    ids=["bad signature", "missing signature", "missing webhook id"],
)
def test_unsigned_or_unnamed_shopify_webhooks_get_401_and_nothing_is_stored(client, shop, headers):
    response = post_shopify(client, shop, shopify_sample(), **headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "signature_rejected"
    assert not InboundEvent.objects.exists()


def test_a_body_changed_after_signing_is_refused(client, shop):
    body = shopify_sample()
    signature = shopify_signature(shop.secret, body)
    response = post_shopify(client, shop, body.replace(b'"quantity": 1', b'"quantity": 9'), HTTP_X_SHOPIFY_HMAC_SHA256=signature)
    assert response.status_code == 401
    assert not InboundEvent.objects.exists()


def test_an_inactive_system_gets_401(client, shop):
    shop.active = False
    shop.save()
    assert post_shopify(client, shop, shopify_sample()).status_code == 401
    assert not InboundEvent.objects.exists()


def test_an_unknown_slug_gets_404(client, db):
    response = client.post("/integrations/nobody/webhooks/", data=b"{}", content_type="application/json")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_system"


def test_a_body_over_one_mebibyte_gets_413_and_is_not_read(client, shop):
    body = b'{"pad": "' + b"x" * (1024 * 1024) + b'"}'
    response = post_shopify(client, shop, body)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert not InboundEvent.objects.exists()


def test_only_post_is_accepted(client, shop):
    assert client.get(webhook_url(shop)).status_code == 405


def test_a_standard_webhook_is_stored_with_its_type_and_the_senders_stamp(client, wms):
    occurred = datetime(2026, 11, 30, 9, 15, tzinfo=UTC)
    body = envelope("shipment.picked", {"shipment_id": 1}, occurred_at=occurred)
    assert post_standard(client, wms, body, message_id="msg_1").status_code == 202
    event = InboundEvent.objects.get()
    assert (event.sender_id, event.topic, event.occurred_at) == ("msg_1", "shipment.picked", occurred)


def test_a_stale_timestamp_gets_401(client, wms):
    body = envelope("shipment.picked", {"shipment_id": 1})
    response = post_standard(client, wms, body, at=datetime.now(UTC) - timedelta(minutes=6))
    assert response.status_code == 401
    assert "too old" in response.json()["error"]["message"]
    assert not InboundEvent.objects.exists()


def test_missing_standard_headers_get_401(client, wms):
    body = envelope("shipment.picked", {"shipment_id": 1})
    response = client.post(webhook_url(wms), data=body, content_type="application/json", HTTP_WEBHOOK_ID="msg_1")
    assert response.status_code == 401
    assert not InboundEvent.objects.exists()


def test_a_malformed_signature_header_gets_401_not_500(client, wms):
    body = envelope("shipment.picked", {"shipment_id": 1})
    response = post_standard(client, wms, body, HTTP_WEBHOOK_SIGNATURE="v1 no-comma")
    assert response.status_code == 401


def test_any_of_several_signatures_is_accepted(client, wms):
    body = envelope("shipment.picked", {"shipment_id": 1})
    good = standard_headers(wms.secret, message_id="msg_2", body=body)["webhook-signature"]
    response = post_standard(client, wms, body, message_id="msg_2", HTTP_WEBHOOK_SIGNATURE=f"v1,AAAA {good}")
    assert response.status_code == 202


def test_during_a_rotation_both_secrets_are_accepted_and_after_it_only_the_new(client, wms):
    old = wms.secret
    rotated = system_ensure(slug="wms", kind="wms", adapter="generic_wms", rotate_secret=True).system
    assert rotated.secret != old
    body = envelope("shipment.picked", {"shipment_id": 1})
    wms.secret = old
    assert post_standard(client, wms, body).status_code == 202
    wms.secret = rotated.secret
    assert post_standard(client, wms, body).status_code == 202
    system_ensure(slug="wms", kind="wms", adapter="generic_wms", retire_old_secret=True)
    wms.secret = old
    assert post_standard(client, wms, body).status_code == 401
    assert InboundEvent.objects.count() == 2


def test_malformed_json_that_is_signed_is_stored_for_the_record(client, wms):
    body = b'{"type": "shipment.picked", "data": '
    assert post_standard(client, wms, body).status_code == 202
    event = InboundEvent.objects.get()
    assert bytes(event.body) == body and event.topic == ""


def test_the_receipt_runs_a_bounded_number_of_queries(client, shop, django_assert_max_num_queries):
    body = shopify_sample()
    with django_assert_max_num_queries(4):
        assert post_shopify(client, shop, body).status_code == 202
    assert json.loads(bytes(InboundEvent.objects.get().body))["currency"] == "USD"
