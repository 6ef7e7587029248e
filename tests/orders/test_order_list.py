"""The orders list at /orders/: filters, search, sorting and pages over GET parameters only, a fixed number of
queries however many orders there are, and bad parameters answered with a message rather than an error."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from exceptions.models import ExceptionType, FulfillmentException
from orders.models import Order, OrderLine, OrderStatus, Shipment
from orders.search import order_list
from tests.factories import LocationFactory, PartnerFactory

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "results"}
_numbers = itertools.count(1)


def bulk_orders(count: int, *, partner=None, open_exceptions: int = 0, placed_at: datetime | None = None, **fields):
    """`count` orders stored in one INSERT, placed a minute apart (the first newest), each with one line and
    `open_exceptions` open exceptions, so a test can have hundreds of rows cheaply."""
    partner = partner or PartnerFactory()
    start = placed_at or timezone.now()
    sku_code = fields.pop("sku_code", "SKU-BULK")
    orders = []
    for index in range(count):
        number = next(_numbers)
        values = {
            "external_id": f"L-{number}",
            "customer_name": f"Customer {number}",
            "customer_email": f"customer{number}@example.com",
            "ship_country": "US",
            "total_amount": Decimal("10.00"),
            "status": OrderStatus.RECEIVED,
            **fields,
        }
        orders.append(Order(partner=partner, placed_at=start - timedelta(minutes=index), **values))
    orders = Order.objects.bulk_create(orders)
    OrderLine.objects.bulk_create(
        [OrderLine(order=order, line_number=1, sku_code=sku_code, quantity=1, unit_price=order.total_amount) for order in orders]
    )
    if open_exceptions:
        kind = ExceptionType.objects.get(code="out_of_stock")
        now = timezone.now()
        FulfillmentException.objects.bulk_create(
            [
                FulfillmentException(
                    type=kind,
                    order=order,
                    dedupe_key=f"order:{order.pk}:{n}",
                    summary="Out of stock",
                    queue=kind.default_queue,
                    priority="P3",
                    first_response_due_at=now + timedelta(hours=1),
                    warn_at=now + timedelta(hours=2),
                    due_at=now + timedelta(hours=4),
                )
                for order in orders
                for n in range(open_exceptions)
            ]
        )
    return orders


def listed(response) -> list[str]:
    """The orders on the page, in their order, as "partner/external id"."""
    return [f"{order.partner.code}/{order.external_id}" for order in response.context["page"].object_list]


def get(client, **params):
    return client.get(reverse("orders"), params)


@pytest.fixture
def signed_in(client, coordinator):
    client.force_login(coordinator)
    return client


# --- access ----------------------------------------------------------------------------------------------


def test_an_anonymous_visitor_is_sent_to_sign_in(client):
    response = client.get(reverse("orders"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_customer_service_sees_the_list(client, service_agent):
    bulk_orders(2)
    client.force_login(service_agent)
    response = get(client)
    assert response.status_code == 200
    assert len(listed(response)) == 2


# --- rows ------------------------------------------------------------------------------------------------


def test_a_row_links_the_order_and_shows_customer_value_country_and_open_exceptions(signed_in):
    partner = PartnerFactory(code="NW")
    (order,) = bulk_orders(
        1,
        partner=partner,
        external_id="NW-11032",
        customer_name="Grace Hopper",
        customer_email="grace@example.com",
        ship_country="CA",
        total_amount=Decimal("1234.50"),
        currency="CAD",
        open_exceptions=3,
    )
    closed = FulfillmentException.objects.filter(order=order).first()
    FulfillmentException.objects.filter(pk=closed.pk).update(status="resolved")

    response = get(signed_in)
    html = response.content.decode()
    assert f'href="{reverse("order-detail", args=[order.pk])}">NW / NW-11032</a>' in html
    assert "Grace Hopper" in html and "grace@example.com" in html
    assert "1234.50 CAD" in html
    assert "<td>CA</td>" in html
    (row,) = response.context["page"].object_list
    assert row.open_exceptions == 2  # the resolved one does not count


# --- filters ---------------------------------------------------------------------------------------------


def test_filter_by_status(signed_in):
    bulk_orders(2, status=OrderStatus.RECEIVED)
    held = bulk_orders(1, status=OrderStatus.ON_HOLD)
    assert listed(get(signed_in, status="on_hold")) == [f"{held[0].partner.code}/{held[0].external_id}"]


def test_filter_by_partner_code(signed_in):
    bulk_orders(2, partner=PartnerFactory(code="EU"))
    ours = bulk_orders(2, partner=PartnerFactory(code="NW"))
    assert sorted(listed(get(signed_in, partner="NW"))) == sorted(f"NW/{o.external_id}" for o in ours)


def test_filter_by_the_location_a_shipment_leaves_from_lists_each_order_once(signed_in):
    west, east = LocationFactory(code="WEST"), LocationFactory(code="EAST")
    split, elsewhere, _unshipped = bulk_orders(3)
    Shipment.objects.create(order=split, location=west)
    Shipment.objects.create(order=split, location=west)  # two shipments from the same site: still one row
    Shipment.objects.create(order=elsewhere, location=east)
    response = get(signed_in, location="WEST")
    assert listed(response) == [f"{split.partner.code}/{split.external_id}"]
    assert response.context["page"].paginator.count == 1


def test_the_location_filter_is_an_exists_not_a_join(signed_in):
    LocationFactory(code="WEST")
    sql = str(order_list({"location": "WEST"}).qs.query)
    assert "EXISTS" in sql
    assert "DISTINCT" not in sql


def test_filter_by_date_placed_includes_the_whole_last_day(signed_in):
    noon = timezone.make_aware(datetime(2026, 3, 10, 12, 0))
    bulk_orders(1, placed_at=noon - timedelta(days=2))
    (first_day,) = bulk_orders(1, placed_at=noon - timedelta(days=1))
    (last_day_late,) = bulk_orders(1, placed_at=noon.replace(hour=23, minute=59))
    bulk_orders(1, placed_at=noon + timedelta(days=1))
    response = get(signed_in, placed_from="2026-03-09", placed_to="2026-03-10")
    assert listed(response) == [
        f"{last_day_late.partner.code}/{last_day_late.external_id}",
        f"{first_day.partner.code}/{first_day.external_id}",
    ]


def test_filter_by_open_exceptions(signed_in):
    (with_problem,) = bulk_orders(1, open_exceptions=1)
    (clean,) = bulk_orders(1)
    (closed_only,) = bulk_orders(1, open_exceptions=1)
    FulfillmentException.objects.filter(order=closed_only).update(status="resolved")
    assert listed(get(signed_in, open_exceptions="yes")) == [f"{with_problem.partner.code}/{with_problem.external_id}"]
    assert sorted(listed(get(signed_in, open_exceptions="no"))) == sorted(
        f"{o.partner.code}/{o.external_id}" for o in (clean, closed_only)
    )


def test_filters_combine(signed_in):
    partner = PartnerFactory(code="NW")
    bulk_orders(2, partner=partner, status=OrderStatus.RECEIVED)
    (held_nw,) = bulk_orders(1, partner=partner, status=OrderStatus.ON_HOLD, open_exceptions=1)
    bulk_orders(1, partner=PartnerFactory(code="EU"), status=OrderStatus.ON_HOLD, open_exceptions=1)
    assert listed(get(signed_in, partner="NW", status="on_hold", open_exceptions="yes")) == [f"NW/{held_nw.external_id}"]


def test_search_box_narrows_the_list_and_says_how_many_match(signed_in):
    bulk_orders(3, customer_name="Someone Else")
    bulk_orders(2, customer_name="Grace Hopper")
    response = get(signed_in, q="hopper")
    assert len(listed(response)) == 2
    assert "2 orders match “hopper”." in response.content.decode()


def test_a_search_that_finds_nothing_says_so(signed_in):
    bulk_orders(3)
    response = get(signed_in, q="no-such-thing")
    assert listed(response) == []
    assert "No order matches “no-such-thing”." in response.content.decode()


def test_filters_that_match_nothing_say_so(signed_in):
    bulk_orders(1, status=OrderStatus.RECEIVED)
    assert "No order matches these filters." in get(signed_in, status="shipped").content.decode()


# --- bad input -------------------------------------------------------------------------------------------


def test_a_date_that_is_not_a_date_is_named_and_left_out(signed_in):
    bulk_orders(3)
    response = get(signed_in, placed_from="yesterday-ish", status="received")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Placed from: Enter a date as YYYY-MM-DD. This filter is left out." in html
    assert len(listed(response)) == 3  # the other filter still applies; the bad one is ignored


def test_an_unknown_status_or_partner_is_named_and_left_out(signed_in):
    bulk_orders(2)
    response = get(signed_in, status="lost", partner="nobody")
    assert response.status_code == 200
    errors = response.context["filter"].form.errors
    assert set(errors) == {"status", "partner"}
    assert len(listed(response)) == 2


def test_an_unknown_sort_falls_back_to_newest_first_and_says_so(signed_in):
    newest, older = bulk_orders(2)
    response = get(signed_in, sort="-shoe_size")
    assert response.status_code == 200
    assert listed(response) == [f"{o.partner.code}/{o.external_id}" for o in (newest, older)]
    assert "There is no sort “-shoe_size”" in response.content.decode()


def test_a_page_past_the_end_shows_the_last_page_and_a_bad_size_the_default(signed_in):
    bulk_orders(60)
    response = get(signed_in, page="99", size="7")
    assert response.status_code == 200
    page = response.context["page"]
    assert (page.number, page.paginator.per_page, len(page.object_list)) == (2, 50, 10)
    assert get(signed_in, page="abc").context["page"].number == 1


# --- sorting ---------------------------------------------------------------------------------------------


def test_newest_placed_first_by_default_and_oldest_first_when_flipped(signed_in):
    newest, middle, oldest = bulk_orders(3)
    names = [f"{o.partner.code}/{o.external_id}" for o in (newest, middle, oldest)]
    assert listed(get(signed_in)) == names
    assert listed(get(signed_in, sort="-placed")) == names[::-1]


def test_sort_by_value_largest_first_then_smallest_first(signed_in):
    partner = PartnerFactory(code="V")
    for amount in ("5.00", "500.00", "50.00"):
        bulk_orders(1, partner=partner, total_amount=Decimal(amount), external_id=f"V-{amount}")
    assert listed(get(signed_in, sort="value")) == ["V/V-500.00", "V/V-50.00", "V/V-5.00"]
    assert listed(get(signed_in, sort="-value")) == ["V/V-5.00", "V/V-50.00", "V/V-500.00"]


def test_sort_by_status_follows_the_lifecycle(signed_in):
    partner = PartnerFactory(code="S")
    for status in (OrderStatus.SHIPPED, OrderStatus.RECEIVED, OrderStatus.ALLOCATED):
        bulk_orders(1, partner=partner, status=status, external_id=f"S-{status}")
    assert listed(get(signed_in, sort="status")) == ["S/S-received", "S/S-allocated", "S/S-shipped"]


def test_sort_by_partner_then_order_number(signed_in):
    bulk_orders(1, partner=PartnerFactory(code="ZZ"), external_id="A-1")
    bulk_orders(1, partner=PartnerFactory(code="AA"), external_id="B-2")
    bulk_orders(1, partner=PartnerFactory(code="AA"), external_id="A-9")
    assert listed(get(signed_in, sort="partner")) == ["AA/A-9", "AA/B-2", "ZZ/A-1"]
    assert listed(get(signed_in, sort="-partner")) == ["ZZ/A-1", "AA/B-2", "AA/A-9"]


def test_column_headers_toggle_the_direction_and_keep_the_other_parameters(signed_in):
    bulk_orders(1, partner=PartnerFactory(code="NW"))
    sorts = get(signed_in, partner="NW", q="customer", sort="value", page="1").context["sorts"]
    assert sorts["value"]["active"] and sorts["value"]["ascending"] is False
    assert sorts["value"]["url"] == "?partner=NW&q=customer&sort=-value"
    assert sorts["status"]["url"] == "?partner=NW&q=customer&sort=status"
    # Back to the default sort: the parameter goes away rather than repeating the default.
    assert sorts["placed"]["url"] == "?partner=NW&q=customer"
    flipped = get(signed_in, partner="NW", sort="-value").context["sorts"]
    assert flipped["value"]["url"] == "?partner=NW&sort=value"
    assert flipped["value"]["ascending"] is True


def test_the_sort_rides_along_with_the_filter_form(signed_in):
    bulk_orders(1)
    html = get(signed_in, sort="-value").content.decode()
    assert '<input type="hidden" name="sort" value="-value" form="order-filters">' in html


# --- pages -----------------------------------------------------------------------------------------------


def test_fifty_a_page_with_links_that_keep_the_filters(signed_in):
    bulk_orders(120, partner=PartnerFactory(code="NW"))
    response = get(signed_in, partner="NW", sort="value")
    page = response.context["page"]
    assert (len(page.object_list), page.paginator.count, page.paginator.num_pages) == (50, 120, 3)
    assert 'href="?partner=NW&amp;sort=value&amp;page=2"' in response.content.decode()
    second = get(signed_in, partner="NW", sort="value", page="2")
    assert not set(listed(second)) & set(listed(response))


@pytest.mark.parametrize("size", [25, 100])
def test_page_size(signed_in, size):
    bulk_orders(120)
    assert len(get(signed_in, size=str(size)).context["page"].object_list) == size


def test_htmx_gets_only_the_results(signed_in):
    bulk_orders(2)
    response = signed_in.get(reverse("orders"), {"status": "received"}, **HTMX)
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="results">')
    assert "<form" not in html
    assert response["Vary"] and "HX-Request" in response["Vary"]


def test_without_js_the_filters_are_a_plain_get_form(signed_in):
    html = get(signed_in).content.decode()
    assert 'id="order-filters" class="filters" method="get" action="/orders/"' in html
    assert '<button type="submit">Filter</button>' in html


# --- cost ------------------------------------------------------------------------------------------------


def _count_query(queries) -> str:
    (count,) = [q["sql"] for q in queries if q["sql"].startswith("SELECT COUNT(")]
    return count


def test_the_same_number_of_queries_at_10_and_at_200_orders(client, coordinator, django_assert_num_queries):
    client.force_login(coordinator)
    partner = PartnerFactory(code="NW")
    bulk_orders(10, partner=partner, open_exceptions=2)
    params = {"partner": "NW", "open_exceptions": "yes", "sort": "value"}
    with CaptureQueriesContext(connection) as small:
        response = get(client, **params)
    assert len(listed(response)) == 10
    assert all(order.open_exceptions == 2 for order in response.context["page"].object_list)

    bulk_orders(190, partner=partner, open_exceptions=2)
    with django_assert_num_queries(len(small.captured_queries)):
        response = get(client, **params)
    assert response.context["page"].paginator.count == 200
    assert all(order.open_exceptions == 2 for order in response.context["page"].object_list)


def test_the_count_reads_only_the_orders(signed_in):
    bulk_orders(3, open_exceptions=1)
    with CaptureQueriesContext(connection) as queries:
        get(signed_in, status="received")
    count = _count_query(queries.captured_queries)
    assert '"orders_order"."status" = ' in count
    assert '"exceptions_fulfillmentexception"' not in count
    assert '"orders_partner"' not in count
    assert "ORDER BY" not in count
