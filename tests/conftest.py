import os

import pytest
from django.conf import settings

from core.actors import Actor


def pytest_configure(config):
    # The suite proves behaviour on the production engines; `make test` starts them.
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql" or not os.environ.get("REDIS_URL"):
        raise pytest.UsageError("The tests run on PostgreSQL and Redis: use `make test` (it starts both under var/).")
    # The suite speaks plain HTTP on loopback (test client, live server, browser, the servers it starts), where
    # the HTTPS redirect and secure-only cookies that DEBUG off turns on would get in the way. Django has read the
    # settings already, but the security middleware reads them when a handler is built and the cookies at each
    # response, both later than this.
    for name in ("SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE"):
        setattr(settings, name, False)
        os.environ[name] = "0"


@pytest.fixture
def actor():
    return Actor.job("test")


@pytest.fixture
def coordinator(db):
    from core.roles import Role
    from tests.factories import user_with_role

    return user_with_role("coord", Role.COORDINATOR, "intake", "stock", "warehouse", "shipping")


@pytest.fixture
def service_agent(db):
    from core.roles import Role
    from tests.factories import user_with_role

    return user_with_role("agent", Role.CUSTOMER_SERVICE, "customer-service")


@pytest.fixture
def ops_admin(db):
    from core.roles import Role
    from tests.factories import user_with_role

    return user_with_role("ops", Role.OPS_ADMIN, "escalations")


@pytest.fixture
def network(db):
    """Three sites, two SKUs, and a rule that asks customer service before it splits."""
    from orders.models import RoutingRule
    from tests.factories import LocationFactory, SkuFactory, stock

    a, b, c = LocationFactory(code="A"), LocationFactory(code="B"), LocationFactory(code="C")
    x, y = SkuFactory(code="X"), SkuFactory(code="Y")
    stock(a, x, 5)
    stock(b, y, 5)
    stock(c, y, 5)
    rule = RoutingRule.objects.create(name="Ask before splitting", priority=1, split_requires_approval=True, max_shipments=2)
    for rank, site in enumerate((a, b, c), start=1):
        rule.ranked_locations.create(location=site, rank=rank)
    return {"a": a, "b": b, "c": c, "x": x, "y": y}
