"""Order events written together: one INSERT at the end of the block, in the order they happened."""

import pytest
from django.db import transaction

from orders import events
from orders.models import OrderEvent
from tests.factories import TEST_ACTOR, make_order

pytestmark = pytest.mark.django_db


def test_events_of_a_block_are_written_with_one_insert_in_their_order(django_assert_num_queries):
    order = make_order()
    with django_assert_num_queries(1), events.batched():
        events.order_action(order, name="first", actor=TEST_ACTOR, data={})
        with events.batched():  # joins the outer block
            events.order_action(order, name="second", actor=TEST_ACTOR, data={})
        events.order_sent(order, name="third", actor=TEST_ACTOR, data={})
    written = list(OrderEvent.objects.filter(order=order, name__in=["first", "second", "third"]).order_by("id"))
    assert [event.name for event in written] == ["first", "second", "third"]
    assert written[0].at < written[1].at < written[2].at  # each keeps the moment it happened


def test_a_block_that_raises_writes_nothing():
    order = make_order()
    before = OrderEvent.objects.count()
    with pytest.raises(RuntimeError), transaction.atomic(), events.batched():
        events.order_action(order, name="lost", actor=TEST_ACTOR, data={})
        raise RuntimeError("the use case failed")
    assert OrderEvent.objects.count() == before
    events.order_action(order, name="after", actor=TEST_ACTOR, data={})  # outside a block: written at once
    assert OrderEvent.objects.filter(order=order, name="after").exists()
