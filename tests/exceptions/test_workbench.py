"""The queue as a workbench: sorting, page sizes, tabs that keep their filters, search, bulk actions, saved views,
and pages whose queries do not grow with the history."""

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from core.roles import Role
from exceptions import selectors
from exceptions.models import ExceptionEvent, ExceptionStatus, FulfillmentException, Queue, SavedView
from exceptions.services import exception_resolve
from tests.exceptions.test_pages import make_exceptions
from tests.factories import (
    TEST_ACTOR,
    LocationFactory,
    SkuFactory,
    make_order,
    proposed_split,
    raise_on_order,
    stock,
    user_with_role,
)

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(autouse=True)
def manual_assignment(db):
    Queue.objects.update(assignment=Queue.Assignment.MANUAL)


def row_ids(response) -> list[int]:
    return [row["exception"].pk for row in response.context["rows"]]


# --- sorting, page size, tabs ----------------------------------------------------------------------


def order_worth(amount, **fields):
    from orders.models import Order

    order = make_order(**fields)
    Order.objects.filter(pk=order.pk).update(total_amount=amount)
    order.refresh_from_db()
    return order


def test_each_column_sorts_and_a_second_click_turns_it_round(client, coordinator):
    cheap = raise_on_order("out_of_stock", order_worth(10))
    dear = raise_on_order("short_pick", order_worth(900, customer_tier="strategic", service_level="express"))
    middle = raise_on_order("out_of_stock", order_worth(300))
    client.force_login(coordinator)

    assert row_ids(client.get("/queues/?tab=team&sort=value")) == [dear.pk, middle.pk, cheap.pk]
    assert row_ids(client.get("/queues/?tab=team&sort=-value")) == [cheap.pk, middle.pk, dear.pk]
    assert row_ids(client.get("/queues/?tab=team&sort=age")) == [cheap.pk, dear.pk, middle.pk]
    assert row_ids(client.get("/queues/?tab=team&sort=-age")) == [middle.pk, dear.pk, cheap.pk]
    assert row_ids(client.get("/queues/?tab=team&sort=priority"))[0] == dear.pk  # P1 first
    by_type = row_ids(client.get("/queues/?tab=team&sort=type"))
    assert [FulfillmentException.objects.get(pk=pk).type.name for pk in by_type] == ["Out of stock", "Out of stock", "Short pick"]

    links = client.get("/queues/?tab=team&sort=value").context["sorts"]
    assert links["value"]["active"] and not links["value"]["ascending"]
    assert "sort=-value" in links["value"]["url"] and "tab=team" in links["value"]["url"]
    assert "sort=priority" in links["priority"]["url"]


def test_an_unknown_sort_or_page_size_falls_back_to_the_defaults(client, coordinator):
    first = raise_on_order("short_pick", make_order(customer_tier="strategic", service_level="express"))
    raise_on_order("out_of_stock")
    client.force_login(coordinator)

    response = client.get("/queues/?tab=team&sort=drop+table&size=7")

    assert response.status_code == 200
    assert response.context["sort"] == "due" and response.context["page_size"] == 25
    assert row_ids(response)[0] == first.pk


def test_the_page_size_setting_pages_by_it(client, coordinator):
    make_exceptions(60, coordinator)
    client.force_login(coordinator)

    assert len(client.get("/queues/?tab=team").context["rows"]) == 25
    response = client.get("/queues/?tab=team&size=50&page=2")
    assert len(response.context["rows"]) == 10
    assert response.context["page"].paginator.num_pages == 2


def test_tabs_keep_the_filters_and_sort_of_the_view(client, coordinator):
    raise_on_order("out_of_stock")
    client.force_login(coordinator)

    tabs = client.get("/queues/?tab=team&priority=P3&sort=-age&size=50").context["tabs"]

    unassigned = next(t for t in tabs if t["key"] == "unassigned")
    assert "tab=unassigned" in unassigned["url"]
    assert "priority=P3" in unassigned["url"] and "sort=-age" in unassigned["url"] and "size=50" in unassigned["url"]


