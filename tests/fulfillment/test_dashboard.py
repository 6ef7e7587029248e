"""The dashboard's figures on small hand-made data sets whose answers are worked out in each test."""

import csv
import io
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from exceptions.models import ExceptionType, FulfillmentException
from exceptions.services import exception_raise
from fulfillment import metrics
from integrations.models import Delivery, DeliveryStatus, ExternalSystem, InboundEvent, InboundStatus, OutboxMessage
from orders.models import Order, OrderEvent, OrderStatus, Shipment
from orders.services import allocation as allocation_services
from orders.services import lifecycle as lifecycle_services
from orders.services import shipments as shipment_services
from tests.factories import TEST_ACTOR, LocationFactory, SkuFactory, make_order, raise_on_order

pytestmark = pytest.mark.django_db


def last_days(days: int, site=None) -> metrics.Period:
    today = timezone.localdate()
    return metrics.Period(start=today - timedelta(days=days - 1), end=today, site=site)


def query_of(period: metrics.Period) -> str:
    return f"from={period.start.isoformat()}&to={period.end.isoformat()}"


def set_fields(instance, **fields) -> None:
    type(instance).objects.filter(pk=instance.pk).update(**fields)


def long_ago() -> timezone.datetime:
    return timezone.now() - timedelta(days=60)


# --- exceptions -------------------------------------------------------------------------------------------------


def test_exceptions_per_100_orders_by_stage_source_and_type_with_operator_minutes():
    orders = [make_order() for _ in range(4)]
    old_order = make_order()
    set_fields(old_order, placed_at=long_ago())
    first = raise_on_order("out_of_stock", orders[0])
    raise_on_order("out_of_stock", orders[1], source_system="erp")
    short = raise_on_order("short_pick", orders[2], source_system="wms")
    set_fields(first, operator_minutes=10)
    set_fields(short, operator_minutes=5)
    set_fields(raise_on_order("short_pick", old_order), created_at=long_ago(), operator_minutes=99)

    rates = metrics.exception_rates(last_days(30))

    # 3 exceptions in the period over 4 orders placed in it (the old order and its exception are outside).
    assert (rates["orders"], rates["exceptions"], rates["per_100_orders"], rates["operator_minutes"]) == (4, 3, 75.0, 15)
    assert [(g["key"], g["count"], g["per_100_orders"]) for g in rates["by_stage"]] == [
        ("allocation", 2, 50.0),
        ("warehouse", 1, 25.0),
    ]
    assert sorted((g["key"], g["count"], g["per_100_orders"]) for g in rates["by_source"]) == [
        ("erp", 1, 25.0),
        ("portal", 1, 25.0),
        ("wms", 1, 25.0),
    ]
    assert [(g["code"], g["count"], g["per_100_orders"], g["minutes"]) for g in rates["by_type"]] == [
        ("out_of_stock", 2, 50.0, 10),
        ("short_pick", 1, 25.0, 5),
    ]


def test_no_orders_in_the_period_gives_no_rate_rather_than_a_division_by_zero():
    set_fields(make_order(), placed_at=long_ago())
    assert metrics.exception_rates(last_days(1))["per_100_orders"] is None


def test_open_exceptions_by_queue_and_by_age_band():
    now = timezone.now()
    ages = {"out_of_stock": [timedelta(hours=1), timedelta(hours=10)], "short_pick": [timedelta(days=2), timedelta(days=5)]}
    for code, code_ages in ages.items():
        for age in code_ages:
            set_fields(raise_on_order(code), detected_at=now - age)
    closed = raise_on_order("short_pick")
    set_fields(closed, status="resolved", resolved_at=now)

    figures = metrics.open_exceptions(last_days(30), now=now)

    assert figures["total"] == 4
    assert [(q["label"], q["count"]) for q in figures["by_queue"]] == [("Stock and allocation", 2), ("Warehouse floor", 2)]
    assert [(b["key"], b["count"]) for b in figures["by_age"]] == [("under_4h", 1), ("4h_24h", 1), ("1d_3d", 1), ("over_3d", 1)]


