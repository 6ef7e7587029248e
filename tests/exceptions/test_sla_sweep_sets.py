"""The SLA sweep changes every due exception with one UPDATE per kind and writes the events in bulk: the same
queries for one due row as for fifty, any backlog in one run, and the events the per-row creators write."""

import threading
from datetime import UTC, datetime, timedelta
from itertools import count

import pytest
from django.db import connection, transaction

from core.actors import SYSTEM
from core.priority import Priority
from exceptions import events
from exceptions.models import ExceptionEvent, ExceptionType, FulfillmentException, SlaPolicy
from exceptions.services import sla_sweep
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
# The "anything due" read, then SAVEPOINT, the warning UPDATE, its events' INSERT, the escalation UPDATE, the
# breach and the escalation events' INSERTs, RELEASE SAVEPOINT.
SWEEP_QUERIES = 8
IDLE_SWEEP_QUERIES = 1  # the "anything due" read alone
EVENT_FIELDS = ("exception_id", "kind", "action", "from_status", "to_status", "actor", "note", "operator_minutes", "data", "at")
_keys = count()


def make_exceptions(
    number: int,
    *,
    due: str,
    code: str = "out_of_stock",
    priority: str = "P3",
    policy: bool = True,
    status: str = "open",
    owner=None,
) -> list[FulfillmentException]:
    """``number`` exceptions of the type and priority, due a warning (``due="warning"``), an escalation
    (``"escalation"``) or nothing yet (``"nothing"``) at NOW; on the type's policy for the priority or on none."""
    exception_type = ExceptionType.objects.get(code=code)
    sla_policy = SlaPolicy.objects.get(exception_type=exception_type, priority=priority) if policy else None
    warn_at, due_at = {
        "warning": (NOW - timedelta(minutes=5), NOW + timedelta(hours=1)),
        "escalation": (NOW - timedelta(hours=2), NOW - timedelta(minutes=1)),
        "nothing": (NOW + timedelta(hours=1), NOW + timedelta(hours=2)),
    }[due]
    return FulfillmentException.objects.bulk_create(
        FulfillmentException(
            type=exception_type,
            dedupe_key=f"sweep:{next(_keys)}",
            summary=f"{code} {due}",
            status=status,
            owner=owner,
            queue=exception_type.default_queue,
            priority=priority,
            sla_policy=sla_policy,
            detected_at=NOW - timedelta(hours=3),
            first_response_due_at=warn_at,
            warn_at=warn_at,
            due_at=due_at,
            waiting_since=NOW - timedelta(hours=1) if status == "waiting" else None,
        )
        for _ in range(number)
    )


def fresh(exception) -> FulfillmentException:
    return FulfillmentException.objects.select_related("queue").get(pk=exception.pk)


def recorded(exception_ids) -> list[tuple]:
    rows = ExceptionEvent.objects.filter(exception_id__in=exception_ids).order_by("exception_id", "id")
    return list(rows.values_list(*EVENT_FIELDS))


@pytest.mark.parametrize("due", [1, 50])
def test_a_sweep_costs_the_same_queries_however_many_are_due(due, django_assert_num_queries):
    make_exceptions(due, due="warning")
    make_exceptions(due, due="escalation")
    make_exceptions(10, due="nothing")

    with django_assert_num_queries(SWEEP_QUERIES):
        assert sla_sweep(now=NOW) == {"warned": due, "escalated": due}
    with django_assert_num_queries(IDLE_SWEEP_QUERIES):
        assert sla_sweep(now=NOW) == {"warned": 0, "escalated": 0}


def test_a_backlog_larger_than_a_batch_of_old_clears_in_one_run():
    warning = make_exceptions(600, due="warning")
    escalation = make_exceptions(600, due="escalation")

    assert sla_sweep(now=NOW) == {"warned": 600, "escalated": 600}
    assert sla_sweep(now=NOW) == {"warned": 0, "escalated": 0}
    assert sla_sweep(now=NOW + timedelta(minutes=1)) == {"warned": 0, "escalated": 0}

    assert FulfillmentException.objects.filter(pk__in=[e.pk for e in warning], warned_at=NOW).count() == 600
    assert FulfillmentException.objects.filter(pk__in=[e.pk for e in escalation], escalated=True).count() == 600
    kinds = ExceptionEvent.objects.filter(kind__in=["sla_warned", "sla_breached", "escalated"])
    assert {kind: kinds.filter(kind=kind).count() for kind in ("sla_warned", "sla_breached", "escalated")} == {
        "sla_warned": 600,
        "sla_breached": 600,
        "escalated": 600,
    }


def test_a_batch_still_caps_a_run_when_asked_for():
    make_exceptions(5, due="warning")
    assert sla_sweep(now=NOW, batch=2) == {"warned": 2, "escalated": 0}
    assert sla_sweep(now=NOW) == {"warned": 3, "escalated": 0}


