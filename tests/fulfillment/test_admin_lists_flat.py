"""The admin's exception and order lists cost the same however long the history: the same queries with a few rows
as with more, no date hierarchy or list filter reading DISTINCT values of every row, one count only, and a search
that still finds what people type."""

from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from exceptions.models import FulfillmentException
from orders.models import Order
from tests.factories import LocationFactory, PartnerFactory, make_order, raise_on_order

pytestmark = pytest.mark.django_db

EXCEPTIONS = reverse("admin:exceptions_fulfillmentexception_changelist")
ORDERS = reverse("admin:orders_order_changelist")
FEW, MORE = 2, 6


def past_week(field_name: str) -> dict[str, str]:
    """The parameters of the admin's "Past 7 days" date filter, as django.contrib.admin.filters writes them."""
    today = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    return {f"{field_name}__gte": str(today - timedelta(days=7)), f"{field_name}__lt": str(today + timedelta(days=1))}


_numbers = iter(range(1, 10**6))


def add_history(count: int) -> None:
    """`count` orders, each with a damaged_item exception, placed and raised today, shipping to the US."""
    partner = PartnerFactory(code="flat-shop")
    for _ in range(count):
        number = next(_numbers)
        order = make_order(partner=partner, external_id=f"FLAT-{number}")
        Order.objects.filter(pk=order.pk).update(customer_email=f"buyer{number}@example.com")
        raise_on_order("damaged_item", order)


LISTS = {
    "exceptions": EXCEPTIONS,
    "exceptions searched": f"{EXCEPTIONS}?q=damaged",
    "exceptions past 7 days": f"{EXCEPTIONS}?{urlencode(past_week('created_at'))}",
    "orders": ORDERS,
    "orders searched": f"{ORDERS}?q=example.com",
    "orders past 7 days": f"{ORDERS}?{urlencode(past_week('placed_at'))}",
    "orders by country": f"{ORDERS}?ship_country=US",
}


@pytest.mark.parametrize("url", LISTS.values(), ids=LISTS.keys())
def test_a_changelist_runs_the_same_queries_with_more_rows(admin_client, url, django_assert_num_queries):
    LocationFactory(ships_to=["US", "CA"])
    add_history(FEW)
    with CaptureQueriesContext(connection) as few_rows:
        assert admin_client.get(url).status_code == 200
    add_history(MORE - FEW)

    with django_assert_num_queries(len(few_rows.captured_queries)):
        response = admin_client.get(url)

    assert response.status_code == 200
    assert response.context["cl"].result_count >= MORE  # the rows are there, not filtered away
    statements = [query["sql"].upper() for query in few_rows.captured_queries]
    # A date hierarchy's DATE_TRUNC and MIN/MAX, or a list filter's DISTINCT values, read every row of the table.
    assert not [sql for sql in statements if "DISTINCT" in sql or "DATE_TRUNC" in sql or "MIN(" in sql]
    # The filtered count only; no second count of the whole table beside it.
    assert sum("COUNT(" in sql for sql in statements) == 1


def listed(response) -> set[int]:
    assert response.status_code == 200
    return {row.pk for row in response.context["cl"].result_list}


def test_the_order_search_finds_an_order_by_its_number_and_by_its_customers_email(admin_client):
    wanted, other = make_order(external_id="NW-11032"), make_order(external_id="NW-20441")
    Order.objects.filter(pk=wanted.pk).update(customer_email="grace@example.com")

    assert listed(admin_client.get(ORDERS, {"q": "nw-11032"})) == {wanted.pk}
    assert listed(admin_client.get(ORDERS, {"q": "Grace@Example.com"})) == {wanted.pk}
    assert other.pk in listed(admin_client.get(ORDERS, {"q": "Ada Lovelace"}))


def test_the_exception_search_finds_by_a_word_of_the_summary_its_orders_number_and_its_own(admin_client):
    damaged = raise_on_order("damaged_item", make_order(external_id="NW-11032"))
    short = raise_on_order("short_pick", make_order(external_id="NW-20441"))
    Order.objects.filter(pk=damaged.order_id).update(customer_email="grace@example.com")

    assert damaged.pk in listed(admin_client.get(EXCEPTIONS, {"q": "DAMAGED"}))
    assert short.pk not in listed(admin_client.get(EXCEPTIONS, {"q": "DAMAGED"}))
    assert listed(admin_client.get(EXCEPTIONS, {"q": "NW-20441"})) >= {short.pk}
    assert damaged.pk not in listed(admin_client.get(EXCEPTIONS, {"q": "NW-20441"}))
    assert damaged.pk in listed(admin_client.get(EXCEPTIONS, {"q": "grace@example.com"}))
    assert short.pk in listed(admin_client.get(EXCEPTIONS, {"q": f"#{short.pk}"}))


def test_the_date_filter_leaves_out_what_is_older_than_its_range(admin_client):
    recent = raise_on_order("damaged_item", make_order(external_id="NW-1"))
    older = raise_on_order("damaged_item", make_order(external_id="NW-2"))
    month_ago = timezone.now() - timedelta(days=30)
    FulfillmentException.objects.filter(pk=older.pk).update(created_at=month_ago)
    Order.objects.filter(pk=older.order_id).update(placed_at=month_ago)

    exceptions = listed(admin_client.get(EXCEPTIONS, past_week("created_at")))
    orders = listed(admin_client.get(ORDERS, past_week("placed_at")))

    assert recent.pk in exceptions and older.pk not in exceptions
    assert recent.order_id in orders and older.order_id not in orders


def test_the_country_filter_offers_the_countries_the_sites_ship_to_and_filters_on_one(admin_client):
    LocationFactory(country="US", ships_to=["US", "CA"])
    american, canadian = make_order(external_id="NW-1"), make_order(external_id="NW-2")
    Order.objects.filter(pk=canadian.pk).update(ship_country="CA")

    response = admin_client.get(ORDERS, {"ship_country": "CA"})

    assert listed(response) == {canadian.pk}
    country_filter = next(
        spec for spec in response.context["cl"].filter_specs if getattr(spec, "parameter_name", "") == "ship_country"
    )
    assert [code for code, _name in country_filter.lookup_choices] == ["CA", "US"]
    assert american.pk in listed(admin_client.get(ORDERS, {"ship_country": "us"}))
