"""What a person types into the header's search box: straight to the one exception or order it names, or to the
orders list of everything it matches, or to the list saying nothing does."""

from __future__ import annotations

import pytest
from django.urls import reverse

from orders.models import Order, Shipment
from orders.search import search_q, search_resolve
from tests.factories import LocationFactory, PartnerFactory, SkuFactory, make_order, raise_on_order

from .test_order_list import bulk_orders

pytestmark = pytest.mark.django_db


def customer(order: Order, name: str, email: str) -> Order:
    Order.objects.filter(pk=order.pk).update(customer_name=name, customer_email=email)
    return Order.objects.get(pk=order.pk)


def found(term: str) -> set[int]:
    return set(Order.objects.filter(search_q(term)).values_list("pk", flat=True))


@pytest.fixture
def shop(db):
    """Three orders of two partners; the first two share a SKU, the third has a shipment with tracking."""
    nw, eu = PartnerFactory(code="NW"), PartnerFactory(code="EU")
    shared, own = SkuFactory(code="MUG-RED"), SkuFactory(code="TEE-BLUE")
    grace = customer(make_order(partner=nw, external_id="NW-11032", lines=[(shared, 1)]), "Grace Hopper", "grace@navy.example")
    alan = customer(
        make_order(partner=eu, external_id="NW-11032", lines=[(shared, 2), (own, 1)]), "Alan Turing", "alan@bletchley.example"
    )
    ada = customer(make_order(partner=eu, external_id="EU-7", lines=[(own, 1)]), "Ada Lovelace", "ada@engine.example")
    Shipment.objects.create(order=ada, location=LocationFactory(code="WEST"), tracking_number="1Z999AA10123456784")
    return {"grace": grace, "alan": alan, "ada": ada}


# --- search_q: each kind -----------------------------------------------------------------------------------


def test_order_number_alone_matches_every_partners_order_with_it(shop):
    assert found("nw-11032") == {shop["grace"].pk, shop["alan"].pk}


@pytest.mark.parametrize("term", ["NW/NW-11032", "nw/nw-11032", "NW NW-11032", " NW / NW-11032 "])
def test_partner_code_and_order_number_name_one_order(shop, term):
    assert found(term) == {shop["grace"].pk}


def test_customer_name_matches_any_part(shop):
    assert found("hopp") == {shop["grace"].pk}
    assert found("TURING") == {shop["alan"].pk}


def test_an_email_matches_exactly_and_a_part_of_one_matches_as_a_part(shop):
    assert found("Grace@Navy.Example") == {shop["grace"].pk}
    assert found("grace@navy") == set()  # with an @ it must be the whole address
    assert found("bletchley") == {shop["alan"].pk}


def test_a_sku_matches_every_order_with_a_line_of_it_once(shop):
    assert found("mug-red") == {shop["grace"].pk, shop["alan"].pk}
    rows = list(Order.objects.filter(search_q("tee-blue")).values_list("pk", flat=True))
    assert sorted(rows) == sorted([shop["alan"].pk, shop["ada"].pk])  # no row repeated per line


def test_a_tracking_number_matches_its_order(shop):
    assert found("1z999aa10123456784") == {shop["ada"].pk}


def test_a_search_is_one_union_of_lookups_and_stops_at_its_limit(shop, django_assert_num_queries, monkeypatch):
    from orders import search

    with django_assert_num_queries(1) as captured:
        ids = search.order_ids_matching("MUG-RED")
    sql = captured.captured_queries[0]["sql"]
    assert "UNION" in sql and "DISTINCT" not in sql and "JOIN" not in sql.split("UNION")[-1]
    assert set(ids) == found("MUG-RED")
    assert len(search.order_ids_matching("Ada", limit=1)) == 1


def test_an_empty_term_matches_everything_and_nonsense_nothing(shop):
    assert found("   ") == {o.pk for o in shop.values()}
    assert found("zzz-nothing") == set()


