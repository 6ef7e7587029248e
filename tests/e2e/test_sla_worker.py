from datetime import timedelta

import pytest
from django.utils import timezone

from exceptions.models import ExceptionEvent, FulfillmentException
from exceptions.tasks import sla_sweep_task
from tests.factories import raise_on_order

from .conftest import wait_until

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_the_sla_sweep_runs_on_a_real_worker_and_escalates_once(celery_worker):
    overdue = raise_on_order("out_of_stock", detected_at=timezone.now() - timedelta(days=2))
    on_time = raise_on_order("short_pick")

    for _ in range(3):
        sla_sweep_task.apply_async(queue=celery_worker.queue)
    runs = wait_until(lambda: len(celery_worker.succeeded("sla_sweep_task")) == 3 and celery_worker.succeeded("sla_sweep_task"))

    assert "'escalated': 1" in runs[0]
    assert all("'escalated': 0" in run for run in runs[1:])
    escalated = FulfillmentException.objects.get(pk=overdue.pk)
    assert (escalated.queue.slug, escalated.priority) == ("escalations", "P2")
    assert ExceptionEvent.objects.filter(exception=overdue, kind="escalated").count() == 1
    assert not FulfillmentException.objects.get(pk=on_time.pk).escalated
