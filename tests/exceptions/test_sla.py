"""The SLA clock under controlled time: deadlines, pause and resume, warning and escalation."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from exceptions.models import ExceptionEvent, FulfillmentException, SlaPolicy
from exceptions.services import exception_claim, exception_resume, exception_wait, sla_sweep
from exceptions.tasks import sla_sweep_task
from tests.factories import TEST_ACTOR, make_order, raise_on_order

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def at(minutes: float):
    return time_machine.travel(T0 + timedelta(minutes=minutes), tick=False)


def fresh(exception) -> FulfillmentException:
    return FulfillmentException.objects.get(pk=exception.pk)


def raise_p3_out_of_stock():
    """out_of_stock for a standard order: P3, 120 min first response, 1,440 to resolve, warning at 75%."""
    with at(0):
        exception = raise_on_order("out_of_stock", make_order())
    assert exception.priority == "P3"
    return exception


def test_waiting_pauses_the_clock_and_resuming_moves_every_deadline():
    exception = raise_p3_out_of_stock()
    assert exception.due_at == T0 + timedelta(minutes=1440)

    with at(10):
        exception_wait(exception=exception, note="asked the supplier for a date", actor=TEST_ACTOR)
    with at(2000):  # long past the original due time, but the clock was stopped
        assert fresh(exception).sla_state() == "paused"
        assert sla_sweep() == {"warned": 0, "escalated": 0}
    with at(70):
        exception_resume(exception=exception, actor=TEST_ACTOR)

    exception = fresh(exception)
    assert exception.due_at == T0 + timedelta(minutes=1440 + 60)
    assert exception.warn_at == T0 + timedelta(minutes=1080 + 60)
    assert exception.first_response_due_at == T0 + timedelta(minutes=120 + 60)
    resumed = ExceptionEvent.objects.filter(exception=exception, action="resume").get()
    assert resumed.data["paused_minutes"] == 60.0


def test_a_policy_that_does_not_pause_keeps_the_clock_running_while_waiting():
    SlaPolicy.objects.filter(exception_type__code="out_of_stock").update(pause_while_waiting=False)
    exception = raise_p3_out_of_stock()
    with at(10):
        exception_wait(exception=exception, note="supplier", actor=TEST_ACTOR)
    with at(70):
        exception_resume(exception=exception, actor=TEST_ACTOR)
    assert fresh(exception).due_at == T0 + timedelta(minutes=1440)

    with at(10):
        exception_wait(exception=exception, note="supplier again", actor=TEST_ACTOR)
    with at(1441):
        assert sla_sweep()["escalated"] == 1  # waiting did not protect it


def test_warning_at_the_threshold_once():
    exception = raise_p3_out_of_stock()
    with at(1079):
        assert sla_sweep() == {"warned": 0, "escalated": 0}
        assert fresh(exception).sla_state() == "ok"
    with at(1080):
        assert sla_sweep() == {"warned": 1, "escalated": 0}
        assert sla_sweep() == {"warned": 0, "escalated": 0}
        assert fresh(exception).sla_state() == "warning"
    assert ExceptionEvent.objects.filter(exception=exception, kind="sla_warned").count() == 1


def test_breach_escalates_once_raising_priority_and_moving_to_the_escalation_queue(coordinator):
    exception = raise_p3_out_of_stock()
    with at(5):
        exception_claim(exception=exception, user=coordinator, actor=TEST_ACTOR)

    with at(1440):
        first = sla_sweep_task()  # the beat task, as the worker runs it
        second = sla_sweep_task()

    assert first["escalated"] == 1 and second == {"warned": 0, "escalated": 0}
    exception = fresh(exception)
    assert exception.escalated and exception.escalated_at == T0 + timedelta(minutes=1440)
    assert exception.priority == "P2"
    assert exception.queue.slug == "escalations"
    assert exception.owner is None  # the escalation team takes it from here
    assert exception.sla_state(T0 + timedelta(minutes=1440)) == "breached"
    kinds = list(ExceptionEvent.objects.filter(exception=exception).values_list("kind", flat=True))
    assert kinds.count("escalated") == 1 and kinds.count("sla_breached") == 1
    escalated = ExceptionEvent.objects.get(exception=exception, kind="escalated")
    assert escalated.data == {
        "from_priority": "P3",
        "to_priority": "P2",
        "from_queue": "Stock and allocation",
        "to_queue": "Escalations",
        "due_at": exception.due_at.isoformat(),
    }


def test_closed_exceptions_are_never_escalated():
    from exceptions.services import exception_resolve

    exception = raise_p3_out_of_stock()
    with at(100):
        exception_resolve(exception=exception, note="restocked", actor=TEST_ACTOR)
    with at(5000):
        assert sla_sweep() == {"warned": 0, "escalated": 0}
    assert not fresh(exception).escalated
