import pytest

from core.roles import Role
from exceptions.models import ExceptionEvent, Presence, Queue
from tests.factories import make_order, raise_on_order, user_with_role

pytestmark = pytest.mark.django_db


def queue_with_members(slug: str, policy: str, *usernames: str) -> list:
    Queue.objects.filter(slug=slug).update(assignment=policy)
    return [user_with_role(name, Role.COORDINATOR, slug) for name in usernames]


def test_a_manual_queue_leaves_work_unassigned():
    queue_with_members("stock", Queue.Assignment.MANUAL, "ann", "bob")
    assert raise_on_order("out_of_stock").owner is None


def test_round_robin_takes_turns_and_skips_people_marked_away():
    ann, bob, cy = queue_with_members("stock", Queue.Assignment.ROUND_ROBIN, "ann", "bob", "cy")
    owners = [raise_on_order("out_of_stock").owner for _ in range(4)]
    assert owners == [ann, bob, cy, ann]

    Presence.objects.create(user=bob, away=True)
    owners = [raise_on_order("out_of_stock").owner for _ in range(3)]
    assert owners == [cy, ann, cy]
    event = ExceptionEvent.objects.filter(kind="assigned").last()
    assert (event.actor, event.data["policy"]) == ("system", "round_robin")


def test_least_loaded_gives_work_to_whoever_has_least_open():
    ann, bob = queue_with_members("warehouse", Queue.Assignment.LEAST_LOADED, "ann", "bob")
    first = raise_on_order("short_pick")
    second = raise_on_order("short_pick")
    third = raise_on_order("short_pick")
    assert [first.owner, second.owner, third.owner] == [ann, bob, ann]

    Presence.objects.create(user=ann, away=True)
    assert raise_on_order("short_pick").owner == bob


def test_nobody_present_means_nobody_assigned():
    (ann,) = queue_with_members("warehouse", Queue.Assignment.LEAST_LOADED, "ann")
    Presence.objects.create(user=ann, away=True)
    assert raise_on_order("damaged_item", make_order()).owner is None


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_least_loaded_counts_an_exception_raised_at_the_same_moment(monkeypatch):
    import time

    from exceptions import events
    from exceptions.models import FulfillmentException
    from tests.threads import run_together

    queue_with_members("warehouse", Queue.Assignment.LEAST_LOADED, "ann", "bob")
    orders = [make_order(), make_order()]
    assigned = events.exception_assigned

    def assigned_slowly(*args, **kwargs):
        event = assigned(*args, **kwargs)
        time.sleep(0.3)  # the owner is written, the transaction not yet committed
        return event

    monkeypatch.setattr(events, "exception_assigned", assigned_slowly)

    assert run_together(2, lambda i: raise_on_order("short_pick", orders[i])) == []
    assert sorted(FulfillmentException.objects.values_list("owner__username", flat=True)) == ["ann", "bob"]
