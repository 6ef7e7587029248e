import json
import re
from datetime import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from core.roles import Role
from exceptions.models import FulfillmentException, Queue
from exceptions.services import exception_claim
from tests.factories import TEST_ACTOR, LocationFactory, UserFactory, make_order, raise_on_order, user_with_role

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


def ids(response) -> set[int]:
    return {row["exception"].pk for row in response.context["rows"]}


@pytest.mark.parametrize("url", ["/queues/", "/exceptions/1/", "/"])
def test_anonymous_visitors_are_sent_to_sign_in(client, url):
    response = client.get(url, follow=False)
    assert response.status_code == 302
    assert "/accounts/login/" in response.url or response.url == "/queues/"


def test_a_partner_api_user_has_no_pages(client):
    client.force_login(UserFactory(username="partner-acme"))
    assert client.get("/queues/").status_code == 403


def test_the_three_tabs_show_mine_my_teams_and_unassigned(client, coordinator):
    other = user_with_role("other", Role.COORDINATOR, "stock")
    mine = raise_on_order("out_of_stock")
    exception_claim(exception=mine, user=coordinator, actor=TEST_ACTOR)
    colleagues = raise_on_order("out_of_stock")
    exception_claim(exception=colleagues, user=other, actor=TEST_ACTOR)
    unassigned = raise_on_order("out_of_stock")
    elsewhere = raise_on_order("invalid_address")  # customer-service queue: not the coordinator's team
    client.force_login(coordinator)

    assert ids(client.get("/queues/?tab=mine")) == {mine.pk}
    assert ids(client.get("/queues/?tab=team")) == {mine.pk, colleagues.pk, unassigned.pk}
    assert ids(client.get("/queues/?tab=unassigned")) == {unassigned.pk}
    assert elsewhere.pk not in ids(client.get("/queues/?tab=team"))
    counts = client.get("/queues/").context["counts"]
    assert counts == {"mine": 1, "team": 3, "unassigned": 1}


def test_rows_are_sorted_by_sla_due_and_filters_narrow_them(client, coordinator):
    site = LocationFactory(code="WH-FILTER")
    slow = raise_on_order("inventory_drift", location=site)  # P3: a day
    urgent = raise_on_order("short_pick", make_order(customer_tier="strategic", service_level="express"))  # P1: two hours
    middle = raise_on_order("out_of_stock")
    client.force_login(coordinator)

    rows = [row["exception"].pk for row in client.get("/queues/?tab=team").context["rows"]]
    assert rows.index(urgent.pk) < rows.index(middle.pk) and rows.index(urgent.pk) < rows.index(slow.pk)

    assert ids(client.get("/queues/", {"tab": "team", "priority": "P1"})) == {urgent.pk}
    assert ids(client.get("/queues/", {"tab": "team", "stage": "warehouse"})) == {urgent.pk}
    assert ids(client.get("/queues/", {"tab": "team", "type": urgent.type_id})) == {urgent.pk}
    assert ids(client.get("/queues/", {"tab": "team", "queue": Queue.objects.get(slug="stock").pk})) == {slow.pk, middle.pk}
    assert ids(client.get("/queues/", {"tab": "team", "location": site.pk})) == {slow.pk}


def test_an_htmx_request_gets_only_the_results_partial(client, coordinator):
    raise_on_order("out_of_stock")
    client.force_login(coordinator)

    response = client.get("/queues/?tab=team", HTTP_HX_TARGET="results", **HTMX)

    body = response.content.decode()
    assert body.lstrip().startswith('<div id="results"') and "<html" not in body
    assert 'hx-trigger="every 30s' in body
    assert response["Vary"] and "HX-Request" in response["Vary"]


