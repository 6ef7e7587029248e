import os

import pytest
from django.conf import settings

from fulfillment.actors import Actor


def pytest_configure(config):
    # The suite proves behaviour on the production engines; `make test` starts them.
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql" or not os.environ.get("REDIS_URL"):
        raise pytest.UsageError("The tests run on PostgreSQL and Redis: use `make test` (it starts both under var/).")


@pytest.fixture
def actor():
    return Actor.job("test")


@pytest.fixture
def coordinator(db):
    from fulfillment.roles import Role
    from tests.factories import user_with_role

    return user_with_role("coord", Role.COORDINATOR, "intake", "stock", "warehouse", "shipping")


@pytest.fixture
def service_agent(db):
    from fulfillment.roles import Role
    from tests.factories import user_with_role

    return user_with_role("agent", Role.CUSTOMER_SERVICE, "customer-service")


@pytest.fixture
def ops_admin(db):
    from fulfillment.roles import Role
    from tests.factories import user_with_role

    return user_with_role("ops", Role.OPS_ADMIN, "escalations")
