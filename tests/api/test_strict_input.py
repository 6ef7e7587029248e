"""Input the API refuses rather than coerces or stores: wrong JSON types, control characters, time-zone
offsets PostgreSQL cannot read, an empty Idempotency-Key; and a replay that is the first answer's bytes."""

import json

import pytest

from orders.models import IdempotencyKey, Order, Shipment
from orders.serializers import CONTROL_CHARACTERS_MESSAGE, OrderSerializer
from orders.services.lifecycle import order_release
from tests.factories import TEST_ACTOR

from .conftest import ORDER_BODY, ORDERS, order_body

pytestmark = pytest.mark.django_db
LINE = ORDER_BODY["lines"][0]


def field_errors(response) -> dict:
    assert response.status_code == 400, response.content
    body = response.json()["error"]
    assert body["code"] == "validation_error", body
    return body["fields"]


def with_customer(**changes) -> dict:
    return order_body(customer={**ORDER_BODY["customer"], **changes})


def with_address(**changes) -> dict:
    return order_body(shipping_address={**ORDER_BODY["shipping_address"], **changes})


def with_line(**changes) -> dict:
    return order_body(lines=[{**LINE, **changes}])


def released_order(client) -> dict:
    order = client.post(ORDERS, order_body(), format="json").json()
    order_release(order=Order.objects.get(pk=order["id"]), actor=TEST_ACTOR)
    return order


# --- time-zone offsets -------------------------------------------------------------------------------

OFFSETS_POSTGRESQL_CANNOT_READ = ["+16:00", "-16:00", "+23:59", "-23:59", "+05:30:15.5"]
OFFSETS_IT_READS = ["Z", "+15:59", "-15:59", "+14:00", "-12:00", "+05:45"]


@pytest.mark.parametrize("offset", OFFSETS_POSTGRESQL_CANNOT_READ)
def test_an_updated_after_offset_postgresql_cannot_read_is_400_naming_the_filter(acme, catalogue, offset):
    response = acme.get(ORDERS, {"updated_after": f"2026-01-01T00:00:00{offset}"})

    assert list(field_errors(response)) == ["updated_after"]


@pytest.mark.parametrize("offset", OFFSETS_IT_READS)
def test_an_updated_after_offset_within_15_59_filters(acme, catalogue, offset):
    acme.post(ORDERS, order_body(), format="json")

    assert acme.get(ORDERS, {"updated_after": f"2026-01-01T00:00:00{offset}"}).json()["count"] == 1
    assert acme.get(ORDERS, {"updated_after": f"2999-01-01T00:00:00{offset}"}).json()["count"] == 0


@pytest.mark.parametrize("offset", OFFSETS_POSTGRESQL_CANNOT_READ)
def test_a_placed_at_offset_postgresql_cannot_read_is_400_and_stores_nothing(acme, catalogue, offset):
    response = acme.post(ORDERS, order_body(placed_at=f"2026-11-20T10:00:00{offset}"), format="json")

    assert list(field_errors(response)) == ["placed_at"]
    assert not Order.objects.exists()


@pytest.mark.parametrize("offset", OFFSETS_IT_READS)
def test_a_placed_at_offset_within_15_59_is_the_moment_it_names(acme, catalogue, offset):
    from django.utils.dateparse import parse_datetime

    placed_at = f"2026-11-20T10:00:00{offset}"

    response = acme.post(ORDERS, order_body(placed_at=placed_at), format="json")

    assert response.status_code == 201, response.content
    assert Order.objects.get().placed_at == parse_datetime(placed_at)


def test_a_placed_at_with_a_control_character_for_its_t_is_400(acme, catalogue):
    # Python 3.11 reads any one character between the date and the time.
    response = acme.post(ORDERS, order_body(placed_at="2026-11-20\x0110:00:00Z"), format="json")

    assert list(field_errors(response)) == ["placed_at"]
    assert not Order.objects.exists()


# --- JSON types --------------------------------------------------------------------------------------

