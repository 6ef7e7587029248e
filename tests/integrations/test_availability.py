"""Available to sell, pushed to the storefronts through the outbox: coalesced per SKU and location per window."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from integrations.models import OutboxMessage, PublishedAvailability, SyncCursor
from integrations.services.availability import CURSOR, availability_publish
from integrations.services.outbox import MessageType
from integrations.services.systems import system_ensure
from inventory.models import StockLevel
from inventory.services import stock_release, stock_reserve
from orders.services.partners import partner_ensure
from tests.factories import TEST_ACTOR, LocationFactory, SkuFactory, stock

pytestmark = pytest.mark.django_db


@pytest.fixture
def storefront(db):
    partner_ensure(code="web", name="Web")
    return system_ensure(
        slug="web", kind="storefront", adapter="generic_storefront", partner="web", base_url="http://127.0.0.1:9/"
    ).system


@pytest.fixture
def level(db):
    east, mug = LocationFactory(code="WH-EAST"), SkuFactory(code="MUG-1")
    stock(east, mug, 500)
    return StockLevel.objects.get(location=east, sku=mug)


def availability_messages():
    return OutboxMessage.objects.filter(type=MessageType.AVAILABILITY).order_by("pk")


def test_a_burst_of_a_hundred_reservations_sends_one_message_with_the_final_figure(storefront, level):
    availability_publish()  # the figure before the burst: 500
    for _ in range(100):
        stock_reserve(location_id=level.location_id, sku_id=level.sku_id, quantity=3, actor=TEST_ACTOR)

    assert availability_publish() == 1

    first, burst = availability_messages()
    assert first.payload == {"sku": "MUG-1", "location": "WH-EAST", "available": 500}
    assert burst.payload == {"sku": "MUG-1", "location": "WH-EAST", "available": 200}
    assert [d.system.slug for d in burst.deliveries.all()] == ["web"]
    published = PublishedAvailability.objects.get()
    assert (published.available, published.message) == (200, burst)


def test_nothing_is_sent_when_the_figure_is_what_the_storefront_already_has(storefront, level):
    availability_publish()
    stock_reserve(location_id=level.location_id, sku_id=level.sku_id, quantity=5, actor=TEST_ACTOR)
    stock_release(location_id=level.location_id, sku_id=level.sku_id, quantity=5, actor=TEST_ACTOR)
    assert availability_publish() == 0
    assert availability_publish() == 0  # and a run with nothing new sends nothing either
    assert availability_messages().count() == 1


def test_each_sku_and_location_that_changed_gets_its_own_message(storefront, level):
    west, cup = LocationFactory(code="WH-WEST"), SkuFactory(code="CUP-1")
    stock(west, level.sku, 10)
    stock(level.location, cup, 7)
    assert availability_publish() == 3
    figures = {(m.payload["sku"], m.payload["location"]): m.payload["available"] for m in availability_messages()}
    assert figures == {("MUG-1", "WH-EAST"): 500, ("MUG-1", "WH-WEST"): 10, ("CUP-1", "WH-EAST"): 7}


def test_without_a_storefront_nothing_is_written(level):
    assert availability_publish() == 0
    assert not OutboxMessage.objects.exists()
    assert not PublishedAvailability.objects.exists()


def test_levels_unchanged_since_the_last_run_are_not_read_again(storefront, level):
    old = timezone.now() - timedelta(hours=1)
    StockLevel.objects.filter(pk=level.pk).update(updated_at=old)
    SyncCursor.objects.create(name=CURSOR, at=old + timedelta(seconds=settings.AVAILABILITY_LOOKBACK_SECONDS + 5))
    assert availability_publish() == 0  # never published, but unchanged since the cursor: not looked at


def test_the_run_takes_the_same_queries_for_one_change_and_for_fifty(storefront, level):
    availability_publish()
    stock_reserve(location_id=level.location_id, sku_id=level.sku_id, quantity=1, actor=TEST_ACTOR)
    with CaptureQueriesContext(connection) as one:
        assert availability_publish() == 1
    for number in range(50):
        stock(level.location, SkuFactory(code=f"MORE-{number}"), 3)
    with CaptureQueriesContext(connection) as fifty:
        assert availability_publish() == 50
    assert len(fifty.captured_queries) == len(one.captured_queries)


def test_the_window_is_the_beat_schedule():
    entry = settings.CELERY_BEAT_SCHEDULE["availability-publish"]
    assert entry["task"] == "integrations.tasks.availability_publish_task"
    assert entry["schedule"] <= 60