def test_counts_stop_at_the_row_limit_and_pages_reach_it(client, coordinator, monkeypatch):
    monkeypatch.setattr(selectors, "ROW_LIMIT", 30)
    make_exceptions(45, coordinator)
    client.force_login(coordinator)

    response = client.get("/queues/?tab=team&page=9")

    assert response.context["counts"]["team"] == 30
    assert response.context["page"].number == 2  # the last page within the limit
    assert len(response.context["rows"]) == 5
    assert "30+" in response.content.decode()


# --- search ---------------------------------------------------------------------------------------


def test_the_queue_search_finds_by_number_order_customer_and_sku(client, coordinator):
    from orders.models import Order

    sku = SkuFactory(code="SKU-SEARCH-1")
    by_email = raise_on_order("out_of_stock", make_order())
    Order.objects.filter(pk=by_email.order_id).update(customer_email="grace@example.com", customer_name="Grace Hopper")
    by_order = raise_on_order("out_of_stock", make_order(external_id="NW-77001"))
    by_sku = raise_on_order("inventory_drift", sku=sku, location=LocationFactory(code="WH-S"))
    client.force_login(coordinator)

    def found(term):
        return set(row_ids(client.get("/queues/", {"tab": "team", "q": term})))

    assert found("GRACE@example.com") == {by_email.pk}
    assert found("hopper") == {by_email.pk}
    assert found("nw-77001") == {by_order.pk}
    assert found("sku-search-1") == {by_sku.pk}
    assert found(f"#{by_order.pk}") == {by_order.pk}
    assert found("nothing-like-it") == set()


# --- bulk actions ---------------------------------------------------------------------------------


def bulk(client, data, query="tab=team"):
    return client.post(reverse("queue-bulk"), {"list_query": query, **data}, **HTMX)


def shown(response) -> str:
    return " ".join(response.content.decode().split())


def test_bulk_resolve_reports_the_refused_one_in_its_row_and_does_the_others(client, coordinator):
    exceptions = [raise_on_order("out_of_stock") for _ in range(4)]
    exception_resolve(exception=exceptions[2], note="Done elsewhere", actor=TEST_ACTOR)
    client.force_login(coordinator)

    response = bulk(client, {"action": "resolve", "note": "Stock found", "ids": [e.pk for e in exceptions]})

    assert response.status_code == 200
    statuses = {e.pk: FulfillmentException.objects.get(pk=e.pk).status for e in exceptions}
    assert [statuses[e.pk] for e in exceptions] == [ExceptionStatus.RESOLVED] * 4  # the third was already
    page = shown(response)
    assert "Resolve: 3 of 4 done." in page and "1 refused, each with its reason" in page
    assert f"#{exceptions[2].pk}</a> Out of stock: This exception is already resolved." in page
    assert ExceptionEvent.objects.filter(exception=exceptions[2], note="Stock found").count() == 0
    assert ExceptionEvent.objects.filter(note="Stock found", action="resolve").count() == 3
    counts = json.loads(response["HX-Trigger"])["countsChanged"]
    assert counts["tabs"]["team"] == 0


def test_a_refused_row_keeps_its_state_and_shows_its_reason(client, coordinator):
    ours = raise_on_order("out_of_stock")
    theirs = raise_on_order("invalid_address")  # customer service's queue
    client.force_login(coordinator)

    response = bulk(client, {"action": "claim", "ids": [ours.pk, theirs.pk]})

    assert FulfillmentException.objects.get(pk=ours.pk).owner == coordinator
    unchanged = FulfillmentException.objects.get(pk=theirs.pk)
    assert unchanged.owner is None and unchanged.status == ExceptionStatus.OPEN
    page = shown(response)
    assert "Claim: 1 of 2 done." in page
    assert f"#{theirs.pk}</a> Invalid address: You do not work the" in page


def test_a_note_missing_for_every_row_is_refused_once_and_changes_nothing(client, coordinator):
    exceptions = [raise_on_order("out_of_stock") for _ in range(3)]
    client.force_login(coordinator)

    response = bulk(client, {"action": "resolve", "note": "  ", "ids": [e.pk for e in exceptions]})

    assert response.status_code == 400
    assert '<p class="error bulk-report" role="alert">A note is required.</p>' in shown(response)
    assert FulfillmentException.objects.filter(status=ExceptionStatus.OPEN).count() == 3
    assert not ExceptionEvent.objects.filter(action="resolve").exists()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"action": "reallocate", "ids": ["1"]}, "cannot be run on many exceptions at once"),
        ({"action": "claim"}, "Select at least one exception."),
    ],
)
def test_bulk_refuses_what_it_cannot_do(client, coordinator, data, message):
    raise_on_order("out_of_stock")
    client.force_login(coordinator)

    response = bulk(client, data)

    assert response.status_code == 400
    assert message in shown(response)


