"""Every row of the DESIGN §5 table, with the error shape it promises."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from exceptions.models import OPEN_STATUSES, FulfillmentException
from orders.models import IdempotencyKey, Order, OrderEvent, OrderStatus
from orders.services.idempotency import idempotency_prune

from .conftest import ORDER_BODY, order_body

pytestmark = pytest.mark.django_db
ORDERS = "/api/v1/orders/"


def error(response) -> dict:
    body = response.json()
    assert set(body) == {"error"} and {"code", "message", "fields"} <= set(body["error"]), body
    assert isinstance(body["error"]["fields"], dict), body
    return body["error"]


def test_a_clean_order_is_201_and_allocated_in_the_same_request(acme, catalogue):
    response = acme.post(ORDERS, order_body(), format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["external_id"], body["status"], body["priority"]) == ("1001", "allocated", "P3")
    assert body["customer"] == {"name": "Ada Lovelace", "email": "ada@example.com", "tier": "standard"}
    assert body["shipping_address"]["postal_code"] == "62701"
    line = body["lines"][0]
    assert (line["sku"], line["quantity"], line["unit_price"], line["quantity_allocated"]) == ("SKU-1", 2, "12.50", 2)
    assert body["shipments"] == [
        {
            "id": body["shipments"][0]["id"],
            "location": "WH-EAST",
            "status": "planned",
            "carrier": "",
            "tracking_number": "",
            "lines": [{"line": line["id"], "quantity": 2}],
        }
    ]
    assert body["open_exceptions"] == []
    assert body["allowed_actions"] == ["cancel", "change_address"]


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"lines": [{"sku": "NOPE-9", "quantity": 1, "uom": "each", "unit_price": "1.00"}]}, "unknown_sku"),
        ({"lines": [{"sku": "SKU-1", "quantity": 1, "uom": "pallet", "unit_price": "12.50"}]}, "uom_mismatch"),
        ({"lines": [{"sku": "SKU-1", "quantity": 1, "uom": "each", "unit_price": "9.00"}]}, "pricing_mismatch"),
        (
            {
                "shipping_address": {
                    "line1": "1 Main St",
                    "city": "Springfield",
                    "region": "IL",
                    "postal_code": "6270",
                    "country": "US",
                }
            },
            "invalid_address",
        ),
        (
            {"shipping_address": {"line1": "", "city": "Springfield", "region": "IL", "postal_code": "62701", "country": "US"}},
            "invalid_address",
        ),
    ],
)
def test_a_business_problem_is_accepted_held_and_explained(acme, catalogue, changes, code):
    response = acme.post(ORDERS, order_body(**changes), format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "on_hold"
    assert [e["code"] for e in body["open_exceptions"]] == [code]
    assert body["shipments"] == []


def test_each_problem_opens_its_own_exception(acme, catalogue):
    body = order_body(
        lines=[
            {"sku": "NOPE-1", "quantity": 1, "uom": "each", "unit_price": "1.00"},
            {"sku": "SKU-1", "quantity": 1, "uom": "each", "unit_price": "1.00"},
        ],
        shipping_address={"line1": "", "city": "", "region": "IL", "postal_code": "ABC", "country": "US"},
    )
    response = acme.post(ORDERS, body, format="json")

    codes = sorted(e["code"] for e in response.json()["open_exceptions"])
    assert codes == ["invalid_address", "invalid_address", "invalid_address", "pricing_mismatch", "unknown_sku"]


def test_a_case_ordered_line_is_priced_per_case(acme, catalogue):
    response = acme.post(
        ORDERS, order_body(lines=[{"sku": "SKU-1", "quantity": 1, "uom": "case", "unit_price": "150.00"}]), format="json"
    )
    body = response.json()
    assert body["status"] == "allocated"
    assert body["lines"][0]["quantity_allocated"] == 12


def test_replaying_a_key_gives_the_same_answer_and_another_body_is_422(acme, catalogue):
    first = acme.post(ORDERS, order_body(), format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    again = acme.post(ORDERS, order_body(), format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    other = acme.post(ORDERS, order_body(external_id="1002"), format="json", HTTP_IDEMPOTENCY_KEY="k-1")

    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first
    assert other.status_code == 422
    assert error(other)["code"] == "idempotency_key_reused"
    assert Order.objects.count() == 1


def test_an_idempotency_key_longer_than_255_characters_is_400_and_creates_nothing(acme, catalogue):
    longest = acme.post(ORDERS, order_body(), format="json", HTTP_IDEMPOTENCY_KEY="k" * 255)
    too_long = acme.post(ORDERS, order_body(external_id="1002"), format="json", HTTP_IDEMPOTENCY_KEY="k" * 256)

    assert longest.status_code == 201, longest.content
    assert too_long.status_code == 400
    assert error(too_long)["fields"] == {"Idempotency-Key": ["At most 255 characters; this one has 256."]}
    assert list(Order.objects.values_list("external_id", flat=True)) == ["1001"]
    assert IdempotencyKey.objects.count() == 1


def test_the_same_external_id_without_its_key_is_409_with_the_existing_id(acme, catalogue):
    first = acme.post(ORDERS, order_body(), format="json").json()

    same = acme.post(ORDERS, order_body(), format="json")

    assert same.status_code == 409
    assert error(same) == {
        "code": "duplicate_order",
        "message": f"You already sent order 1001; it is order {first['id']}.",
        "fields": {},
        "order_id": first["id"],
    }
    assert not FulfillmentException.objects.filter(type__code="duplicate_order").exists()


def test_a_409_duplicate_given_under_a_key_is_replayed_as_409(acme, catalogue):
    first = acme.post(ORDERS, order_body(), format="json").json()

    refused = acme.post(ORDERS, order_body(), format="json", HTTP_IDEMPOTENCY_KEY="late-key")
    again = acme.post(ORDERS, order_body(), format="json", HTTP_IDEMPOTENCY_KEY="late-key")

    assert (refused.status_code, again.status_code) == (409, 409)
    assert again.json() == refused.json() and error(again)["order_id"] == first["id"]
    assert again["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in refused
    assert Order.objects.count() == 1


def test_a_resent_external_id_with_another_body_also_asks_a_person_to_look(acme, catalogue):
    first = acme.post(ORDERS, order_body(), format="json").json()

    changed = acme.post(
        ORDERS, order_body(lines=[{"sku": "SKU-2", "quantity": 1, "uom": "each", "unit_price": "12.50"}]), format="json"
    )

    assert changed.status_code == 409 and error(changed)["order_id"] == first["id"]
    exception = FulfillmentException.objects.get(type__code="duplicate_order")
    assert exception.order_id == first["id"]
    assert exception.detail["resent_body"]["lines"][0]["sku"] == "SKU-2"
    assert Order.objects.count() == 1


def test_the_same_order_from_two_channels_is_accepted_but_held_as_a_suspected_duplicate(acme, globex, catalogue):
    first = acme.post(ORDERS, order_body(), format="json").json()

    second = globex.post(ORDERS, order_body(external_id="G-77"), format="json")

    assert second.status_code == 201
    body = second.json()
    assert body["status"] == "on_hold"
    exception = FulfillmentException.objects.get(type__code="duplicate_order")
    assert (exception.order_id, exception.detail["duplicate_of"]) == (body["id"], first["id"])
    assert exception.detail["duplicate_of_partner"] == "acme"
    # What globex reads of its exception does not name acme's order.
    seen = globex.get("/api/v1/exceptions/").json()["results"]
    assert [e["id"] for e in seen] == [exception.pk]
    assert "acme" not in json.dumps(seen) and "1001" not in json.dumps(seen)
    assert "another channel" in seen[0]["summary"]


def test_the_suspected_duplicate_links_to_its_twin_for_the_person_who_looks(acme, globex, catalogue, client):
    from core.roles import Role
    from tests.factories import user_with_role

    first = acme.post(ORDERS, order_body(), format="json").json()
    globex.post(ORDERS, order_body(external_id="G-77"), format="json")
    exception = FulfillmentException.objects.get(type__code="duplicate_order")
    client.force_login(user_with_role("cs", Role.CUSTOMER_SERVICE))

    page = client.get(f"/exceptions/{exception.pk}/")

    assert page.status_code == 200
    assert f'href="/orders/{first["id"]}/">acme / 1001</a>' in page.content.decode()


def test_ordering_again_after_cancelling_is_not_a_suspected_duplicate(acme, catalogue):
    first = acme.post(ORDERS, order_body(), format="json").json()
    assert acme.post(f"{ORDERS}{first['id']}/cancel/").status_code == 200

    again = acme.post(ORDERS, order_body(external_id="1002"), format="json")

    assert again.status_code == 201 and again.json()["status"] == "allocated"
    assert not FulfillmentException.objects.filter(type__code="duplicate_order").exists()


def test_the_same_order_twice_from_one_partner_names_the_first_one(acme, catalogue):
    acme.post(ORDERS, order_body(), format="json")

    acme.post(ORDERS, order_body(external_id="1002"), format="json")

    exception = FulfillmentException.objects.get(type__code="duplicate_order")
    assert exception.summary.startswith("Same customer, address and lines as order 1001 of ")


def test_old_keys_are_pruned_after_a_day(acme, catalogue):
    acme.post(ORDERS, order_body(), format="json", HTTP_IDEMPOTENCY_KEY="old")
    IdempotencyKey.objects.update(created_at=timezone.now() - timedelta(hours=25))

    assert idempotency_prune() == 1
    assert not IdempotencyKey.objects.exists()


def test_a_key_older_than_a_day_is_free_again_before_the_prune_runs(acme, catalogue):
    first = acme.post(ORDERS, order_body(), format="json", HTTP_IDEMPOTENCY_KEY="reused-next-day").json()
    IdempotencyKey.objects.update(created_at=timezone.now() - timedelta(hours=25))

    next_day = acme.post(ORDERS, order_body(external_id="1002"), format="json", HTTP_IDEMPOTENCY_KEY="reused-next-day")

    assert next_day.status_code == 201 and "Idempotent-Replayed" not in next_day
    assert next_day.json()["id"] != first["id"] and next_day.json()["external_id"] == "1002"
    stored = IdempotencyKey.objects.get()
    assert json.loads(bytes(stored.response))["id"] == next_day.json()["id"] and stored.created_at > timezone.now() - timedelta(
        minutes=1
    )


# --- reading -------------------------------------------------------------------------


def test_list_is_the_partners_own_orders_filtered_and_paginated(acme, globex, catalogue):
    for n in range(3):
        acme.post(ORDERS, order_body(external_id=f"A-{n}"), format="json")
    globex.post(ORDERS, order_body(external_id="G-1", customer={"name": "Other", "email": "o@example.com"}), format="json")
    acme.post(f"{ORDERS}{Order.objects.get(external_id='A-0').pk}/cancel/")

    everything = acme.get(ORDERS).json()
    assert set(everything) == {"count", "count_exact", "next", "previous", "results"}
    assert everything["count"] == 3
    assert [o["external_id"] for o in acme.get(ORDERS, {"status": "cancelled"}).json()["results"]] == ["A-0"]
    assert acme.get(ORDERS, {"external_id": "A-2"}).json()["count"] == 1
    later = (timezone.now() + timedelta(minutes=1)).isoformat()
    assert acme.get(ORDERS, {"updated_after": later}).json()["count"] == 0
    paged = acme.get(ORDERS, {"page_size": 2}).json()
    assert len(paged["results"]) == 2 and paged["next"]


def test_another_partners_order_is_404_never_403(acme, globex, catalogue):
    theirs = globex.post(ORDERS, order_body(external_id="G-1"), format="json").json()

    for response in (
        acme.get(f"{ORDERS}{theirs['id']}/"),
        acme.post(f"{ORDERS}{theirs['id']}/cancel/"),
        acme.patch(f"{ORDERS}{theirs['id']}/shipping-address/", {"line1": "x"}, format="json"),
        acme.post(f"/api/v1/shipments/{theirs['shipments'][0]['id']}/events/", {"type": "picked"}, format="json"),
    ):
        assert response.status_code == 404
        assert error(response)["code"] == "not_found"
    assert Order.objects.get(pk=theirs["id"]).status == OrderStatus.ALLOCATED


def test_staff_read_every_order_through_the_session(client, acme, globex, catalogue, ops_admin):
    acme.post(ORDERS, order_body(external_id="A-1"), format="json")
    globex.post(ORDERS, order_body(external_id="G-1"), format="json")
    client.force_login(ops_admin)

    assert client.get(ORDERS).json()["count"] == 2
    refused = client.post(ORDERS, order_body(), content_type="application/json")
    assert refused.status_code == 403 and error(refused)["code"] == "permission_denied"


# --- changing -----------------------------------------------------------------------


def test_cancel_is_200_then_409_when_no_longer_cancellable(acme, catalogue):
    order = acme.post(ORDERS, order_body(), format="json").json()

    cancelled = acme.post(f"{ORDERS}{order['id']}/cancel/")
    again = acme.post(f"{ORDERS}{order['id']}/cancel/")

    assert cancelled.status_code == 200
    assert (cancelled.json()["status"], cancelled.json()["allowed_actions"]) == ("cancelled", [])
    assert again.status_code == 409 and error(again)["code"] == "illegal_transition"


def test_cancelling_a_released_order_tells_the_warehouse_and_an_unreleased_one_does_not(acme, catalogue):
    from orders.services.lifecycle import order_release
    from tests.factories import TEST_ACTOR

    released = acme.post(ORDERS, order_body(external_id="R-1"), format="json").json()
    order_release(order=Order.objects.get(pk=released["id"]), actor=TEST_ACTOR)
    allocated = acme.post(
        ORDERS, order_body(external_id="A-1", customer={"name": "B", "email": "b@example.com"}), format="json"
    ).json()

    assert acme.post(f"{ORDERS}{released['id']}/cancel/").status_code == 200
    assert acme.post(f"{ORDERS}{allocated['id']}/cancel/").status_code == 200

    sent = OrderEvent.objects.filter(kind=OrderEvent.Kind.OUTBOUND, name="cancel_to_wms")
    assert [(m.order_id, m.data["shipments"]) for m in sent] == [
        (released["id"], [{"shipment": released["shipments"][0]["id"], "location": catalogue["east"].pk, "cancelled": True}])
    ]


def test_cancelling_a_line_of_a_released_order_tells_the_warehouse_which_units_to_drop(acme, catalogue):
    from orders.services.lifecycle import order_line_cancel, order_release
    from tests.factories import TEST_ACTOR

    two_lines = [
        {"sku": "SKU-1", "quantity": 2, "uom": "each", "unit_price": "12.50"},
        {"sku": "SKU-3", "quantity": 1, "uom": "each", "unit_price": "12.50"},
    ]
    order = acme.post(ORDERS, order_body(lines=two_lines), format="json").json()
    stored = order_release(order=Order.objects.get(pk=order["id"]), actor=TEST_ACTOR)

    order_line_cancel(order=stored, line=stored.lines.get(line_number=2), reason="discontinued", actor=TEST_ACTOR)

    message = OrderEvent.objects.get(kind=OrderEvent.Kind.OUTBOUND, name="cancel_to_wms")
    assert message.data == {
        "reason": "discontinued",
        "shipments": [
            {
                "shipment": order["shipments"][0]["id"],
                "location": catalogue["east"].pk,
                "cancelled": False,
                "lines": [{"line": order["lines"][1]["id"], "quantity": 1}],
            }
        ],
    }


def test_address_change_before_release_is_revalidated(acme, catalogue):
    order = acme.post(ORDERS, order_body(), format="json").json()
    url = f"{ORDERS}{order['id']}/shipping-address/"

    bad = acme.patch(url, {"postal_code": "ZZZ"}, format="json")
    assert bad.status_code == 200
    assert bad.json()["status"] == "on_hold" and [e["code"] for e in bad.json()["open_exceptions"]] == ["invalid_address"]

    good = acme.patch(url, {"postal_code": "62704"}, format="json")
    assert good.status_code == 200
    body = good.json()
    assert (body["shipping_address"]["postal_code"], body["status"], body["open_exceptions"]) == ("62704", "allocated", [])


TORONTO = {"line1": "290 Bremner Blvd", "city": "Toronto", "region": "ON", "postal_code": "M5V 3L9", "country": "CA"}


def _us_only_east_and_a_canadian_site(catalogue):
    from tests.factories import LocationFactory, stock

    catalogue["east"].ships_to = ["US"]
    catalogue["east"].save()
    toronto = LocationFactory(code="WH-TORONTO", country="CA", ships_to=["CA"])
    stock(toronto, catalogue["SKU-1"], 10)
    return toronto


def test_a_new_destination_is_planned_again_and_the_old_reservation_given_back(acme, catalogue):
    from inventory.models import StockLevel
    from orders.models import RoutingDecision

    toronto = _us_only_east_and_a_canadian_site(catalogue)
    order = acme.post(ORDERS, order_body(), format="json").json()
    assert [s["location"] for s in order["shipments"]] == ["WH-EAST"]

    response = acme.patch(f"{ORDERS}{order['id']}/shipping-address/", TORONTO, format="json")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "allocated" and body["open_exceptions"] == []
    assert [(s["location"], s["status"]) for s in body["shipments"] if s["status"] != "cancelled"] == [("WH-TORONTO", "planned")]
    reserved = dict(StockLevel.objects.filter(sku=catalogue["SKU-1"]).values_list("location__code", "reserved"))
    assert reserved == {"WH-EAST": 0, "WH-TORONTO": 2}
    latest = RoutingDecision.objects.filter(order_id=order["id"]).latest("at")
    assert latest.plan[0]["location_id"] == toronto.pk
    assert OrderEvent.objects.filter(
        order_id=order["id"], name="reallocate", data__reason="the shipping address moved to M5V 3L9 CA"
    ).exists()


def test_a_new_destination_no_site_ships_to_gives_the_stock_back_and_backorders(acme, catalogue):
    from inventory.models import StockLevel

    catalogue["east"].ships_to = ["US"]
    catalogue["east"].save()
    order = acme.post(ORDERS, order_body(), format="json").json()

    response = acme.patch(f"{ORDERS}{order['id']}/shipping-address/", TORONTO, format="json")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "backordered"
    assert [e["code"] for e in body["open_exceptions"]] == ["out_of_stock"]
    assert StockLevel.objects.get(location=catalogue["east"], sku=catalogue["SKU-1"]).reserved == 0


def test_an_address_change_that_keeps_the_destination_keeps_the_plan(acme, catalogue):
    from orders.models import RoutingDecision

    _us_only_east_and_a_canadian_site(catalogue)
    order = acme.post(ORDERS, order_body(), format="json").json()

    response = acme.patch(
        f"{ORDERS}{order['id']}/shipping-address/", {"line2": "Back door", "postal_code": " 62701 "}, format="json"
    )

    assert response.status_code == 200
    assert [s["id"] for s in response.json()["shipments"]] == [s["id"] for s in order["shipments"]]
    assert RoutingDecision.objects.filter(order_id=order["id"]).count() == 1


def test_address_change_after_release_is_202_and_asks_a_person(acme, catalogue):
    from orders.services.lifecycle import order_release
    from tests.factories import TEST_ACTOR

    order = acme.post(ORDERS, order_body(), format="json").json()
    order_release(order=Order.objects.get(pk=order["id"]), actor=TEST_ACTOR)

    response = acme.patch(f"{ORDERS}{order['id']}/shipping-address/", {"line1": "9 Elm St"}, format="json")

    assert response.status_code == 202
    body = response.json()
    assert body["shipping_address"]["line1"] == "1 Main St"  # unchanged until the warehouse confirms
    assert [e["code"] for e in body["open_exceptions"]] == ["address_change_after_release"]


def test_a_second_address_change_after_release_is_what_the_person_sees(acme, catalogue, client, service_agent):
    from django.urls import reverse

    from orders.services.lifecycle import order_release
    from tests.factories import TEST_ACTOR

    order = acme.post(ORDERS, order_body(), format="json").json()
    order_release(order=Order.objects.get(pk=order["id"]), actor=TEST_ACTOR)
    url = f"{ORDERS}{order['id']}/shipping-address/"
    assert acme.patch(url, {"line1": "9 Elm St", "line2": "Apt 1"}, format="json").status_code == 202

    assert acme.patch(url, {"line1": "12 Oak Ave", "postal_code": "62704"}, format="json").status_code == 202

    exception = FulfillmentException.objects.get(type__code="address_change_after_release")
    # Each change is partial: the person carries out every field asked for, at its latest value.
    assert (exception.occurrences, exception.detail) == (
        2,
        {"requested": {"line1": "12 Oak Ave", "line2": "Apt 1", "postal_code": "62704"}},
    )
    client.force_login(service_agent)
    page = client.get(reverse("exception-detail", args=[exception.pk])).content.decode()
    assert "Details of the latest occurrence" in page and "12 Oak Ave" in page


def test_address_change_once_shipped_is_409_and_changes_nothing(acme, catalogue):
    from orders.services.lifecycle import order_release
    from tests.factories import TEST_ACTOR

    order = acme.post(ORDERS, order_body(), format="json").json()
    order_release(order=Order.objects.get(pk=order["id"]), actor=TEST_ACTOR)
    events = f"/api/v1/shipments/{order['shipments'][0]['id']}/events/"
    for event in ({"type": "picked"}, {"type": "packed"}, {"type": "shipped", "carrier": "UPS", "tracking_number": "1Z9"}):
        assert acme.post(events, event, format="json").status_code == 200
    assert Order.objects.get(pk=order["id"]).status == OrderStatus.SHIPPED

    response = acme.patch(f"{ORDERS}{order['id']}/shipping-address/", {"line1": "9 Elm St"}, format="json")

    assert response.status_code == 409
    assert error(response)["code"] == "illegal_transition"
    assert Order.objects.get(pk=order["id"]).ship_line1 == "1 Main St"
    assert not FulfillmentException.objects.filter(type__code="address_change_after_release").exists()


def test_address_change_of_a_cancelled_order_is_409(acme, catalogue):
    order = acme.post(ORDERS, order_body(), format="json").json()
    acme.post(f"{ORDERS}{order['id']}/cancel/")

    response = acme.patch(f"{ORDERS}{order['id']}/shipping-address/", {"line1": "9 Elm St"}, format="json")

    assert response.status_code == 409
    assert Order.objects.get(pk=order["id"]).ship_line1 == "1 Main St"


def test_availability_per_location_and_in_total(acme, catalogue):
    acme.post(ORDERS, order_body(), format="json")

    response = acme.get("/api/v1/inventory/availability/", {"sku": ["SKU-1", "SKU-2", "GHOST"]})

    assert response.status_code == 200
    by_sku = {row["sku"]: row for row in response.json()["skus"]}
    assert by_sku["SKU-1"]["available"] == 98
    assert by_sku["SKU-1"]["locations"] == [{"location": "WH-EAST", "on_hand": 100, "reserved": 2, "available": 98}]
    assert by_sku["SKU-2"]["available"] == 105
    assert (by_sku["GHOST"]["known"], by_sku["GHOST"]["available"], by_sku["GHOST"]["locations"]) == (False, 0, [])
    assert error(acme.get("/api/v1/inventory/availability/"))["fields"] == {"sku": ["Required."]}
    too_many = acme.get("/api/v1/inventory/availability/", {"sku": [f"SKU-{n}" for n in range(101)]})
    assert too_many.status_code == 400 and error(too_many)["fields"] == {"sku": ["At most 100; this asks for 101."]}


def test_availability_does_not_promise_a_sku_the_intake_holds_as_unknown(acme, catalogue):
    sku = catalogue["SKU-3"]
    sku.active = False
    sku.save(update_fields=["active"])

    ordered = acme.post(
        ORDERS, order_body(lines=[{"sku": "SKU-3", "quantity": 1, "uom": "each", "unit_price": "12.50"}]), format="json"
    ).json()
    row = acme.get("/api/v1/inventory/availability/", {"sku": "SKU-3"}).json()["skus"][0]

    assert [e["code"] for e in ordered["open_exceptions"]] == ["unknown_sku"]
    assert (row["known"], row["available"], row["locations"]) == (False, 0, [])


def test_shipment_events_drive_the_shipment_and_illegal_ones_are_409(acme, catalogue):
    from orders.services.lifecycle import order_release
    from tests.factories import TEST_ACTOR

    order = acme.post(ORDERS, order_body(), format="json").json()
    shipment = order["shipments"][0]["id"]
    events = f"/api/v1/shipments/{shipment}/events/"
    assert acme.post(events, {"type": "packed"}, format="json").status_code == 409  # not even released
    too_early = acme.post(events, {"type": "label_failed", "reason": "No such street"}, format="json")
    assert too_early.status_code == 409 and error(too_early)["code"] == "illegal_transition"
    order_release(order=Order.objects.get(pk=order["id"]), actor=TEST_ACTOR)

    assert acme.post(events, {"type": "picked"}, format="json").json()["status"] == "picked"
    assert (
        acme.post(events, {"type": "label_failed", "reason": "Postal code unknown to carrier"}, format="json").status_code == 200
    )
    assert acme.post(events, {"type": "packed"}, format="json").json()["status"] == "packed"
    shipped = acme.post(events, {"type": "shipped", "carrier": "UPS", "tracking_number": "1Z1"}, format="json").json()
    assert (shipped["status"], shipped["carrier"], shipped["tracking_number"]) == ("shipped", "UPS", "1Z1")
    assert acme.post(events, {"type": "picked"}, format="json").status_code == 409
    assert acme.post(events, {"type": "delivered"}, format="json").json()["status"] == "delivered"
    assert Order.objects.get(pk=order["id"]).status == OrderStatus.DELIVERED
    assert FulfillmentException.objects.get(type__code="label_failure").shipment_id == shipment
    too_late = acme.post(events, {"type": "label_failed", "reason": "Printer jam"}, format="json")
    assert too_late.status_code == 409 and FulfillmentException.objects.filter(type__code="label_failure").count() == 1
    missing = acme.post(events, {"type": "shipped"}, format="json")
    assert missing.status_code == 400 and set(error(missing)["fields"]) == {"carrier", "tracking_number"}


def test_a_short_pick_event_runs_the_playbook(acme, catalogue):
    from orders.services.lifecycle import order_release
    from tests.factories import TEST_ACTOR

    order = acme.post(
        ORDERS, order_body(lines=[{"sku": "SKU-2", "quantity": 3, "uom": "each", "unit_price": "12.50"}]), format="json"
    ).json()
    order_release(order=Order.objects.get(pk=order["id"]), actor=TEST_ACTOR)
    line = order["lines"][0]["id"]

    response = acme.post(
        f"/api/v1/shipments/{order['shipments'][0]['id']}/events/",
        {"type": "short_picked", "lines": [{"line": line, "picked": 1}]},
        format="json",
    )

    assert response.status_code == 200
    shipments = acme.get(f"{ORDERS}{order['id']}/").json()["shipments"]
    assert [(s["location"], s["status"], s["lines"][0]["quantity"]) for s in shipments] == [
        ("WH-EAST", "picked", 1),
        ("WH-WEST", "released", 2),
    ]
    # The warehouse system hears of the remainder as it heard of the first shipment.
    messages = OrderEvent.objects.filter(order_id=order["id"], kind=OrderEvent.Kind.OUTBOUND, name="release_to_wms").order_by(
        "id"
    )
    assert [[s["shipment"] for s in m.data["shipments"]] for m in messages] == [[shipments[0]["id"]], [shipments[1]["id"]]]
    assert messages[1].data["shipments"][0]["lines"] == [{"line": line, "quantity": 2}]


@pytest.mark.parametrize(
    "event",
    [
        {"type": "picked", "lines": [{"line": "LINE", "picked": 0}]},
        {"type": "packed", "carrier": "UPS", "tracking_number": "1Z1"},
        {"type": "shipped", "carrier": "UPS", "tracking_number": "1Z1", "reason": "late"},
    ],
    ids=["a picked event with short lines", "a packed event with a carrier", "a shipped event with a reason"],
)
def test_an_event_carrying_fields_of_another_event_type_is_400_and_changes_nothing(acme, catalogue, event):
    from orders.services.lifecycle import order_release
    from tests.factories import TEST_ACTOR

    order = acme.post(ORDERS, order_body(), format="json").json()
    order_release(order=Order.objects.get(pk=order["id"]), actor=TEST_ACTOR)
    if "lines" in event:
        event["lines"][0]["line"] = order["lines"][0]["id"]
    extra = set(event) - {"type", "carrier", "tracking_number"} if event["type"] == "shipped" else set(event) - {"type"}

    response = acme.post(f"/api/v1/shipments/{order['shipments'][0]['id']}/events/", event, format="json")

    assert response.status_code == 400
    assert set(error(response)["fields"]) == extra
    assert [s["status"] for s in acme.get(f"{ORDERS}{order['id']}/").json()["shipments"]] == ["released"]


@pytest.mark.parametrize("value", ["4.7", "4e0", "x"])
def test_the_exceptions_order_filter_takes_only_an_order_id(acme, catalogue, value):
    response = acme.get("/api/v1/exceptions/", {"order": value})

    assert response.status_code == 400 and list(error(response)["fields"]) == ["order"]


def test_exceptions_list_staff_see_all_partners_their_own(client, acme, globex, catalogue, ops_admin):
    acme.post(
        ORDERS,
        order_body(external_id="A-1", lines=[{"sku": "NOPE", "quantity": 1, "uom": "each", "unit_price": "1"}]),
        format="json",
    )
    globex.post(
        ORDERS,
        order_body(
            external_id="G-1",
            customer={"name": "G", "email": "g@example.com"},
            lines=[{"sku": "NOPE", "quantity": 1, "uom": "each", "unit_price": "1"}],
        ),
        format="json",
    )
    client.force_login(ops_admin)

    mine = acme.get("/api/v1/exceptions/").json()
    assert [e["order_external_id"] for e in mine["results"]] == ["A-1"]
    assert client.get("/api/v1/exceptions/").json()["count"] == 2
    assert acme.get("/api/v1/exceptions/", {"code": "unknown_sku"}).json()["count"] == 1
    assert acme.post("/api/v1/exceptions/", {}, format="json").status_code == 405


# --- bad input ------------------------------------------------------------------------

BAD = [
    ("malformed JSON", '{"external_id": "1", ', "parse_error", None),
    ("wrong types", json.dumps(order_body(placed_at="yesterday", lines="many")), "validation_error", {"placed_at", "lines"}),
    (
        "zero quantity",
        json.dumps(order_body(lines=[{"sku": "SKU-1", "quantity": 0, "uom": "each", "unit_price": "1"}])),
        "validation_error",
        {"lines"},
    ),
    (
        "negative quantity",
        json.dumps(order_body(lines=[{"sku": "SKU-1", "quantity": -2, "uom": "each", "unit_price": "1"}])),
        "validation_error",
        {"lines"},
    ),
    (
        "10,000 lines",
        json.dumps(order_body(lines=[{"sku": "SKU-1", "quantity": 1, "uom": "each", "unit_price": "1"}] * 10_000)),
        "validation_error",
        {"lines"},
    ),
    ("unknown field", json.dumps(order_body(gift_wrap=True)), "validation_error", {"gift_wrap"}),
    ("unknown nested field", json.dumps(order_body(customer={"name": "A", "vip": True})), "validation_error", {"customer"}),
    (
        "unknown field in a line",
        json.dumps(order_body(lines=[{"sku": "SKU-1", "quantity": 1, "uom": "each", "unit_price": "1", "gift": 1}])),
        "validation_error",
        {"lines"},
    ),
    (
        "missing fields",
        json.dumps({"external_id": "1"}),
        "validation_error",
        {"placed_at", "currency", "customer", "shipping_address", "lines"},
    ),
    ("JSON nested deeper than it can be read", "[" * 5000 + "]" * 5000, "parse_error", None),
    (
        "an email longer than 254 characters",
        json.dumps(order_body(customer={"name": "A", "email": "a" * 250 + "@example.com"})),
        "validation_error",
        {"customer"},
    ),
    # Python reads "1_0" as 10: a partner's typo must not become a quantity or a price.
    (
        "digit grouping in a quantity",
        json.dumps(order_body(lines=[{"sku": "SKU-1", "quantity": "1_0", "uom": "each", "unit_price": "1"}])),
        "validation_error",
        {"lines"},
    ),
    (
        "digit grouping in a price",
        json.dumps(order_body(lines=[{"sku": "SKU-1", "quantity": 1, "uom": "each", "unit_price": "1_0"}])),
        "validation_error",
        {"lines"},
    ),
]


@pytest.mark.parametrize(("what", "raw", "code", "fields"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_400_in_the_error_shape_and_creates_nothing(acme, catalogue, what, raw, code, fields):
    response = acme.post(ORDERS, raw, content_type="application/json", HTTP_IDEMPOTENCY_KEY=f"bad-{what}")

    assert response.status_code == 400
    body = error(response)
    assert body["code"] == code
    if fields:
        assert fields <= set(body["fields"])
    assert not Order.objects.exists() and not IdempotencyKey.objects.exists()


def test_an_email_longer_than_254_characters_is_named_where_the_partner_sent_it(acme, catalogue):
    response = acme.post(ORDERS, order_body(customer={"name": "A", "email": "a" * 250 + "@example.com"}), format="json")

    assert response.status_code == 400
    assert list(error(response)["fields"]) == ["customer"] and list(error(response)["fields"]["customer"]) == ["email"]


def test_more_base_units_than_can_be_stored_is_400_about_that_line_and_creates_nothing(acme, catalogue):
    from tests.factories import SkuFactory

    SkuFactory(code="BOLT", unit_price="50.00", case_pack=5000)
    lines = [ORDER_BODY["lines"][0], {"sku": "BOLT", "quantity": 500_000, "uom": "case", "unit_price": "50.00"}]

    response = acme.post(ORDERS, order_body(lines=lines), format="json")

    assert response.status_code == 400
    assert error(response)["fields"] == {
        "lines": {"1": {"quantity": ["500,000 case of BOLT is 2,500,000,000 base units; a line holds at most 2,147,483,647."]}}
    }
    assert not Order.objects.exists()


@pytest.mark.parametrize("path", [ORDERS, "ORDER/shipping-address/", "SHIPMENT/events/"])
def test_json_nested_deeper_than_it_can_be_read_is_400_everywhere(acme, catalogue, path):
    order = acme.post(ORDERS, order_body(), format="json").json()
    path = path.replace("ORDER/", f"{ORDERS}{order['id']}/").replace(
        "SHIPMENT/", f"/api/v1/shipments/{order['shipments'][0]['id']}/"
    )
    method = acme.patch if "shipping-address" in path else acme.post

    response = method(path, '{"a": ' * 3000 + "1" + "}" * 3000, content_type="application/json")

    assert response.status_code == 400 and error(response)["code"] == "parse_error"


def test_a_nul_in_the_token_is_401_and_in_the_idempotency_key_400(acme, catalogue):
    anonymous = APIClient()
    anonymous.credentials(HTTP_AUTHORIZATION="Token abc\x00def")
    assert anonymous.get(ORDERS).status_code == 401

    response = acme.post(ORDERS, order_body(), format="json", HTTP_IDEMPOTENCY_KEY="key\x00one")
    assert response.status_code == 400 and list(error(response)["fields"]) == ["Idempotency-Key"]
    assert not Order.objects.exists()


def test_an_order_total_beyond_what_is_stored_is_400_about_the_lines(acme, catalogue):
    big = order_body(lines=[{"sku": "SKU-1", "quantity": 1_000_000, "uom": "each", "unit_price": "9999999.99"}])

    response = acme.post(ORDERS, big, format="json")

    assert response.status_code == 400
    assert error(response)["code"] == "validation_error"
    assert set(error(response)["fields"]) == {"lines"}  # not total_amount, which the partner never sent
    assert not Order.objects.exists()


def test_a_5_mb_body_is_413(acme, catalogue):
    raw = json.dumps(order_body(external_id="x" * (5 * 1024 * 1024)))
    response = acme.post(ORDERS, raw, content_type="application/json")
    assert response.status_code == 413
    assert error(response)["code"] == "payload_too_large"
    assert not Order.objects.exists()


@pytest.mark.parametrize("header", [None, "Token wrong", "Bearer abc"])
def test_a_missing_or_wrong_token_is_401(catalogue, header):
    client = APIClient()
    if header:
        client.credentials(HTTP_AUTHORIZATION=header)
    response = client.post(ORDERS, order_body(), format="json")
    assert response.status_code == 401
    assert error(response)["code"] in ("not_authenticated", "authentication_failed")
    assert not Order.objects.exists()


def test_a_partner_switched_off_is_401_until_switched_on_again(acme, catalogue):
    acme.partner.active = False
    acme.partner.save(update_fields=["active"])

    refused = acme.post(ORDERS, order_body(), format="json")
    listing = acme.get(ORDERS)

    assert (refused.status_code, listing.status_code) == (401, 401)
    assert error(refused)["code"] == "authentication_failed"
    assert not Order.objects.exists()
    acme.partner.active = True
    acme.partner.save(update_fields=["active"])
    assert acme.post(ORDERS, order_body(), format="json").status_code == 201


def test_throttling_per_partner_answers_429_with_retry_after(acme, catalogue, monkeypatch):
    from django.core.cache import cache

    from core.api import PartnerRateThrottle

    monkeypatch.setattr(PartnerRateThrottle, "THROTTLE_RATES", {"partner": "3/min"})
    monkeypatch.setattr(PartnerRateThrottle, "timer", lambda self: 1_800_000_030.0)  # 30 s into a minute
    # The budget lives in Redis under the partner's id and the minute; an earlier run may have left one there.
    throttle = PartnerRateThrottle()
    cache.delete(
        throttle.window_key(throttle.cache_format % {"scope": "partner", "ident": f"partner-{acme.partner.pk}"}, throttle.timer())
    )

    answers = [acme.get(ORDERS) for _ in range(4)]

    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[-1]["Retry-After"] == "30"  # the rest of the minute
    assert error(answers[-1])["code"] == "throttled"


def test_a_throttle_window_counts_in_the_cache_and_expires_after_its_period(acme, monkeypatch):
    import redis
    from django.conf import settings
    from django.core.cache import cache

    from core.api import PartnerRateThrottle

    monkeypatch.setattr(PartnerRateThrottle, "THROTTLE_RATES", {"partner": "100/min"})
    monkeypatch.setattr(PartnerRateThrottle, "timer", lambda self: 1_800_000_090.0)
    throttle = PartnerRateThrottle()
    window = throttle.window_key(
        throttle.cache_format % {"scope": "partner", "ident": f"partner-{acme.partner.pk}"}, throttle.timer()
    )
    cache.delete(window)

    for _ in range(2):
        acme.get(ORDERS)

    assert cache.get(window) == 2
    # A window nobody deletes must not stay in Redis for ever: it expires just after its minute.
    assert 0 < redis.Redis.from_url(settings.CACHES["default"]["LOCATION"]).ttl(cache.make_key(window)) <= 61


@pytest.mark.parametrize("path", ["/api/v1/nope/", "/api/v1/shipments/abc/events/", "/api/v2/orders/"])
def test_a_path_the_api_does_not_have_is_404_in_the_api_error_shape(acme, path):
    response = acme.post(path, {}, format="json")

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert error(response)["code"] == "not_found"


def test_an_api_path_without_its_slash_is_404_naming_the_right_path_not_a_redirect(acme, catalogue):
    response = acme.post("/api/v1/orders", order_body(), format="json")

    assert response.status_code == 404  # a 301 would make most clients repeat the POST as a GET
    assert error(response)["message"].endswith("the API's paths end with a slash: /api/v1/orders/")
    assert not Order.objects.exists()


def test_pages_still_get_their_slash_added(client):
    assert client.get("/queues").status_code == 301


def test_a_page_that_does_not_exist_is_still_a_page(client):
    response = client.get("/no-such-page/")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_an_unexpected_failure_under_the_api_is_500_in_the_api_error_shape(acme, monkeypatch):
    from orders import api

    def broken(*args, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(api, "order_queryset", broken)
    acme.raise_request_exception = False

    response = acme.get(ORDERS)

    assert response.status_code == 500
    assert error(response)["code"] == "server_error"


def test_allowed_actions_are_those_of_the_caller(client, acme, catalogue, coordinator, service_agent):
    order = acme.post(ORDERS, order_body(), format="json").json()
    assert order["allowed_actions"] == ["cancel", "change_address"]

    client.force_login(coordinator)  # may correct addresses, may not cancel
    assert client.get(f"{ORDERS}{order['id']}/").json()["allowed_actions"] == ["change_address"]
    assert client.get(ORDERS).json()["results"][0]["allowed_actions"] == ["change_address"]
    moved = client.patch(f"{ORDERS}{order['id']}/shipping-address/", {"line2": "Back door"}, content_type="application/json")
    assert moved.json()["allowed_actions"] == ["change_address"]

    client.force_login(service_agent)
    assert client.get(f"{ORDERS}{order['id']}/").json()["allowed_actions"] == ["cancel", "change_address"]


def test_staff_on_the_session_may_do_through_the_api_only_what_their_role_allows(client, acme, catalogue, ops_admin):
    from core.roles import Role
    from orders.services.lifecycle import order_release
    from tests.factories import TEST_ACTOR, user_with_role

    order = acme.post(ORDERS, order_body(), format="json").json()
    client.force_login(user_with_role("floor", Role.COORDINATOR))

    cancel = client.post(f"{ORDERS}{order['id']}/cancel/")
    assert cancel.status_code == 403 and error(cancel)["code"] == "permission_denied"
    assert Order.objects.get(pk=order["id"]).status == OrderStatus.ALLOCATED
    order_release(order=Order.objects.get(pk=order["id"]), actor=TEST_ACTOR)
    events = f"/api/v1/shipments/{order['shipments'][0]['id']}/events/"
    assert client.post(events, {"type": "picked"}, content_type="application/json").status_code == 403

    client.force_login(user_with_role("desk", Role.CUSTOMER_SERVICE))
    moved = client.patch(f"{ORDERS}{order['id']}/shipping-address/", {"line2": "Back door"}, content_type="application/json")
    assert moved.status_code == 202  # released: a person follows up with the warehouse

    client.force_login(ops_admin)
    assert client.post(events, {"type": "picked"}, content_type="application/json").json()["status"] == "picked"


def test_an_empty_address_change_is_400_and_changes_nothing(acme, catalogue):
    order = acme.post(ORDERS, order_body(), format="json").json()
    events_before = OrderEvent.objects.filter(order_id=order["id"]).count()

    response = acme.patch(f"{ORDERS}{order['id']}/shipping-address/", {}, format="json")

    assert response.status_code == 400
    assert error(response)["fields"] == {"non_field_errors": ["Send at least one address field to change."]}
    assert OrderEvent.objects.filter(order_id=order["id"]).count() == events_before


@pytest.mark.parametrize("code", ["A\x00B", "X" * 65])
def test_availability_of_something_that_cannot_be_a_sku_code_is_400(acme, code):
    response = acme.get("/api/v1/inventory/availability/", {"sku": ["SKU-1", code]})

    assert response.status_code == 400
    assert list(error(response)["fields"]) == ["sku"]


@pytest.mark.parametrize(
    "lines",
    [
        [{"line": "LINE", "picked": 0}, {"line": "LINE", "picked": 2}],
        [{"line": "LINE", "picked": 1, "reason": "dropped"}],
        [{"line": 987654, "picked": 1}],
        [{"line": "LINE", "picked": 99}],
        [{"line": "1_0", "picked": 1}],
    ],
    ids=[
        "a line twice",
        "an unknown field in a line",
        "a line not in the shipment",
        "more picked than planned",
        "digit grouping",
    ],
)
def test_a_short_pick_naming_a_line_twice_or_an_unknown_field_is_400_and_changes_nothing(acme, catalogue, lines):
    from orders.services.lifecycle import order_release
    from tests.factories import TEST_ACTOR

    order = acme.post(
        ORDERS, order_body(lines=[{"sku": "SKU-2", "quantity": 3, "uom": "each", "unit_price": "12.50"}]), format="json"
    ).json()
    order_release(order=Order.objects.get(pk=order["id"]), actor=TEST_ACTOR)
    sent = [{**row, "line": order["lines"][0]["id"] if row["line"] == "LINE" else row["line"]} for row in lines]

    response = acme.post(
        f"/api/v1/shipments/{order['shipments'][0]['id']}/events/", {"type": "short_picked", "lines": sent}, format="json"
    )

    assert response.status_code == 400 and "lines" in error(response)["fields"]
    assert [s["status"] for s in acme.get(f"{ORDERS}{order['id']}/").json()["shipments"]] == ["released"]


def test_correcting_one_of_two_address_problems_closes_its_exception_and_keeps_the_other(acme, catalogue):
    broken = {"line1": "", "city": "Springfield", "region": "IL", "postal_code": "6270", "country": "US"}
    order = acme.post(ORDERS, order_body(shipping_address=broken), format="json").json()
    assert order["status"] == "on_hold" and [e["code"] for e in order["open_exceptions"]] == ["invalid_address"] * 2

    response = acme.patch(f"{ORDERS}{order['id']}/shipping-address/", {"line1": "1 Main St"}, format="json")

    assert response.status_code == 200
    still_open = FulfillmentException.objects.filter(order_id=order["id"], type__code="invalid_address", status__in=OPEN_STATUSES)
    assert [e.detail["field"] for e in still_open] == ["postal_code"]
    assert response.json()["status"] == "on_hold"

    fixed = acme.patch(f"{ORDERS}{order['id']}/shipping-address/", {"postal_code": "62701"}, format="json")

    assert fixed.json()["open_exceptions"] == [] and fixed.json()["status"] != "on_hold"


def test_listing_orders_and_exceptions_costs_the_same_queries_for_a_few_or_a_page_full(acme, catalogue):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries(path: str) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert acme.get(path, {"page_size": 200}).status_code == 200
        return len(captured)

    def add(count: int, start: int) -> None:
        for number in range(start, start + count):
            customer = {"name": "Ada", "email": f"ada{number}@example.com", "tier": "standard"}
            clean = acme.post(ORDERS, order_body(external_id=f"L-{number}", customer=customer), format="json")
            held = acme.post(
                ORDERS,
                order_body(
                    external_id=f"H-{number}",
                    customer=customer,
                    lines=[{"sku": "NOPE", "quantity": 1, "uom": "each", "unit_price": "1"}],
                ),
                format="json",
            )
            assert (clean.status_code, held.status_code) == (201, 201)

    add(2, 0)
    few = (queries(ORDERS), queries("/api/v1/exceptions/"))
    add(10, 2)
    many = (queries(ORDERS), queries("/api/v1/exceptions/"))

    assert acme.get(ORDERS, {"page_size": 200}).json()["count"] == 24
    assert many == few