def test_sla_warned_and_breached_as_counts_and_rates():
    now = timezone.now()
    future, past = now + timedelta(hours=5), now - timedelta(hours=1)
    warned, escalated, resolved_late, open_overdue, resolved_in_time = (raise_on_order("out_of_stock") for _ in range(5))
    set_fields(warned, warned_at=past, due_at=future)
    set_fields(escalated, escalated=True, escalated_at=past, due_at=future)
    set_fields(resolved_late, status="resolved", due_at=now - timedelta(hours=3), resolved_at=past)
    set_fields(open_overdue, due_at=past)
    set_fields(resolved_in_time, status="resolved", due_at=future, resolved_at=past)

    figures = metrics.sla(last_days(30), now=now)

    assert (figures["total"], figures["warned"], figures["breached"]) == (5, 1, 3)
    assert (figures["warned_rate"], figures["breached_rate"]) == (20.0, 60.0)


def test_time_to_first_response_and_to_resolve_median_and_90th_percentile_in_hours():
    detected = timezone.now() - timedelta(days=5)
    for hours in (1, 2, 3, 4):
        set_fields(raise_on_order("out_of_stock"), detected_at=detected, first_response_at=detected + timedelta(hours=hours))
    for hours in (10, 20):
        set_fields(
            raise_on_order("short_pick"), status="resolved", detected_at=detected, resolved_at=detected + timedelta(hours=hours)
        )
    # Dismissed is not resolved: its time does not count.
    set_fields(
        raise_on_order("short_pick"), status="dismissed", detected_at=detected, resolved_at=detected + timedelta(hours=100)
    )

    times = metrics.response_times(last_days(30))

    # Interpolated: the median of 1..4 is 2.5; the 90th percentile is 1 + 0.9 x (4 - 1) = 3.7.
    assert times["first_response"] == {"count": 4, "median": 2.5, "p90": 3.7}
    # Of 10 and 20: median 15, 90th percentile 10 + 0.9 x 10 = 19.
    assert times["resolve"] == {"count": 2, "median": 15.0, "p90": 19.0}


def test_the_python_percentile_interpolates_as_percentile_cont():
    assert metrics._interpolated([1.0, 2.0, 3.0, 4.0], 0.9) == pytest.approx(3.7)
    assert metrics._interpolated([10.0, 20.0], 0.5) == 15.0
    assert metrics._interpolated([7.0], 0.9) == 7.0


def test_top_ten_skus_locations_and_partners_and_the_site_filter():
    a, b = LocationFactory(code="SITE-A"), LocationFactory(code="SITE-B")
    x, y = SkuFactory(code="SKU-X"), SkuFactory(code="SKU-Y")
    for number, (location, sku) in enumerate([(a, x), (a, x), (a, x), (b, y)]):
        exception_raise(
            code="stock_discrepancy",
            summary="count differs",
            location=location,
            sku=sku,
            dedupe_key=f"count-{number}",
            actor=TEST_ACTOR,
        )
    order = make_order()
    raise_on_order("out_of_stock", order)

    top = metrics.top_tens(last_days(30))

    assert [(r["label"], r["count"]) for r in top["skus"]] == [("SKU-X", 3), ("SKU-Y", 1)]
    assert [(r["label"], r["count"]) for r in top["locations"]] == [("SITE-A", 3), ("SITE-B", 1)]
    assert [(r["code"], r["count"]) for r in top["partners"]] == [(order.partner.code, 1)]
    at_b = metrics.top_tens(last_days(30, site=b))
    assert [(r["label"], r["count"]) for r in at_b["skus"]] == [("SKU-Y", 1)]
    assert at_b["partners"] == []


def test_the_daily_trend_of_exceptions_created_and_resolved():
    now = timezone.now()
    two_days_ago, yesterday = now - timedelta(days=2), now - timedelta(days=1)
    for _ in range(2):
        set_fields(raise_on_order("out_of_stock"), created_at=two_days_ago)
    set_fields(raise_on_order("short_pick"), status="resolved", resolved_at=yesterday)

    trend = metrics.daily_trend(last_days(3))

    assert trend["days"] == [two_days_ago.date(), yesterday.date(), now.date()]
    assert trend["created"] == [2, 0, 1]
    assert trend["resolved"] == [0, 1, 0]


# --- orders -----------------------------------------------------------------------------------------------------


def routed(network, lines):
    order = lifecycle_services.order_mark_ready(order=make_order(lines=lines), actor=TEST_ACTOR)
    allocation_services.order_route(order=order, actor=TEST_ACTOR)
    return Order.objects.get(pk=order.pk)