WRONG_TYPES_IN_AN_ORDER = [
    ("external_id as a number", order_body(external_id=1001), {"external_id": None}),
    ("currency as a number", order_body(currency=840), {"currency": None}),
    ("service_level as a number", order_body(service_level=1), {"service_level": None}),
    ("placed_at as epoch seconds", order_body(placed_at=1_795_000_000), {"placed_at": None}),
    ("customer name as a number", with_customer(name=7), {"customer": {"name": None}}),
    ("customer email as a boolean", with_customer(email=False), {"customer": {"email": None}}),
    ("customer tier as a list", with_customer(tier=["standard"]), {"customer": {"tier": None}}),
    ("country as a number", with_address(country=0), {"shipping_address": {"country": None}}),
    ("postal code as a number", with_address(postal_code=62701), {"shipping_address": {"postal_code": None}}),
    ("line1 as an object", with_address(line1={"street": "Main"}), {"shipping_address": {"line1": None}}),
    ("sku as a number", with_line(sku=11), {"lines": {"0": {"sku": None}}}),
    ("uom as a boolean", with_line(uom=True), {"lines": {"0": {"uom": None}}}),
    ("quantity as a string", with_line(quantity="1"), {"lines": {"0": {"quantity": None}}}),
    ("quantity as a float", with_line(quantity=1.0), {"lines": {"0": {"quantity": None}}}),
    ("quantity as a boolean", with_line(quantity=True), {"lines": {"0": {"quantity": None}}}),
    ("unit_price as a JSON number", with_line(unit_price=12.5), {"lines": {"0": {"unit_price": None}}}),
    ("unit_price as a JSON integer", with_line(unit_price=12), {"lines": {"0": {"unit_price": None}}}),
]


def assert_names_exactly(fields: dict, expected: dict) -> None:
    """`expected` gives the path of each field error; None where the messages are."""
    assert set(fields) == set(expected), fields
    for name, inner in expected.items():
        if inner is None:
            assert isinstance(fields[name], list) and fields[name], fields
        else:
            assert_names_exactly(fields[name], inner)


@pytest.mark.parametrize(("what", "body", "expected"), WRONG_TYPES_IN_AN_ORDER, ids=[w[0] for w in WRONG_TYPES_IN_AN_ORDER])
def test_a_wrong_json_type_in_an_order_is_400_naming_the_field_and_stores_nothing(acme, catalogue, what, body, expected):
    response = acme.post(ORDERS, body, format="json", HTTP_IDEMPOTENCY_KEY=f"typed-{what}")

    assert_names_exactly(field_errors(response), expected)
    assert not Order.objects.exists() and not IdempotencyKey.objects.exists()


def test_the_price_answers_why_a_json_number_is_refused(acme, catalogue):
    response = acme.post(ORDERS, with_line(unit_price=12.5), format="json")

    assert field_errors(response) == {
        "lines": {"0": {"unit_price": ['Send the amount as a decimal string, such as "12.50", not a JSON number.']}}
    }


def test_the_right_json_types_are_still_accepted(acme, catalogue):
    response = acme.post(ORDERS, with_line(quantity=3, unit_price="12.5"), format="json")

    assert response.status_code == 201, response.content
    assert (response.json()["lines"][0]["quantity"], response.json()["lines"][0]["unit_price"]) == (3, "12.50")


@pytest.mark.parametrize(
    "changes",
    [{"country": 0}, {"postal_code": 62704}, {"line1": ["2 Oak Ave"]}, {"city": None}, {"region": True}],
    ids=lambda changes: f"{next(iter(changes))} as {type(next(iter(changes.values()))).__name__}",
)
def test_a_wrong_json_type_in_an_address_change_is_400_naming_the_field_and_changes_nothing(acme, catalogue, changes):
    order = acme.post(ORDERS, order_body(), format="json").json()

    response = acme.patch(f"{ORDERS}{order['id']}/shipping-address/", changes, format="json")

    assert list(field_errors(response)) == list(changes)
    assert acme.get(f"{ORDERS}{order['id']}/").json()["shipping_address"] == order["shipping_address"]


SHIPMENT_EVENTS_OF_WRONG_TYPES = [
    ({"type": 1}, {"type": None}),
    ({"type": "shipped", "carrier": 5, "tracking_number": "1Z1"}, {"carrier": None}),
    ({"type": "shipped", "carrier": "UPS", "tracking_number": 1234}, {"tracking_number": None}),
    ({"type": "label_failed", "reason": False}, {"reason": None}),
    ({"type": "short_picked", "lines": [{"line": "LINE", "picked": 1}]}, {"lines": {"0": {"line": None}}}),
    ({"type": "short_picked", "lines": [{"line": "LINE_ID", "picked": "1"}]}, {"lines": {"0": {"picked": None}}}),
    ({"type": "short_picked", "lines": [{"line": "LINE_ID", "picked": 1.0}]}, {"lines": {"0": {"picked": None}}}),
    ({"type": "short_picked", "lines": [{"line": "LINE_ID", "picked": False}]}, {"lines": {"0": {"picked": None}}}),
]


