"""Exception mining on a hand-made history: the Pareto order and its running shares, the weekly buckets, the
recorded root causes, the period asked for, and a query count that does not grow with the history."""

import datetime as dt

import pytest
from django.http import QueryDict
from django.urls import reverse
from django.utils import timezone

from exceptions.models import ExceptionType, FulfillmentException
from fulfillment import mining
from tests.factories import make_order, raise_on_order

pytestmark = pytest.mark.django_db

# Three whole weeks, Monday 2 March to Sunday 22 March 2026.
PERIOD = mining.Period(dt.date(2026, 3, 2), dt.date(2026, 3, 22))
WEEK_1, WEEK_2, WEEK_3 = dt.date(2026, 3, 2), dt.date(2026, 3, 9), dt.date(2026, 3, 16)


def at(day: dt.date, hour: int = 12) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time(hour)))


def recorded(code: str, *, source: str, detected: dt.datetime, minutes: int, root_cause: str = "") -> FulfillmentException:
    exception = raise_on_order(code, order=make_order(), source_system=source)
    FulfillmentException.objects.filter(pk=exception.pk).update(
        detected_at=detected, operator_minutes=minutes, root_cause=root_cause
    )
    return exception


@pytest.fixture
def history(db):
    """Label failures from the WMS cost 60 minutes, short picks 30, label failures from the portal 10; a label
    failure the day after the period (100 minutes) stays out."""
    recorded("label_failure", source="wms", detected=at(WEEK_1), minutes=10, root_cause="carrier")
    recorded("label_failure", source="wms", detected=at(WEEK_1 + dt.timedelta(days=6), 23), minutes=20, root_cause="carrier")
    recorded("label_failure", source="wms", detected=at(WEEK_3), minutes=30)
    recorded("short_pick", source="wms", detected=at(WEEK_2), minutes=15, root_cause="stock")
    recorded("short_pick", source="wms", detected=at(WEEK_2 + dt.timedelta(days=1)), minutes=15, root_cause="process")
    recorded("label_failure", source="portal", detected=at(WEEK_1, 0), minutes=10, root_cause="  ")
    recorded("label_failure", source="wms", detected=at(dt.date(2026, 3, 23), 0), minutes=100, root_cause="carrier")


def test_causes_come_costliest_first_with_the_running_share(history):
    pareto = mining.exception_pareto(PERIOD)

    assert [(c.type_code, c.source_system, c.stage, c.count, c.cost) for c in pareto.causes] == [
        ("label_failure", "wms", "shipping", 3, 60),
        ("short_pick", "wms", "warehouse", 2, 30),
        ("label_failure", "portal", "shipping", 1, 10),
    ]
    assert [c.share for c in pareto.causes] == pytest.approx([0.6, 0.3, 0.1])
    assert [c.cumulative_share for c in pareto.causes] == pytest.approx([0.6, 0.9, 1.0])
    assert pareto.causes[0].mean_minutes == 20
    assert (pareto.total_count, pareto.total_minutes) == (6, 100)


def test_each_cause_has_its_weekly_buckets_zeros_included(history):
    pareto = mining.exception_pareto(PERIOD)
    by_key = {(c.type_code, c.source_system): c for c in pareto.causes}

    assert pareto.weeks == [WEEK_1, WEEK_2, WEEK_3]
    assert by_key["label_failure", "wms"].weekly == [(WEEK_1, 2, 30), (WEEK_2, 0, 0), (WEEK_3, 1, 30)]
    assert by_key["short_pick", "wms"].weekly == [(WEEK_1, 0, 0), (WEEK_2, 2, 30), (WEEK_3, 0, 0)]
    assert by_key["label_failure", "portal"].weekly == [(WEEK_1, 1, 10), (WEEK_2, 0, 0), (WEEK_3, 0, 0)]


