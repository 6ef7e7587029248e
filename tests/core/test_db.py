"""atomic_retrying_deadlocks runs a transaction again only when PostgreSQL failed it to break a deadlock."""

import psycopg
import pytest
from django.db import OperationalError, transaction

from core.db import atomic_retrying_deadlocks


def failing(times: int, cause: Exception):
    calls = []

    def work():
        calls.append(transaction.get_connection().in_atomic_block)
        if len(calls) <= times:
            raise OperationalError("failed") from cause
        return "done"

    return work, calls


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_transaction_failed_by_a_deadlock_runs_again_in_a_transaction_of_its_own():
    work, calls = failing(2, psycopg.errors.DeadlockDetected())

    assert atomic_retrying_deadlocks(work) == "done"
    assert calls == [True, True, True]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_it_gives_up_after_three_attempts_and_other_failures_are_not_retried():
    work, calls = failing(3, psycopg.errors.DeadlockDetected())
    with pytest.raises(OperationalError):
        atomic_retrying_deadlocks(work)
    assert len(calls) == 3

    work, calls = failing(1, psycopg.errors.QueryCanceled())
    with pytest.raises(OperationalError):
        atomic_retrying_deadlocks(work)
    assert len(calls) == 1


@pytest.mark.django_db
def test_inside_a_callers_transaction_nothing_is_retried():
    work, calls = failing(1, psycopg.errors.DeadlockDetected())

    with pytest.raises(OperationalError):
        atomic_retrying_deadlocks(work)
    assert len(calls) == 1