def shipped(order: Order) -> Order:
    lifecycle_services.order_release(order=order, actor=TEST_ACTOR)
    for shipment in Shipment.objects.filter(order=order):
        shipment_services.shipment_pick(shipment=shipment, actor=TEST_ACTOR)
        shipment_services.shipment_ship(shipment=shipment, carrier="UPS", tracking_number="1Z", actor=TEST_ACTOR)
    return Order.objects.get(pk=order.pk)


def test_fill_perfect_order_on_time_and_processing_time(network):
    x, y = network["x"], network["y"]
    on_time = shipped(routed(network, [(x, 2)]))  # one line, from A
    late = shipped(routed(network, [(y, 2)]))  # one line, from B
    split = routed(network, [(x, 1), (y, 1)])  # two lines, both found (a split waiting for approval)
    short = routed(network, [(x, 50)])  # one line, nobody has 50: short at first allocation
    assert (split.status, short.status) == (OrderStatus.AWAITING_APPROVAL, OrderStatus.BACKORDERED)
    lifecycle_services.order_cancel(order=split, reason="customer changed their mind", actor=TEST_ACTOR)
    now = timezone.now()
    set_fields(on_time, promised_ship_by=now + timedelta(days=1))
    set_fields(late, promised_ship_by=now - timedelta(days=1))
    # Placed 2 h and 6 h before their release.
    for order, hours in ((on_time, 2), (late, 6)):
        released_at = OrderEvent.objects.get(order=order, kind="transition", to_status="released").at
        set_fields(order, placed_at=released_at - timedelta(hours=hours))

    figures = metrics.order_figures(last_days(30))

    # Lines routed: 1 + 1 + 2 + 1 = 5, of which the short order's one line was short: 4 of 5.
    assert (figures["lines"], figures["filled"], figures["fill_rate"]) == (5, 4, 80.0)
    # Finished: the two shipped and the cancelled split; perfect: only the one shipped by its promise.
    assert (figures["finished"], figures["perfect"], figures["perfect_rate"]) == (3, 1, 33.3)
    assert (figures["promised_shipped"], figures["shipped_on_time"], figures["on_time_rate"]) == (2, 1, 50.0)
    # Of 2 h and 6 h: median 4 h, 90th percentile 2 + 0.9 x 4 = 5.6 h.
    assert figures["processing"] == {"count": 2, "median": 4.0, "p90": 5.6}


def test_an_exception_spoils_a_perfect_order(network):
    order = shipped(routed(network, [(network["x"], 1)]))
    assert metrics.order_figures(last_days(30))["perfect"] == 1
    raise_on_order("delivery_failed", order)
    assert metrics.order_figures(last_days(30))["perfect"] == 0


# --- integrations -----------------------------------------------------------------------------------------------


def system(slug: str, kind: str) -> ExternalSystem:
    return ExternalSystem.objects.create(slug=slug, name=slug.upper(), kind=kind, adapter=f"generic_{kind}", secret="s")


def test_integration_failure_rate_per_system():
    erp, wms = system("erp", "erp"), system("wms", "wms")
    for number, status in enumerate(
        [DeliveryStatus.DEAD, DeliveryStatus.DELIVERED, DeliveryStatus.DELIVERED, DeliveryStatus.PENDING]
    ):
        Delivery.objects.create(message=OutboxMessage.objects.create(type=f"t{number}", payload={}), system=erp, status=status)
    old = Delivery.objects.create(
        message=OutboxMessage.objects.create(type="old", payload={}), system=erp, status=DeliveryStatus.DEAD
    )
    set_fields(old, created_at=long_ago())
    for number, status in enumerate([InboundStatus.FAILED, InboundStatus.APPLIED]):
        InboundEvent.objects.create(system=wms, sender_id=f"m{number}", body=b"{}", occurred_at=timezone.now(), status=status)

    rows = {row["slug"]: row for row in metrics.integration_failures(last_days(30))}

    assert (rows["erp"]["deliveries"], rows["erp"]["dead"], rows["erp"]["dead_rate"]) == (4, 1, 25.0)
    assert (rows["erp"]["inbound"], rows["erp"]["failed_rate"]) == (0, None)
    assert (rows["wms"]["inbound"], rows["wms"]["failed"], rows["wms"]["failed_rate"]) == (2, 1, 50.0)


