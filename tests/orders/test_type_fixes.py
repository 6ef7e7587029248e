"""The own fixes of unknown_sku (map the partner's SKU to ours) and duplicate_order (cancel one, or keep both)."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from core.errors import Conflict, Forbidden, InvalidInput
from exceptions.actions import action_perform
from exceptions.models import ExceptionEvent, ExceptionStatus, FulfillmentException
from orders.models import Order, OrderEvent, OrderLine, OrderStatus, PartnerSkuMapping
from tests.api.conftest import ORDERS, order_body, partner_client
from tests.factories import LocationFactory, SkuFactory, stock

pytestmark = pytest.mark.django_db

PARTNER_MUG = {"sku": "ACME-MUG-RED", "quantity": 2, "uom": "each", "unit_price": "12.50"}


@pytest.fixture
def catalogue(db):
    east = LocationFactory(code="WH-EAST")
    skus = {code: SkuFactory(code=code, unit_price="12.50", case_pack=12) for code in ("MUG-1", "MUG-2", "SKU-1")}
    for sku in skus.values():
        stock(east, sku, 100)
    return {"east": east, **skus}


@pytest.fixture
def acme(db):
    return partner_client("acme")


def act(code, exception, user, **data):
    return action_perform(code=code, exception_id=exception.pk, user=user, data=data)


def send(client, **changes) -> Order:
    response = client.post(ORDERS, order_body(**changes), format="json")
    assert response.status_code == 201, response.content
    return Order.objects.get(pk=response.json()["id"])


def open_exception(order: Order, code: str) -> FulfillmentException:
    return FulfillmentException.objects.get(order=order, type__code=code, status__in=["open", "in_progress", "waiting"])


def resolution(exception: FulfillmentException) -> ExceptionEvent:
    return ExceptionEvent.objects.get(exception=exception, kind="status_changed", to_status="resolved")


# --- unknown_sku: map the partner's SKU to ours ------------------------------------------------------------


def test_mapping_a_partners_sku_fixes_the_line_lets_the_order_go_on_and_serves_their_next_order(acme, catalogue, coordinator):
    first = send(acme, external_id="A-1", lines=[PARTNER_MUG])
    unknown = open_exception(first, "unknown_sku")
    assert first.status == OrderStatus.ON_HOLD

    result = act("map_sku", unknown, coordinator, sku=catalogue["MUG-1"].pk, remember="on", operator_minutes=3)

    assert "now ships MUG-1" in result.message
    line = OrderLine.objects.get(order=first)
    assert (line.sku, line.sku_code, line.base_quantity) == (catalogue["MUG-1"], "ACME-MUG-RED", 2)
    unknown.refresh_from_db()
    assert (unknown.status, unknown.resolution_action) == (ExceptionStatus.RESOLVED, "map_sku")
    event = resolution(unknown)
    assert (event.action, event.actor, event.operator_minutes) == ("map_sku", "user:coord", 3)
    assert Order.objects.get(pk=first.pk).status == OrderStatus.ALLOCATED
    mapped = OrderEvent.objects.get(order=first, name="map_sku")
    assert mapped.data == {"line": 1, "partner_sku": "ACME-MUG-RED", "sku": "MUG-1", "remembered": True}
    mapping = PartnerSkuMapping.objects.get()
    assert (mapping.partner.code, mapping.partner_sku_code, mapping.sku, mapping.created_by) == (
        "acme",
        "ACME-MUG-RED",
        catalogue["MUG-1"],
        coordinator,
    )

    # The partner's next order with that code (in any case) passes intake with our SKU.
    another_customer = {"name": "Bob", "email": "bob@example.com", "tier": "standard"}
    second = send(acme, external_id="A-2", customer=another_customer, lines=[{**PARTNER_MUG, "sku": "acme-mug-red"}])

    assert second.status == OrderStatus.ALLOCATED
    assert not second.exceptions.exists()
    line = OrderLine.objects.get(order=second)
    assert (line.sku, line.sku_code) == (catalogue["MUG-1"], "acme-mug-red")


def test_a_mapping_serves_only_its_partner(acme, catalogue, coordinator):
    act(
        "map_sku",
        open_exception(send(acme, lines=[PARTNER_MUG]), "unknown_sku"),
        coordinator,
        sku=catalogue["MUG-1"].pk,
        remember="on",
    )

    other = send(partner_client("globex"), lines=[PARTNER_MUG])

    assert other.status == OrderStatus.ON_HOLD
    assert open_exception(other, "unknown_sku").line.sku is None


def test_mapping_without_remembering_fixes_this_line_only(acme, catalogue, coordinator):
    first = send(acme, external_id="A-1", lines=[PARTNER_MUG])

    act("map_sku", open_exception(first, "unknown_sku"), coordinator, sku=catalogue["MUG-2"].pk)  # the box left unticked

    assert OrderLine.objects.get(order=first).sku == catalogue["MUG-2"]
    assert not PartnerSkuMapping.objects.exists()
    assert OrderEvent.objects.get(order=first, name="map_sku").data["remembered"] is False
    assert open_exception(send(acme, external_id="A-2", lines=[PARTNER_MUG]), "unknown_sku")


def test_remembering_again_moves_the_mapping_to_the_new_sku(acme, catalogue, coordinator):
    act(
        "map_sku",
        open_exception(send(acme, external_id="A-1", lines=[PARTNER_MUG]), "unknown_sku"),
        coordinator,
        sku=catalogue["MUG-1"].pk,
        remember="on",
    )
    PartnerSkuMapping.objects.update(sku=SkuFactory(code="OLD", active=False))  # its SKU left the catalogue

    order = send(acme, external_id="A-2", lines=[{**PARTNER_MUG, "sku": "Acme-Mug-Red"}])
    act("map_sku", open_exception(order, "unknown_sku"), coordinator, sku=catalogue["MUG-2"].pk, remember="on")

    mapping = PartnerSkuMapping.objects.get()
    assert (mapping.partner_sku_code, mapping.sku) == ("ACME-MUG-RED", catalogue["MUG-2"])


def test_a_mapped_line_priced_off_the_catalogue_opens_a_pricing_mismatch_and_stays_held(acme, catalogue, coordinator):
    order = send(acme, lines=[{**PARTNER_MUG, "unit_price": "5.00"}])

    act("map_sku", open_exception(order, "unknown_sku"), coordinator, sku=catalogue["MUG-1"].pk, remember="on")

    assert open_exception(order, "pricing_mismatch").line.sku == catalogue["MUG-1"]
    assert Order.objects.get(pk=order.pk).status == OrderStatus.ON_HOLD


@pytest.mark.parametrize(
    ("data", "error", "message"),
    [
        ({}, InvalidInput, "This field is required"),
        ({"sku": "999999"}, InvalidInput, "valid choice"),
    ],
)
def test_mapping_without_a_valid_sku_is_refused_and_changes_nothing(acme, catalogue, coordinator, data, error, message):
    order = send(acme, lines=[PARTNER_MUG])
    unknown = open_exception(order, "unknown_sku")

    with pytest.raises(error, match=message):
        act("map_sku", unknown, coordinator, remember="on", **data)

    assert OrderLine.objects.get(order=order).sku is None
    assert open_exception(order, "unknown_sku") == unknown
    assert not PartnerSkuMapping.objects.exists()
    assert not OrderEvent.objects.filter(name="map_sku").exists()


def test_mapping_to_a_sku_the_unit_does_not_convert_to_is_refused(acme, catalogue, coordinator):
    order = send(acme, lines=[{**PARTNER_MUG, "uom": "pallet"}])

    with pytest.raises(InvalidInput, match="has no 'pallet' unit"):
        act("map_sku", open_exception(order, "unknown_sku"), coordinator, sku=catalogue["MUG-1"].pk, remember="on")

    assert OrderLine.objects.get(order=order).sku is None
    assert not PartnerSkuMapping.objects.exists()


def test_mapping_is_refused_once_the_line_is_cancelled(acme, catalogue, coordinator, service_agent):
    order = send(acme, lines=[PARTNER_MUG, {"sku": "MUG-2", "quantity": 1, "uom": "each", "unit_price": "12.50"}])
    unknown = open_exception(order, "unknown_sku")
    OrderLine.objects.filter(pk=unknown.line_id).update(cancelled=True)

    with pytest.raises(Conflict, match="not possible on this exception now"):
        act("map_sku", unknown, coordinator, sku=catalogue["MUG-1"].pk, remember="on")

    assert not PartnerSkuMapping.objects.exists()
    assert open_exception(order, "unknown_sku") == unknown


def test_the_exception_page_offers_the_mapping_first(client, acme, catalogue, ops_admin):
    unknown = open_exception(send(acme, lines=[PARTNER_MUG]), "unknown_sku")
    client.force_login(ops_admin)

    page = client.get(reverse("exception-detail", args=[unknown.pk])).content.decode()

    assert "Map to our SKU" in page and "Remember for this partner" in page
    assert page.index("Map to our SKU") < page.index("Cancel line")
    assert "The partner sent &#x27;ACME-MUG-RED&#x27;." in page


# --- the admin ------------------------------------------------------------------------------------------


def test_an_admin_adds_and_edits_a_mapping_and_a_second_one_for_the_same_code_is_refused(client, acme, catalogue, ops_admin):
    ops_admin.is_staff = True
    ops_admin.save(update_fields=["is_staff"])
    client.force_login(ops_admin)
    add = reverse("admin:orders_partnerskumapping_add")

    added = client.post(add, {"partner": acme.partner.pk, "partner_sku_code": "ACME-MUG-RED", "sku": catalogue["MUG-1"].pk})

    assert added.status_code == 302, added.content.decode()[:2000]
    mapping = PartnerSkuMapping.objects.get()
    assert (mapping.sku, mapping.created_by) == (catalogue["MUG-1"], ops_admin)

    again = client.post(add, {"partner": acme.partner.pk, "partner_sku_code": "acme-mug-red", "sku": catalogue["MUG-2"].pk})
    assert again.status_code == 200 and "already has a mapping for that code" in again.content.decode()
    assert PartnerSkuMapping.objects.count() == 1

    change = reverse("admin:orders_partnerskumapping_change", args=[mapping.pk])
    edited = client.post(change, {"partner": acme.partner.pk, "partner_sku_code": "ACME-MUG-RED", "sku": catalogue["MUG-2"].pk})
    assert edited.status_code == 302
    mapping.refresh_from_db()
    assert (mapping.sku, mapping.created_by) == (catalogue["MUG-2"], ops_admin)

    listed = client.get(reverse("admin:orders_partnerskumapping_changelist"), {"q": "mug-red"}).content.decode()
    assert "ACME-MUG-RED" in listed and "MUG-2" in listed and "acme" in listed
    assert send(acme, lines=[PARTNER_MUG]).lines.get().sku == catalogue["MUG-2"]


# --- duplicate_order: cancel one, or keep both -----------------------------------------------------------


@pytest.fixture
def twins(acme, catalogue):
    """An order, and the same again an hour later under another number: a suspected duplicate."""
    placed = timezone.now() - timedelta(hours=2)
    first = send(acme, external_id="D-1", placed_at=placed.isoformat())
    second = send(acme, external_id="D-2", placed_at=(placed + timedelta(hours=1)).isoformat())
    return first, second, open_exception(second, "duplicate_order")


def test_the_exception_page_shows_both_orders_side_by_side_with_what_differs_marked(client, twins, ops_admin):
    first, _second, duplicate = twins
    client.force_login(ops_admin)

    page = client.get(reverse("exception-detail", args=[duplicate.pk])).content.decode()

    panel = page[page.index('id="duplicate-orders"') :]
    panel = panel[: panel.index("</section>")]
    assert "acme D-2" in panel and "acme D-1" in panel
    assert reverse("order-detail", args=[first.pk]) in panel
    rows = {row.split("</th>")[0].rsplit(">", 1)[-1]: row for row in panel.split("<tr")[2:]}
    assert rows["Customer"].startswith(">") and "Ada Lovelace" in rows["Customer"]  # the same: not marked
    assert rows["Channel and number"].startswith(' class="highlight"')
    assert rows["Placed"].startswith(' class="highlight"')
    assert rows["Lines"].startswith(">") and rows["Lines"].count("#1 SKU-1 × 2 each at 12.50") == 2
    assert "1 Main St" in rows["Ship to"] and "25.00 USD" in rows["Total"]


def test_the_panel_stays_out_of_other_exceptions(client, acme, catalogue, coordinator):
    unknown = open_exception(send(acme, lines=[PARTNER_MUG]), "unknown_sku")
    client.force_login(coordinator)

    assert 'id="duplicate-orders"' not in client.get(reverse("exception-detail", args=[unknown.pk])).content.decode()


def test_cancelling_the_earlier_order_as_the_duplicate_lets_this_one_go_on(twins, ops_admin):
    first, second, duplicate = twins

    act(
        "cancel_duplicate",
        duplicate,
        ops_admin,
        cancel=first.pk,
        reason="The customer ordered twice by mistake",
        operator_minutes=2,
    )

    first.refresh_from_db()
    assert (first.status, first.cancel_reason) == (
        OrderStatus.CANCELLED,
        "Duplicate order: The customer ordered twice by mistake",
    )
    duplicate.refresh_from_db()
    assert (duplicate.status, duplicate.resolution_action) == (ExceptionStatus.RESOLVED, "cancel_duplicate")
    event = resolution(duplicate)
    assert "Cancelled acme D-1 as the duplicate" in event.note and event.operator_minutes == 2
    assert Order.objects.get(pk=second.pk).status == OrderStatus.ALLOCATED


def test_cancelling_this_order_as_the_duplicate_closes_its_exception(twins, ops_admin):
    first, second, duplicate = twins

    act("cancel_duplicate", duplicate, ops_admin, cancel=second.pk, reason="Sent twice by the storefront")

    assert Order.objects.get(pk=second.pk).status == OrderStatus.CANCELLED
    assert Order.objects.get(pk=first.pk).status == OrderStatus.ALLOCATED
    duplicate.refresh_from_db()
    assert duplicate.status == ExceptionStatus.RESOLVED and "Sent twice by the storefront" in duplicate.resolution_note


@pytest.mark.parametrize("code", ["cancel_duplicate", "keep_both"])
def test_settling_a_duplicate_without_a_reason_is_refused_and_changes_nothing(twins, ops_admin, code):
    first, second, duplicate = twins

    with pytest.raises(InvalidInput, match="A reason is required"):
        act(code, duplicate, ops_admin, cancel=first.pk, reason="  ")

    assert sorted(Order.objects.values_list("status", flat=True)) == [OrderStatus.ALLOCATED, OrderStatus.ON_HOLD]
    assert open_exception(second, "duplicate_order") == duplicate


def test_cancelling_an_order_that_is_not_one_of_the_two_is_refused(acme, twins, ops_admin):
    _first, second, duplicate = twins
    stranger = send(acme, external_id="X-9", customer={"name": "Bob", "email": "bob@example.com", "tier": "standard"})

    with pytest.raises(InvalidInput, match="valid choice"):
        act("cancel_duplicate", duplicate, ops_admin, cancel=stranger.pk, reason="Wrong one")

    assert Order.objects.get(pk=stranger.pk).status == OrderStatus.ALLOCATED
    assert open_exception(second, "duplicate_order") == duplicate


def test_a_settled_duplicate_cannot_be_settled_again(twins, ops_admin):
    first, _second, duplicate = twins
    act("keep_both", duplicate, ops_admin, reason="Two offices, two deliveries")

    with pytest.raises(Conflict, match="already resolved"):
        act("cancel_duplicate", duplicate, ops_admin, cancel=first.pk, reason="Changed my mind")

    assert Order.objects.get(pk=first.pk).status == OrderStatus.ALLOCATED


def test_keeping_both_resolves_with_the_reason_and_the_order_goes_on(twins, ops_admin):
    _first, _second, duplicate = twins

    act("keep_both", duplicate, ops_admin, reason="Two offices, two deliveries", operator_minutes=1)

    duplicate.refresh_from_db()
    assert (duplicate.status, duplicate.resolution_action) == (ExceptionStatus.RESOLVED, "keep_both")
    assert resolution(duplicate).note == "Both orders kept: Two offices, two deliveries"
    assert sorted(Order.objects.values_list("status", flat=True)) == [OrderStatus.ALLOCATED, OrderStatus.ALLOCATED]


def test_a_coordinator_may_keep_both_but_not_cancel_one(twins, coordinator):
    first, second, duplicate = twins

    with pytest.raises(Forbidden):
        act("cancel_duplicate", duplicate, coordinator, cancel=first.pk, reason="Twice")

    assert Order.objects.get(pk=first.pk).status == OrderStatus.ALLOCATED
    act("keep_both", duplicate, coordinator, reason="Confirmed with the customer")
    assert Order.objects.get(pk=second.pk).status == OrderStatus.ALLOCATED
