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