def test_claiming_from_unassigned_removes_the_row_and_tells_the_page(client, coordinator):
    exception = raise_on_order("out_of_stock")
    client.force_login(coordinator)

    from_unassigned = client.post(reverse("exception-action", args=[exception.pk, "claim"]), {"tab": "unassigned"}, **HTMX)

    assert from_unassigned.status_code == 200
    assert from_unassigned.content == b""
    assert "exceptions-changed" in from_unassigned["HX-Trigger"]

    second = raise_on_order("short_pick")
    from_team = client.post(reverse("exception-action", args=[second.pk, "claim"]), {"tab": "team"}, **HTMX)
    assert from_team.content.decode().lstrip().startswith(f'<tr id="exception-{second.pk}"')
    assert "coord" in from_team.content.decode()


def test_the_detail_page_shows_order_timeline_stock_and_only_allowed_actions(client, coordinator):
    exception = raise_on_order("short_pick")
    client.force_login(coordinator)
    exception_claim(exception=exception, user=coordinator, actor=TEST_ACTOR)

    response = client.get(reverse("exception-detail", args=[exception.pk]))

    body = response.content.decode()
    assert response.status_code == 200
    assert exception.order.external_id in body
    codes = [action.code for action, _ in response.context["action_forms"]]
    assert "resolve" in codes and "cancel_line" not in codes  # coordinators may not cancel lines
    titles = [entry.title for entry in response.context["timeline"]]
    assert "The test job claimed the exception" in titles and "The test job created the order" in titles


def make_exceptions(count: int, coordinator) -> FulfillmentException:
    """`count` open exceptions on distinct orders, a third of them the coordinator's.

    The first two go through the services; the rest are bulk copies of them
    (distinct orders, owners and dedupe keys), which is what the page reads.
    """
    from orders.models import Order

    templates = []
    for code in ("out_of_stock", "short_pick"):
        exception = raise_on_order(code)
        exception_claim(exception=exception, user=coordinator, actor=TEST_ACTOR)
        templates.append(FulfillmentException.objects.get(pk=exception.pk))
    base = Order.objects.get(pk=templates[0].order_id)
    orders = Order.objects.bulk_create(
        [
            Order(
                partner_id=base.partner_id,
                external_id=f"BULK-{base.pk}-{n}",
                placed_at=base.placed_at,
                customer_name=f"Customer {n}",
            )
            for n in range(count - 2)
        ]
    )
    copies = []
    for number, order in enumerate(orders):
        template = templates[number % 2]
        copy = FulfillmentException(
            **{f.attname: getattr(template, f.attname) for f in FulfillmentException._meta.concrete_fields if f.attname != "id"}
        )
        copy.order_id, copy.dedupe_key = order.pk, f"order:{order.pk}"
        copy.owner_id = coordinator.pk if number % 3 == 0 else None
        copies.append(copy)
    FulfillmentException.objects.bulk_create(copies)
    return templates[-1]