# --- the page and its exports -----------------------------------------------------------------------------------


def test_the_page_links_each_figure_to_the_filtered_queue(client, coordinator):
    exception = raise_on_order("short_pick")
    client.force_login(coordinator)
    response = client.get("/")
    assert response.status_code == 200
    by_type = response.context["tables"]["by_type"]
    label, count, *_ = by_type.rows[0]
    assert (label.value, count.value) == ("Short pick", 1)
    period = response.context["period"]
    in_period = f"tab=team&state=all&created_from={period.start.isoformat()}&created_to={period.end.isoformat()}"
    assert count.url == f"/queues/?{in_period}&type={exception.type_id}"
    assert f'href="/queues/?{in_period.replace("&", "&amp;")}&amp;type={exception.type_id}"' in response.content.decode()
    assert response.context["charts"]["created"].has_points


def test_the_site_narrows_the_links_and_the_figures(client, coordinator):
    site = LocationFactory(code="NORTH")
    exception_raise(code="stock_discrepancy", summary="count", location=site, actor=TEST_ACTOR)
    raise_on_order("short_pick")
    client.force_login(coordinator)
    response = client.get(f"/?site={site.pk}")
    assert response.context["figures"]["rates"]["exceptions"] == 1
    url = response.context["tables"]["by_type"].rows[0][1].url
    assert f"&location={site.pk}&type={ExceptionType.objects.get(code='stock_discrepancy').pk}" in url


def test_a_bad_date_shows_a_message_and_the_default_period(client, coordinator):
    client.force_login(coordinator)
    response = client.get("/?from=2026-13-01&to=yesterday")
    assert response.status_code == 200
    assert "“2026-13-01” is not a date as YYYY-MM-DD; showing the last 30 days." in response.content.decode()
    period = response.context["period"]
    assert (period.start, period.end) == metrics.default_period()


def test_a_period_that_ends_before_it_starts_and_an_unknown_site_are_named(client, coordinator):
    client.force_login(coordinator)
    response = client.get("/?from=2026-03-10&to=2026-03-01&site=999999")
    errors = response.context["errors"]
    assert errors == [
        "The period ends (2026-03-01) before it starts (2026-03-10); showing the last 30 days.",
        "There is no site “999999”; showing all sites.",
    ]


def test_the_query_count_is_the_same_for_a_day_and_a_year(client, coordinator, django_assert_num_queries):
    for days_ago in (0, 3, 100, 300):
        exception = raise_on_order("out_of_stock")
        set_fields(exception, created_at=timezone.now() - timedelta(days=days_ago))
        set_fields(exception.order, placed_at=timezone.now() - timedelta(days=days_ago))
    client.force_login(coordinator)
    client.get("/")  # the session and the user are read once per request either way; warm any caches
    with CaptureQueriesContext(connection) as one_day:
        assert client.get(f"/?{query_of(last_days(1))}").status_code == 200
    with django_assert_num_queries(len(one_day.captured_queries)):
        response = client.get(f"/?{query_of(last_days(365))}")
    assert response.context["figures"]["rates"]["exceptions"] == 4
    assert len(response.context["figures"]["trend"]["days"]) == 365


def test_a_table_exports_as_csv(client, coordinator):
    raise_on_order("out_of_stock", make_order())
    make_order()
    period = last_days(7)
    client.force_login(coordinator)
    response = client.get(f"/dashboard.csv?table=by_type&{query_of(period)}")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="dashboard-by_type-{period.start}-{period.end}.csv"'
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows == [["Type", "Exceptions", "Per 100 orders", "Operator minutes"], ["Out of stock", "1", "50.0", "0"]]


def test_an_unknown_table_is_a_404_that_names_the_tables(client, coordinator):
    client.force_login(coordinator)
    response = client.get("/dashboard.csv?table=nope")
    assert response.status_code == 404
    assert "There is no dashboard table “nope”" in response.content.decode()
    assert "by_type" in response.content.decode()


def test_the_dashboard_needs_a_role(client):
    from tests.factories import UserFactory

    client.force_login(UserFactory(username="partner-acme"))
    assert client.get("/").status_code == 403
    assert FulfillmentException.objects.count() == 0