def test_all_matching_acts_on_every_row_of_the_filtered_list_not_only_the_page(client, coordinator):
    make_exceptions(40, coordinator)  # out_of_stock and short_pick, alternately
    client.force_login(coordinator)
    short_picks = set(FulfillmentException.objects.filter(type__code="short_pick").values_list("pk", flat=True))

    response = bulk(client, {"action": "set_priority", "priority": "P1", "all_matching": "1"}, query="tab=team&stage=warehouse")

    assert len(short_picks) == 20 and "Change priority: 20 of 20 done." in shown(response)
    assert set(FulfillmentException.objects.filter(priority="P1").values_list("pk", flat=True)) == short_picks


def test_bulk_refuses_more_than_its_limit(client, coordinator, monkeypatch):
    from exceptions import actions

    monkeypatch.setattr(actions, "BULK_LIMIT", 5)
    exceptions = [raise_on_order("out_of_stock") for _ in range(6)]
    client.force_login(coordinator)

    response = bulk(client, {"action": "claim", "ids": [e.pk for e in exceptions]})

    assert response.status_code == 400 and "at most 5 go at once" in shown(response)
    assert not FulfillmentException.objects.filter(owner=coordinator).exists()


def test_bulk_assign_and_comment_run_the_governed_actions(client, coordinator):
    colleague = user_with_role("colleague", Role.COORDINATOR, "stock")
    exceptions = [raise_on_order("out_of_stock") for _ in range(2)]
    client.force_login(coordinator)

    bulk(client, {"action": "assign", "owner": colleague.pk, "ids": [e.pk for e in exceptions]})
    bulk(client, {"action": "comment", "note": "Supplier called", "ids": [e.pk for e in exceptions]})

    assert set(FulfillmentException.objects.values_list("owner__username", flat=True)) == {"colleague"}
    assert ExceptionEvent.objects.filter(kind=ExceptionEvent.Kind.COMMENTED, note="Supplier called").count() == 2


def test_changing_priority_moves_the_deadline_and_is_recorded(client, coordinator):
    exception = raise_on_order("out_of_stock")
    before = FulfillmentException.objects.get(pk=exception.pk)
    client.force_login(coordinator)

    bulk(client, {"action": "set_priority", "priority": "P1", "note": "VIP", "ids": [exception.pk]})

    after = FulfillmentException.objects.get(pk=exception.pk)
    assert (before.priority, after.priority) == ("P3", "P1")
    assert after.due_at < before.due_at
    event = ExceptionEvent.objects.get(exception=exception, action="set_priority")
    assert event.data["from_priority"] == "P3" and event.data["to_priority"] == "P1" and event.note == "VIP"


def test_a_plain_post_without_htmx_redirects_back_with_the_report(client, coordinator):
    exception = raise_on_order("out_of_stock")
    client.force_login(coordinator)

    response = client.post(reverse("queue-bulk"), {"list_query": "tab=team", "action": "claim", "ids": [exception.pk]})

    assert response.status_code == 302 and response.url == "/queues/?tab=team"
    assert FulfillmentException.objects.get(pk=exception.pk).owner == coordinator


# --- saved views ----------------------------------------------------------------------------------


def test_a_saved_view_keeps_the_filters_search_and_sort_and_is_the_users_own(client, coordinator):
    other = user_with_role("other", Role.COORDINATOR, "stock")
    client.force_login(coordinator)

    response = client.post(
        reverse("saved-view-create"), {"name": "Stock P1s", "list_query": "tab=team&priority=P1&q=NW&sort=-age&page=3&evil=1"}
    )

    view = SavedView.objects.get(user=coordinator)
    assert view.query == "tab=team&q=NW&priority=P1&sort=-age"  # known parameters only, no page
    assert response.url == f"/queues/?{view.query}"
    assert [v.name for v in client.get("/queues/").context["saved_views"]] == ["Stock P1s"]
    client.force_login(other)
    assert client.get("/queues/").context["saved_views"] == []
    assert client.post(reverse("saved-view-delete", args=[view.pk])).status_code == 404
    client.force_login(coordinator)
    client.post(reverse("saved-view-delete", args=[view.pk]))
    assert not SavedView.objects.exists()