@pytest.mark.parametrize(("event", "expected"), SHIPMENT_EVENTS_OF_WRONG_TYPES, ids=lambda value: json.dumps(value))
def test_a_wrong_json_type_in_a_shipment_event_is_400_naming_the_field_and_changes_nothing(acme, catalogue, event, expected):
    order = released_order(acme)
    line_id = order["lines"][0]["id"]
    # "LINE" is the line's id as a string, "LINE_ID" the id itself.
    event = json.loads(json.dumps(event).replace('"LINE"', f'"{line_id}"').replace('"LINE_ID"', str(line_id)))

    response = acme.post(f"/api/v1/shipments/{order['shipments'][0]['id']}/events/", event, format="json")

    assert_names_exactly(field_errors(response), expected)
    assert list(Shipment.objects.values_list("status", flat=True)) == ["released"]


# --- control characters -------------------------------------------------------------------------------

CONTROL_CHARACTERS = ["\x00", "\x01", "\t", "\n", "\r", "\x1b", "\x1f", "\x7f", "\x80", "\x85", "\x9f"]
TEXT_IN_AN_ORDER = {
    "external_id": lambda text: order_body(external_id=text),
    "customer.name": lambda text: with_customer(name=text),
    "customer.email": lambda text: with_customer(email=text),
    "shipping_address.name": lambda text: with_address(name=text),
    "shipping_address.line1": lambda text: with_address(line1=text),
    "shipping_address.line2": lambda text: with_address(line2=text),
    "shipping_address.city": lambda text: with_address(city=text),
    "shipping_address.region": lambda text: with_address(region=text),
    "shipping_address.postal_code": lambda text: with_address(postal_code=text),
    "shipping_address.country": lambda text: with_address(country=text),
    "lines.0.sku": lambda text: with_line(sku=text),
    "lines.0.uom": lambda text: with_line(uom=text),
    "lines.0.unit_price": lambda text: with_line(unit_price=text),
}
ORIGINALS = {
    "external_id": "1001",
    "customer.name": "Ada Lovelace",
    "customer.email": "ada@example.com",
    "shipping_address.name": "Ada Lovelace",
    "shipping_address.line1": "1 Main St",
    "shipping_address.line2": "",
    "shipping_address.city": "Springfield",
    "shipping_address.region": "IL",
    "shipping_address.postal_code": "62701",
    "shipping_address.country": "US",
    "lines.0.sku": "SKU-1",
    "lines.0.uom": "each",
    "lines.0.unit_price": "12.50",
}


def refused_at(path: str) -> dict:
    """The field errors of a control character in the field at `path` ("lines.0.sku")."""
    head, _, rest = path.partition(".")
    return {head: refused_at(rest) if rest else [CONTROL_CHARACTERS_MESSAGE]}


def spoiled(text: str, character: str) -> str:
    """The character inside the text, or alone where the text may be blank."""
    return f"{text[:1]}{character}{text[1:]}" if text else character


@pytest.mark.parametrize("character", CONTROL_CHARACTERS, ids=lambda c: f"U+{ord(c):04X}")
@pytest.mark.parametrize("path", list(TEXT_IN_AN_ORDER))
def test_a_control_character_in_any_text_of_an_order_is_400_naming_the_field_and_stores_nothing(acme, catalogue, path, character):
    body = TEXT_IN_AN_ORDER[path](spoiled(ORIGINALS[path], character))

    response = acme.post(ORDERS, body, format="json")

    assert field_errors(response) == refused_at(path)
    assert not Order.objects.exists()


@pytest.mark.parametrize("text", ["Ada Lovelace\n", "\tAda Lovelace", "Ada Lovelace\r\n"], ids=repr)
def test_a_control_character_at_either_end_is_refused_not_trimmed_away(acme, catalogue, text):
    response = acme.post(ORDERS, with_customer(name=text), format="json")

    assert field_errors(response) == refused_at("customer.name")


def test_text_beyond_ascii_that_is_not_a_control_character_is_kept(acme, catalogue):
    body = order_body(
        customer={"name": "Zoë Ōtsuka-Łukasiewicz", "email": "zoe@example.com", "tier": "standard"},
        shipping_address={**ORDER_BODY["shipping_address"], "line1": "1\u00a0Main St", "line2": "Bâtiment B – 2ᵉ"},
    )

    response = acme.post(ORDERS, body, format="json")

    assert response.status_code == 201, response.content
    order = Order.objects.get()
    assert (order.customer_name, order.ship_line1, order.ship_line2) == (
        "Zoë Ōtsuka-Łukasiewicz",
        "1\u00a0Main St",
        "Bâtiment B – 2ᵉ",
    )


ADDRESS_CHANGES = {"name": "Ada", "line1": "2 Oak Ave", "line2": "", "city": "Chicago", "region": "IL", "postal_code": "60601"}


