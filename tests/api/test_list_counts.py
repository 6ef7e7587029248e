"""API lists count no further than core.api.COUNT_LIMIT, and page on past it; their queries do not grow with the rows."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core import api
from orders.models import Order
from tests.factories import raise_on_order

from .conftest import order_body

pytestmark = pytest.mark.django_db
ORDERS, EXCEPTIONS = "/api/v1/orders/", "/api/v1/exceptions/"


def send_orders(acme, number: int, tag: str) -> None:
    for n in range(number):
        body = order_body(external_id=f"{tag}-{n}", customer={"name": "Ada", "email": f"{tag}-{n}@example.com"})
        assert acme.post(ORDERS, body, format="json").status_code == 201


def test_past_the_limit_the_count_says_so_and_next_links_reach_every_row(acme, catalogue, monkeypatch):
    monkeypatch.setattr(api, "COUNT_LIMIT", 3)
    send_orders(acme, 5, "L")

    first = acme.get(ORDERS, {"page_size": 2}).json()
    assert (first["count"], first["count_exact"]) == (3, False)
    seen, page = [row["id"] for row in first["results"]], first
    while page["next"]:
        page = acme.get(page["next"]).json()
        seen += [row["id"] for row in page["results"]]
    assert sorted(seen) == sorted(Order.objects.filter(partner=acme.partner).values_list("pk", flat=True))
    assert len(seen) == 5
    assert acme.get(ORDERS, {"page_size": 2, "page": 4}).status_code == 404


def test_within_the_limit_the_count_is_exact(acme, catalogue):
    send_orders(acme, 2, "E")
    answer = acme.get(ORDERS).json()
    assert (answer["count"], answer["count_exact"], answer["next"]) == (2, True, None)


@pytest.mark.parametrize("path", [ORDERS, EXCEPTIONS])
def test_a_list_runs_the_same_queries_for_few_rows_as_for_many(acme, catalogue, path):
    counted = []
    for number in (2, 8):
        send_orders(acme, number, f"Q{number}")
        for order in Order.objects.filter(external_id__startswith=f"Q{number}-"):
            raise_on_order("damaged_item", order=order)
        with CaptureQueriesContext(connection) as captured:
            answer = acme.get(path).json()
        counted.append(len(captured))
        assert answer["count"] == (number if number == 2 else 10)
    assert counted[0] == counted[1]