def test_saving_a_view_without_a_name_says_so_and_saves_nothing(client, coordinator):
    client.force_login(coordinator)

    response = client.post(reverse("saved-view-create"), {"name": " ", "list_query": "tab=team"}, follow=True)

    assert "Give the view a name." in response.content.decode()
    assert not SavedView.objects.exists()


def test_saving_under_the_same_name_replaces_the_view(client, coordinator):
    client.force_login(coordinator)
    client.post(reverse("saved-view-create"), {"name": "Mine", "list_query": "tab=mine"})
    client.post(reverse("saved-view-create"), {"name": "Mine", "list_query": "tab=mine&sort=priority"})

    assert list(SavedView.objects.values_list("query", flat=True)) == ["tab=mine&sort=priority"]


# --- queries that do not grow with the history ----------------------------------------------------


def queries_for(client, method: str, url: str, data=None) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = getattr(client, method)(url, data or {}, **HTMX) if method == "post" else client.get(url)
        assert response.status_code == 200, (url, response.status_code)
    return len(captured)


QUEUE_VIEWS = [
    "/queues/?tab=mine",
    "/queues/?tab=team",
    "/queues/?tab=unassigned",
    "/queues/?tab=team&priority=P3",
    "/queues/?tab=team&stage=warehouse&sort=-age",
    "/queues/?tab=team&q=Customer+1",
    "/queues/?tab=team&sort=value&size=100",
    "/queues/?tab=team&sort=type&page=3",
]


def test_the_queue_runs_the_same_queries_at_10000_exceptions_as_at_100(client, coordinator, ops_admin, service_agent, network):
    site = LocationFactory(code="WH-Q")

    def split():
        stock(network["a"], network["x"], 2)
        stock(network["b"], network["y"], 3)
        proposed_split(network)

    split()
    location_view = f"/queues/?tab=team&location={site.pk}"
    make_exceptions(100, coordinator)
    FulfillmentException.objects.filter(pk__in=FulfillmentException.objects.values("pk")[:40]).update(location=site)

    def measure(user):
        client.force_login(user)
        counts = {url: queries_for(client, "get", url) for url in [*QUEUE_VIEWS, location_view]}
        ids = list(FulfillmentException.objects.filter(status__in=["open", "in_progress"]).values_list("pk", flat=True)[:5])
        counts["bulk"] = queries_for(
            client, "post", reverse("queue-bulk"), {"list_query": "tab=team", "action": "comment", "note": "n", "ids": ids}
        )
        for url in ("/orders/", "/orders/?q=Customer+1&sort=value", "/orders/?open_exceptions=yes"):
            counts[url] = queries_for(client, "get", url)
        return counts

    def approvals(user):
        client.force_login(user)
        return queries_for(client, "get", reverse("split-approvals"))

    small, small_admin = measure(coordinator), measure(ops_admin)
    small_approvals = {user.username: approvals(user) for user in (service_agent, coordinator, ops_admin)}
    make_exceptions(9900, coordinator)
    for _ in range(3):
        split()  # more rows on the approvals page: no more queries
    FulfillmentException.objects.filter(pk__in=FulfillmentException.objects.values("pk")[:4000]).update(location=site)
    assert FulfillmentException.objects.count() >= 10_000

    assert measure(coordinator) == small
    assert measure(ops_admin) == small_admin  # every queue is not "not yet read" once a row
    assert {user.username: approvals(user) for user in (service_agent, coordinator, ops_admin)} == small_approvals
    assert max(v for k, v in small.items() if k != "bulk") <= 22


def test_the_source_filter_narrows_to_the_system_that_raised_it(client, coordinator):
    from exceptions.services import exception_raise

    from_wms = exception_raise(code="short_pick", summary="wms", order=make_order(), actor=TEST_ACTOR, source_system="wms")
    raise_on_order("short_pick")  # raised by the portal
    client.force_login(coordinator)

    assert row_ids(client.get("/queues/?tab=team&source=wms")) == [from_wms.pk]
