"""Order events are written when they happen, and their subscribers hear of them in the same transaction."""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from orders import events, subscribers
from orders.models import OrderEvent
from tests.factories import TEST_ACTOR, make_order

pytestmark = pytest.mark.django_db


@pytest.fixture
def heard():
    """The events a subscriber heard, with whether each was already in the database when it did."""
    received: list[tuple[str, bool]] = []

    def subscriber(event):
        received.append((event.name, OrderEvent.objects.filter(pk=event.pk).exists()))

    subscribers.subscribe(subscriber)
    yield received
    subscribers.unsubscribe(subscriber)


def test_each_event_is_written_when_it_happens_and_its_subscribers_see_it_stored(heard):
    order = make_order()
    heard.clear()

    with transaction.atomic():
        with CaptureQueriesContext(connection) as captured:
            events.order_action(order, name="first", actor=TEST_ACTOR, data={})
        # One INSERT, then the subscriber's own look at the table.
        assert captured.captured_queries[0]["sql"].split(" ")[0:3] == ["INSERT", "INTO", '"orders_orderevent"']
        events.order_sent(order, name="second", actor=TEST_ACTOR, data={})
        assert heard == [("first", True), ("second", True)]

    written = list(OrderEvent.objects.filter(order=order, name__in=["first", "second"]).order_by("id"))
    assert [event.name for event in written] == ["first", "second"]
    assert written[0].at < written[1].at


def test_a_transaction_that_raises_writes_nothing(heard):
    order = make_order()
    before = OrderEvent.objects.count()

    with pytest.raises(RuntimeError), transaction.atomic():
        events.order_action(order, name="lost", actor=TEST_ACTOR, data={})
        raise RuntimeError("the use case failed")

    assert OrderEvent.objects.count() == before
    assert ("lost", True) in heard  # heard inside the transaction, gone with it


def test_every_order_service_event_reaches_the_subscribers(heard):
    order = make_order()

    assert [name for name, stored in heard if stored] == ["created"]
    assert list(OrderEvent.objects.filter(order=order).values_list("name", flat=True)) == ["created"]
