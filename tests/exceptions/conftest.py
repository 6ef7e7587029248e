import pytest
from django.contrib.auth.models import Group

from exceptions.models import Queue
from exceptions.services import exception_raise
from fulfillment.roles import Role
from tests.factories import TEST_ACTOR, UserFactory, make_order


def user_with_role(username: str, role: Role | None, *queue_slugs: str):
    user = UserFactory(username=username)
    if role:
        user.groups.add(Group.objects.get(name=role))
    for queue in Queue.objects.filter(slug__in=queue_slugs):
        queue.members.add(user)
    return user


@pytest.fixture
def coordinator(db):
    return user_with_role("coord", Role.COORDINATOR, "intake", "stock", "warehouse", "shipping")


@pytest.fixture
def service_agent(db):
    return user_with_role("agent", Role.CUSTOMER_SERVICE, "customer-service")


@pytest.fixture
def ops_admin(db):
    return user_with_role("ops", Role.OPS_ADMIN, "escalations")


def raise_on_order(code: str, order=None, **kwargs):
    order = order or make_order()
    return exception_raise(code=code, summary=f"{code} on {order.external_id}", order=order, actor=TEST_ACTOR, **kwargs)