def test_the_events_are_those_the_per_row_creators_write():
    coordinator = UserFactory(username="sweep-owner")
    before = [
        *make_exceptions(2, due="warning"),
        *make_exceptions(1, due="warning", code="credit_hold", priority="P1"),
        *make_exceptions(1, due="escalation", priority="P3", owner=coordinator),  # moves to escalations
        *make_exceptions(1, due="escalation", priority="P1"),  # stays P1
        *make_exceptions(1, due="escalation", priority="P4", policy=False, owner=coordinator),  # stays in its queue
    ]
    before = [fresh(exception) for exception in before]
    targets = {
        e.pk: (e.sla_policy.escalation_queue if e.sla_policy and e.sla_policy.escalation_queue_id else e.queue) for e in before
    }

    assert sla_sweep(now=NOW) == {"warned": 3, "escalated": 3}
    written = recorded(targets)

    # What the per-row creators write from the same exceptions as they were, in a transaction rolled back.
    class Rollback(Exception):
        pass

    try:
        with transaction.atomic():
            ExceptionEvent.objects.filter(exception_id__in=targets).delete()
            for exception in before:
                if exception.due_at > NOW:
                    events.exception_sla_warned(exception, at=NOW)
                    continue
                events.exception_sla_breached(exception, at=NOW)
                events.exception_escalated(
                    exception,
                    at=NOW,
                    from_priority=exception.priority,
                    to_priority=Priority(exception.priority).raised(),
                    from_queue=exception.queue.name,
                    to_queue=targets[exception.pk].name,
                )
            per_row = recorded(targets)
            raise Rollback
    except Rollback:
        pass

    assert written == per_row
    assert len(written) == 3 + 2 * 3
    assert {row[EVENT_FIELDS.index("actor")] for row in written} == {str(SYSTEM)}
    escalated = {row[0]: row[-2] for row in written if row[1] == "escalated"}
    moved, stays_p1, no_policy = before[3:]
    assert escalated[moved.pk] == {
        "from_priority": "P3",
        "to_priority": "P2",
        "from_queue": "Stock and allocation",
        "to_queue": "Escalations",
        "due_at": moved.due_at.isoformat(),
    }
    assert (escalated[stays_p1.pk]["from_priority"], escalated[stays_p1.pk]["to_priority"]) == ("P1", "P1")
    assert escalated[no_policy.pk]["from_queue"] == escalated[no_policy.pk]["to_queue"] == no_policy.queue.name


def test_escalation_moves_queue_raises_priority_and_clears_the_owner_only_on_a_move():
    coordinator = UserFactory(username="sweep-owner")
    (moved,) = make_exceptions(1, due="escalation", priority="P3", owner=coordinator)
    (stays,) = make_exceptions(1, due="escalation", priority="P4", policy=False, owner=coordinator)
    (top,) = make_exceptions(1, due="escalation", priority="P1")
    queue_before = fresh(stays).queue

    assert sla_sweep(now=NOW)["escalated"] == 3

    moved, stays, top = fresh(moved), fresh(stays), fresh(top)
    assert (moved.queue.slug, moved.priority, moved.owner_id) == ("escalations", "P2", None)
    assert (stays.queue, stays.priority, stays.owner_id) == (queue_before, "P3", coordinator.pk)
    assert top.priority == "P1"
    for exception in (moved, stays, top):
        assert exception.escalated and exception.escalated_at == NOW and exception.updated_at == NOW
        assert exception.warned_at is None  # a breach does not pretend a warning went out


def test_a_second_run_finds_nothing_and_closed_ones_are_left_alone():
    make_exceptions(3, due="warning")
    make_exceptions(3, due="escalation")
    make_exceptions(2, due="escalation", status="resolved")
    make_exceptions(2, due="warning", status="dismissed")

    assert sla_sweep(now=NOW) == {"warned": 3, "escalated": 3}
    assert sla_sweep(now=NOW) == {"warned": 0, "escalated": 0}
    assert ExceptionEvent.objects.count() == 3 + 2 * 3


def test_exceptions_paused_while_waiting_are_untouched():
    paused = [
        *make_exceptions(2, due="warning", status="waiting"),
        *make_exceptions(2, due="escalation", status="waiting"),
        *make_exceptions(1, due="escalation", status="waiting", policy=False),  # no policy: the clock stops too
    ]
    SlaPolicy.objects.filter(exception_type__code="credit_hold", priority="P2").update(pause_while_waiting=False)
    running = make_exceptions(1, due="escalation", code="credit_hold", priority="P2", status="waiting")

    assert sla_sweep(now=NOW) == {"warned": 0, "escalated": 1}

    assert not ExceptionEvent.objects.filter(exception__in=paused).exists()
    for exception in paused:
        after = fresh(exception)
        assert (after.warned_at, after.escalated, after.priority, after.queue_id) == (None, False, "P3", exception.queue_id)
    assert fresh(running[0]).escalated


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_row_another_transaction_holds_is_skipped_and_taken_by_the_next_run():
    held, free = make_exceptions(2, due="escalation")
    locked, release, done = threading.Event(), threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic():
                FulfillmentException.objects.select_for_update().get(pk=held.pk)
                locked.set()
                release.wait(10)
        finally:
            connection.close()
            done.set()

    threading.Thread(target=hold).start()
    assert locked.wait(10)
    try:
        assert sla_sweep(now=NOW) == {"warned": 0, "escalated": 1}
    finally:
        release.set()
        assert done.wait(10)
    assert fresh(free).escalated and not fresh(held).escalated
    assert sla_sweep(now=NOW) == {"warned": 0, "escalated": 1}
    assert sla_sweep(now=NOW) == {"warned": 0, "escalated": 0}
    assert ExceptionEvent.objects.filter(exception=held, kind="escalated").count() == 1