@pytest.mark.parametrize("character", CONTROL_CHARACTERS, ids=lambda c: f"U+{ord(c):04X}")
@pytest.mark.parametrize(("name", "text"), [*ADDRESS_CHANGES.items(), ("country", "")])
def test_a_control_character_in_an_address_change_is_400_naming_the_field_and_changes_nothing(
    acme, catalogue, name, text, character
):
    order = acme.post(ORDERS, order_body(), format="json").json()

    response = acme.patch(f"{ORDERS}{order['id']}/shipping-address/", {name: spoiled(text, character)}, format="json")

    assert field_errors(response) == refused_at(name)
    assert acme.get(f"{ORDERS}{order['id']}/").json()["shipping_address"] == order["shipping_address"]


@pytest.mark.parametrize("character", CONTROL_CHARACTERS, ids=lambda c: f"U+{ord(c):04X}")
@pytest.mark.parametrize(
    ("event", "name"),
    [
        ({"type": "shipped", "carrier": "UPS", "tracking_number": "1Z1"}, "carrier"),
        ({"type": "shipped", "carrier": "UPS", "tracking_number": "1Z1"}, "tracking_number"),
        ({"type": "label_failed", "reason": "No such street"}, "reason"),
        ({"type": "picked"}, "type"),
    ],
)
def test_a_control_character_in_a_shipment_event_is_400_naming_the_field_and_changes_nothing(
    acme, catalogue, event, name, character
):
    from exceptions.models import FulfillmentException

    order = released_order(acme)
    event = {**event, name: spoiled(event[name], character)}
    if event["type"] == "shipped":
        events = f"/api/v1/shipments/{order['shipments'][0]['id']}/events/"
        assert acme.post(events, {"type": "picked"}, format="json").status_code == 200
        assert acme.post(events, {"type": "packed"}, format="json").status_code == 200

    response = acme.post(f"/api/v1/shipments/{order['shipments'][0]['id']}/events/", event, format="json")

    assert field_errors(response) == refused_at(name)
    shipment = Shipment.objects.get()
    assert (shipment.carrier, shipment.tracking_number) == ("", "")
    assert not FulfillmentException.objects.filter(type__code="label_failure").exists()


def test_the_schema_tells_the_stricter_fields(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()["components"]["schemas"]

    line = schema["LineInputRequest"]["properties"]
    short_pick = schema["ShortPickLineRequest"]["properties"]
    assert [field["type"] for field in (line["quantity"], short_pick["line"], short_pick["picked"])] == ["integer"] * 3
    assert (line["unit_price"]["type"], line["unit_price"]["format"]) == ("string", "decimal")
    assert "decimal string" in line["unit_price"]["description"]
    order = schema["OrderInputRequest"]["properties"]
    assert order["currency"]["pattern"] == "^[A-Za-z]{3}$"
    assert "-15:59 and +15:59" in order["placed_at"]["description"]
    inputs = ["OrderInputRequest", "CustomerRequest", "AddressRequest", "PatchedAddressChangeRequest", "LineInputRequest"]
    text = {
        (component, name): field.get("oneOf", [field])[0]  # a field that may be blank is one of itself or ""
        for component in [*inputs, "ShipmentEventRequest"]
        for name, field in schema[component]["properties"].items()
        if field.get("oneOf", [field])[0].get("type") == "string" and name not in ("placed_at", "currency", "unit_price")
    }
    assert len(text) == 1 + 2 + 7 + 7 + 2 + 3
    assert {field["pattern"] for field in text.values()} == {"^[^\\u0000-\\u001f\\u007f-\\u009f]*$"}


# --- idempotency ----------------------------------------------------------------------------------------


def test_a_replay_is_the_first_answer_byte_for_byte(acme, catalogue):
    first = acme.post(ORDERS, order_body(), format="json", HTTP_IDEMPOTENCY_KEY="bytes-1")
    again = acme.post(ORDERS, order_body(), format="json", HTTP_IDEMPOTENCY_KEY="bytes-1")

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.content == first.content
    # Keys in the serializer's order, not sorted (as a jsonb column would give them back).
    assert list(json.loads(again.content)) == list(OrderSerializer().fields)
    assert again["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first
    assert again["Content-Type"] == first["Content-Type"] == "application/json"
    assert Order.objects.count() == 1


@pytest.mark.parametrize("key", ["", " ", "\t  "], ids=["empty", "a space", "whitespace"])
def test_an_empty_idempotency_key_is_400_and_stores_nothing(acme, catalogue, key):
    response = acme.post(ORDERS, order_body(), format="json", HTTP_IDEMPOTENCY_KEY=key)

    assert list(field_errors(response)) == ["Idempotency-Key"]
    assert not Order.objects.exists() and not IdempotencyKey.objects.exists()
