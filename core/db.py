"""Database helpers: transactions PostgreSQL may have to break a deadlock in, and advisory locks."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from typing import TypeVar

from django.db import OperationalError, connection, transaction

logger = logging.getLogger(__name__)
T = TypeVar("T")
DEADLOCK_DETECTED = "40P01"  # SQLSTATE
ATTEMPTS = 3


def atomic_retrying_deadlocks(work: Callable[[], T], *, attempts: int = ATTEMPTS) -> T:
    """Run `work` in a transaction of its own and, when PostgreSQL breaks a deadlock by failing it, run it again.

    Wherever we know both sides, rows are locked in one order and no deadlock can form (see
    orders.services._lock_stock_of). This is for the cycles no single order prevents, such as
    two orders each opening exceptions in the same two self-assigning queues, in opposite order.
    A failed attempt committed nothing. Inside a caller's transaction nothing is retried: that
    transaction still holds its locks, and only its owner can start it again.
    """
    for attempt in range(1, attempts + 1):
        try:
            with transaction.atomic():
                return work()
        except OperationalError as failure:
            deadlock = getattr(failure.__cause__, "sqlstate", None) == DEADLOCK_DETECTED
            if not deadlock or attempt == attempts or transaction.get_connection().in_atomic_block:
                raise
            logger.warning("deadlock broken by PostgreSQL, attempt %d of %d; running the transaction again", attempt, attempts)
    raise AssertionError("unreachable")


def advisory_xact_lock(identity: str) -> None:
    """Make transactions naming the same `identity` run one after the other, until this one ends.

    PostgreSQL only (a transaction-scoped advisory lock on a hash of the identity); SQLite already
    lets one writing transaction run at a time.
    """
    if connection.vendor != "postgresql":
        return
    lock_id = int.from_bytes(hashlib.sha256(identity.encode()).digest()[:8], "big", signed=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [lock_id])
