from io import StringIO

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command

from exceptions.models import ExceptionEvent
from inventory.models import StockMovement
from inventory.selectors import stock_ledger_mismatches
from orders.models import Order, OrderEvent, OrderStatus

pytestmark = pytest.mark.django_db


def seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def test_seed_demo_builds_every_lifecycle_state_and_is_idempotent():
    seed()
    counts = (Order.objects.count(), OrderEvent.objects.count(), StockMovement.objects.count(), ExceptionEvent.objects.count())

    out = seed()

    assert (
        Order.objects.count(),
        OrderEvent.objects.count(),
        StockMovement.objects.count(),
        ExceptionEvent.objects.count(),
    ) == counts
    assert set(Order.objects.values_list("status", flat=True)) == set(OrderStatus.values)
    assert stock_ledger_mismatches() == []
    assert "Partner northwind-shop: API token " in out


def test_seed_demo_opens_exceptions_across_queues_near_and_past_their_sla():
    from exceptions.models import ExceptionEvent, FulfillmentException

    seed()
    exceptions = list(FulfillmentException.objects.select_related("queue"))
    states = {e.sla_state() for e in exceptions}
    assert len({e.type_id for e in exceptions}) >= 15
    assert len({e.queue.slug for e in exceptions}) >= 6
    assert {"ok", "warning", "breached"} <= states
    assert ExceptionEvent.objects.filter(kind="escalated").exists()
    assert {"coordinator", "service", "opsadmin"} <= {u.username for e in exceptions for u in e.queue.members.all()}


def test_demo_users_sign_in_with_the_demo_password_and_hold_their_roles(settings):
    seed()
    roles = {}
    for username in ("coordinator", "service", "opsadmin", "admin"):
        user = authenticate(username=username, password=settings.DEMO_PASSWORD)
        assert user is not None, username
        roles[username] = set(user.groups.values_list("name", flat=True))
    assert roles["coordinator"] == {"coordinator"}
    assert roles["service"] == {"customer_service"}
    assert roles["opsadmin"] == {"ops_admin"}
    assert authenticate(username="admin", password=settings.DEMO_PASSWORD).is_superuser