def test_root_causes_are_counted_and_blank_reads_not_recorded(history):
    by_key = {(c.type_code, c.source_system): c for c in mining.exception_pareto(PERIOD).causes}

    assert by_key["label_failure", "wms"].root_causes == [("carrier", 2), ("not recorded", 1)]
    assert by_key["short_pick", "wms"].root_causes == [("process", 1), ("stock", 1)]
    assert by_key["label_failure", "portal"].root_causes == [("not recorded", 1)]


def test_no_minutes_recorded_leaves_the_shares_blank(db):
    recorded("short_pick", source="wms", detected=at(WEEK_1), minutes=0)

    (cause,) = mining.exception_pareto(PERIOD).causes

    assert (cause.count, cause.cost, cause.share, cause.cumulative_share) == (1, 0, None, None)


def test_the_period_is_read_from_the_query_string():
    today = dt.date(2026, 6, 30)
    default = mining.Period(dt.date(2026, 4, 2), today)

    assert mining.period_from(QueryDict(""), today=today) == default
    assert mining.period_from(QueryDict("from=2026-03-02&to=2026-03-22"), today=today) == PERIOD
    assert mining.period_from(QueryDict("from=2026-06-01"), today=today) == mining.Period(dt.date(2026, 6, 1), today)
    bad = mining.period_from(QueryDict("from=yesterday&to=2026-03-22"), today=today)
    assert (bad.start, bad.end) == (default.start, default.end)
    assert bad.problem == "“yesterday” is not a date like 2026-01-31; showing the last 90 days."
    assert mining.period_from(QueryDict("from=2026-03-02&to=soon"), today=today).problem.startswith("“soon” is not a date")
    reversed_ = mining.period_from(QueryDict("from=2026-03-22&to=2026-03-02"), today=today)
    assert (reversed_.start, reversed_.end) == (default.start, default.end)
    assert reversed_.problem == "The period starts after it ends; showing the last 90 days."


def test_the_query_count_does_not_grow_with_the_history(db, django_assert_num_queries):
    recorded("short_pick", source="wms", detected=at(WEEK_1), minutes=5, root_cause="stock")
    with django_assert_num_queries(3):
        small = mining.exception_pareto(PERIOD)
    for week, code, source, cause in [
        (WEEK_1, "label_failure", "wms", "carrier"),
        (WEEK_2, "label_failure", "portal", ""),
        (WEEK_2, "damaged_item", "wms", "process"),
        (WEEK_3, "sync_failure", "erp", "integration"),
        (WEEK_3, "short_pick", "wms", "data"),
    ]:
        recorded(code, source=source, detected=at(week), minutes=7, root_cause=cause)
    with django_assert_num_queries(3):
        larger = mining.exception_pareto(PERIOD)
    assert (len(small.causes), len(larger.causes)) == (1, 5)


def test_the_page_links_each_cause_to_its_queue_and_draws_its_trend(client, coordinator, history):
    client.force_login(coordinator)
    label_failure = ExceptionType.objects.get(code="label_failure")

    response = client.get(reverse("exception-mining"), {"from": "2026-03-02", "to": "2026-03-22"})

    assert response.status_code == 200
    page = response.content.decode()
    assert f'href="/queues/?tab=team&amp;type={label_failure.pk}&amp;stage=shipping"' in page
    assert page.count('<svg class="sparkline"') == 3
    assert "carrier: 2" in page and "not recorded: 1" in page
    assert page.index("Label failure") < page.index("Short pick")


def test_a_bad_date_is_said_and_the_default_period_shown(client, coordinator):
    client.force_login(coordinator)

    response = client.get(reverse("exception-mining"), {"from": "31/01/2026"})

    assert response.status_code == 200
    assert "“31/01/2026” is not a date like 2026-01-31; showing the last 90 days." in response.content.decode()
    assert response.context["period"].start == timezone.localdate() - dt.timedelta(days=89)


def test_an_anonymous_visitor_is_sent_to_sign_in(client):
    response = client.get(reverse("exception-mining"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