def test_a_rate_with_nothing_to_divide_by_is_a_dash_on_the_page_and_empty_in_the_csv(client, coordinator):
    client.force_login(coordinator)
    page = client.get("/").content.decode()
    assert 'Fill rate (%)</td><td class="num"><a href=' in page and ">—</a>" in page
    rows = list(csv.reader(io.StringIO(client.get("/dashboard.csv?table=orders").content.decode())))
    assert rows[1] == ["Fill rate (%)", "", "0", "0"]


# --- every figure's link lists the rows the figure counts ------------------------------------------------------


def count_behind(client, url: str) -> int:
    response = client.get(url)
    # The admin answers a lookup it refuses with a redirect to ?e=1, which fails here.
    assert response.status_code == 200, url
    if url.startswith("/admin/"):
        return response.context["cl"].result_count
    return response.context["page"].paginator.count


def linked_counts(tables) -> list[tuple[str, str, int, str]]:
    """(table, row label, figure, url) of each whole-number figure that links somewhere."""
    found = []
    for table in tables.values():
        for row in table.rows:
            for cell in row[1:]:
                if cell.url and isinstance(cell.value, int):
                    found.append((table.name, str(row[0].value), cell.value, cell.url))
    return found


def test_each_count_on_the_page_is_the_count_of_the_list_its_link_opens(admin_client, network):
    now = timezone.now()
    x, y = network["x"], network["y"]
    on_time = shipped(routed(network, [(x, 2)]))
    late = shipped(routed(network, [(y, 2)]))
    short = routed(network, [(x, 50)])
    set_fields(on_time, promised_ship_by=now + timedelta(days=1))
    set_fields(late, promised_ship_by=now - timedelta(days=1))
    site = network["a"]
    # Open and closed, warned and breached, responded, young and old, at a site, on an order shipping from one.
    at_site = exception_raise(code="stock_discrepancy", summary="count", location=site, sku=x, actor=TEST_ACTOR)
    set_fields(at_site, warned_at=now, first_response_at=now, detected_at=now - timedelta(days=2))
    on_late = raise_on_order("delivery_failed", late, source_system="carrier")
    set_fields(on_late, status="resolved", resolved_at=now, due_at=now - timedelta(hours=1))
    set_fields(raise_on_order("out_of_stock", short, source_system="erp"), escalated=True, detected_at=now - timedelta(days=5))
    set_fields(raise_on_order("short_pick", on_time), status="dismissed", resolved_at=now)
    set_fields(raise_on_order("short_pick"), created_at=long_ago())  # outside the period
    erp = system("erp", "erp")
    for number, status in enumerate([DeliveryStatus.DEAD, DeliveryStatus.DELIVERED]):
        Delivery.objects.create(message=OutboxMessage.objects.create(type=f"t{number}", payload={}), system=erp, status=status)
    for number, status in enumerate([InboundStatus.FAILED, InboundStatus.APPLIED, InboundStatus.FAILED]):
        InboundEvent.objects.create(system=erp, sender_id=f"m{number}", body=b"{}", occurred_at=now, status=status)

    for query in ("", f"?site={site.pk}"):
        tables = admin_client.get("/" + query).context["tables"]
        found = linked_counts(tables)
        # Every table but the daily trend (days, not rows) has linked counts.
        assert {name for name, *_ in found} >= set(metrics.TABLE_NAMES) - {"trend"}
        mismatched = [
            (name, label, figure, url, listed)
            for name, label, figure, url in found
            if (listed := count_behind(admin_client, url)) != figure
        ]
        assert mismatched == []
    # The set is not trivial: closed ones count in the period's figures, and the site narrows them.
    whole = admin_client.get("/").context["figures"]
    assert (whole["sla"]["total"], whole["sla"]["warned"], whole["sla"]["breached"]) == (4, 1, 2)
    assert whole["open"]["total"] == 3  # open now, whatever the period: the old one too
    tiles = metrics.Links(metrics.Period(*metrics.default_period())).tiles
    assert count_behind(admin_client, tiles["rate"]) == whole["rates"]["exceptions"]
    assert count_behind(admin_client, tiles["open"]) == whole["open"]["total"]
    assert count_behind(admin_client, tiles["breached"]) == whole["sla"]["breached"]
    assert count_behind(admin_client, tiles["perfect"]) == whole["orders"]["finished"]