# --- search_resolve -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["#{}", "E{}", "e{}", "{}"])
def test_an_exception_number_resolves_to_the_exception(shop, form):
    exception = raise_on_order("short_pick", order=shop["ada"])
    assert search_resolve(form.format(exception.pk)) == exception


def test_an_exception_number_that_does_not_exist_resolves_to_nothing(shop):
    assert search_resolve("#987654") is None


def test_a_bare_number_that_is_also_an_order_number_means_the_order(shop):
    exception = raise_on_order("short_pick", order=shop["ada"])
    numbered = make_order(partner=PartnerFactory(code="DIGITS"), external_id=str(exception.pk))
    assert search_resolve(str(exception.pk)) == numbered
    assert search_resolve(f"#{exception.pk}") == exception  # the marked form still means the exception


def test_one_matching_order_resolves_to_it_and_several_to_nothing(shop):
    assert search_resolve("grace@navy.example") == shop["grace"]
    assert search_resolve("EU/NW-11032") == shop["alan"]
    assert search_resolve("NW-11032") is None
    assert search_resolve("MUG-RED") is None
    assert search_resolve("nothing-like-it") is None
    assert search_resolve("") is None


# --- /search/ -----------------------------------------------------------------------------------------------


@pytest.fixture
def signed_in(client, coordinator):
    client.force_login(coordinator)
    return client


def search(client, term: str):
    return client.get(reverse("search"), {"q": term})


def test_an_empty_search_goes_to_the_orders_list(signed_in):
    response = search(signed_in, "  ")
    assert (response.status_code, response.url) == (302, reverse("orders"))


@pytest.mark.parametrize(
    ("term", "who"),
    [
        ("NW/NW-11032", "grace"),
        ("EU-7", "ada"),
        ("Lovelace", "ada"),
        ("alan@bletchley.example", "alan"),
        ("1Z999AA10123456784", "ada"),
    ],
)
def test_a_single_order_goes_straight_to_it(signed_in, shop, term, who):
    response = search(signed_in, term)
    assert response.status_code == 302
    assert response.url == reverse("order-detail", args=[shop[who].pk])


def test_an_exception_number_goes_to_the_exception(signed_in, shop):
    exception = raise_on_order("short_pick", order=shop["grace"])
    response = search(signed_in, f"#{exception.pk}")
    assert response.url == reverse("exception-detail", args=[exception.pk])


def test_several_orders_go_to_the_list_which_says_how_many(signed_in, shop):
    response = search(signed_in, "MUG-RED")
    assert response.url == f"{reverse('orders')}?q=MUG-RED"
    listing = signed_in.get(response.url)
    assert {o.pk for o in listing.context["page"].object_list} == {shop["grace"].pk, shop["alan"].pk}
    assert "2 orders match “MUG-RED”." in listing.content.decode()


def test_nothing_found_goes_to_the_list_which_says_so(signed_in, shop):
    term = "#no such & thing"
    response = search(signed_in, term)
    assert response.url == f"{reverse('orders')}?q=%23no+such+%26+thing"
    listing = signed_in.get(response.url)
    assert listing.context["filter"].searched == term
    assert not list(listing.context["page"].object_list)
    assert "No order matches “#no such &amp; thing”." in listing.content.decode()


def test_the_search_needs_a_signed_in_person(client):
    response = search(client, "anything")
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_every_page_has_the_header_search_and_the_orders_link(signed_in):
    html = signed_in.get(reverse("orders")).content.decode()
    assert '<form role="search" action="/search/" method="get">' in html
    assert 'id="header-search"' in html and 'name="q"' in html
    assert '<a href="/orders/">Orders</a>' in html


def test_the_search_scales_with_bulk_orders(signed_in):
    bulk_orders(40, sku_code="BOLT-M4")
    (only,) = bulk_orders(1, customer_email="unique@example.com")
    assert search(signed_in, "unique@example.com").url == reverse("order-detail", args=[only.pk])
    assert search(signed_in, "bolt-m4").url == f"{reverse('orders')}?q=bolt-m4"