def queries_for(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


@pytest.mark.parametrize("tab", ["mine", "team", "unassigned"])
def test_the_queue_page_runs_the_same_queries_for_10_and_500_exceptions(client, coordinator, tab, django_assert_max_num_queries):
    client.force_login(coordinator)
    make_exceptions(10, coordinator)
    small = queries_for(client, f"/queues/?tab={tab}")
    make_exceptions(490, coordinator)
    assert FulfillmentException.objects.count() == 500
    large = queries_for(client, f"/queues/?tab={tab}")

    assert large == small
    with django_assert_max_num_queries(20):
        client.get(f"/queues/?tab={tab}")


def test_the_detail_page_runs_the_same_queries_for_10_and_500_exceptions(client, coordinator, django_assert_max_num_queries):
    client.force_login(coordinator)
    first = make_exceptions(10, coordinator)
    small = queries_for(client, reverse("exception-detail", args=[first.pk]))
    last = make_exceptions(490, coordinator)
    assert FulfillmentException.objects.count() == 500
    large = queries_for(client, reverse("exception-detail", args=[last.pk]))

    assert large == small
    with django_assert_max_num_queries(32):
        client.get(reverse("exception-detail", args=[last.pk]))


def counts_event(response) -> dict:
    return json.loads(response["HX-Trigger"])["countsChanged"]


def test_an_inline_action_carries_the_new_tab_and_list_counts(client, coordinator):
    Queue.objects.update(assignment=Queue.Assignment.MANUAL)
    first, *_ = (raise_on_order(code) for code in ("out_of_stock", "out_of_stock", "short_pick"))
    client.force_login(coordinator)
    listing = "http://testserver/queues/?tab=unassigned"

    claimed = client.post(
        reverse("exception-action", args=[first.pk, "claim"]), {"tab": "unassigned"}, HTTP_HX_CURRENT_URL=listing, **HTMX
    )

    assert claimed.content == b""  # the row leaves: only the counters can say so
    assert counts_event(claimed) == {"tabs": {"mine": 1, "team": 3, "unassigned": 2}, "counters": {"open": 2, "pages": 1}}

    resolved = client.post(
        reverse("exception-action", args=[first.pk, "resolve"]),
        {"tab": "mine", "note": "Found them", "operator_minutes": 3},
        HTTP_HX_CURRENT_URL="http://testserver/queues/?tab=mine",
        **HTMX,
    )
    assert counts_event(resolved) == {"tabs": {"mine": 0, "team": 2, "unassigned": 2}, "counters": {"open": 0, "pages": 1}}


def test_the_list_count_an_action_reports_keeps_the_filters_the_page_shows(client, coordinator):
    Queue.objects.update(assignment=Queue.Assignment.MANUAL)
    raise_on_order("out_of_stock")
    warehouse = raise_on_order("short_pick")
    raise_on_order("short_pick", make_order())
    client.force_login(coordinator)

    response = client.post(
        reverse("exception-action", args=[warehouse.pk, "claim"]),
        {"tab": "team"},
        HTTP_HX_CURRENT_URL="http://testserver/queues/?tab=team&stage=warehouse&page=1",
        **HTMX,
    )

    assert response.content.decode().lstrip().startswith(f'<tr id="exception-{warehouse.pk}"')
    assert counts_event(response) == {"tabs": {"mine": 1, "team": 3, "unassigned": 2}, "counters": {"open": 2, "pages": 1}}


def test_a_refused_action_still_reports_the_counts_as_they_are(client, coordinator):
    Queue.objects.update(assignment=Queue.Assignment.MANUAL)
    exception, _ = raise_on_order("out_of_stock"), raise_on_order("out_of_stock")
    exception_claim(exception=exception, user=coordinator, actor=TEST_ACTOR)
    client.force_login(coordinator)
    resolve = reverse("exception-action", args=[exception.pk, "resolve"])
    client.post(resolve, {"tab": "team", "note": "Done in another tab"}, **HTMX)

    again = client.post(resolve, {"tab": "team", "note": "Done here too"}, **HTMX)  # a page that had not caught up

    assert again.status_code == 409
    assert counts_event(again) == {"tabs": {"mine": 0, "team": 1, "unassigned": 1}, "counters": {"open": 1, "pages": 1}}


def test_the_queue_says_when_it_was_loaded_and_refreshes_at_the_configured_interval(client, coordinator, settings):
    raise_on_order("out_of_stock")
    client.force_login(coordinator)

    assert 'hx-trigger="every 30s [queueIsIdle()]"' in client.get("/queues/?tab=team").content.decode()

    settings.QUEUE_REFRESH_SECONDS = 4
    body = client.get("/queues/?tab=team", HTTP_HX_TARGET="results", **HTMX).content.decode()
    assert 'hx-trigger="every 4s [queueIsIdle()]"' in body
    loaded = re.search(r'Loaded <time datetime="([^"]+)">(\d\d:\d\d:\d\d)</time>', body)
    assert loaded, body
    at = datetime.fromisoformat(loaded.group(1))
    assert abs((timezone.now() - at).total_seconds()) < 60
    assert loaded.group(2) == timezone.localtime(at).strftime("%H:%M:%S")
