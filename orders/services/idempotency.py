"""Idempotency keys: one answer per partner and key, given again byte for byte to a retry.

The API's order intake runs through `idempotent`, and so can any other endpoint that a partner may
retry (webhooks among them): the key is claimed in the same transaction as the work it protects,
the answer is stored as the bytes that were sent, and a retry with the same body gets them again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

from django.db import OperationalError, connection, transaction
from django.utils import timezone

from core.db import atomic_retrying_deadlocks
from core.errors import Conflict

from ..models import IdempotencyKey, Partner

Outcome = TypeVar("Outcome")

IDEMPOTENCY_TTL = timedelta(hours=24)
# How long a request waits for another one holding the same Idempotency-Key before answering 409.
IDEMPOTENCY_WAIT = "250ms"


def fingerprint(payload) -> str:
    """The same body gives the same fingerprint whatever its key order or spacing."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Answer:
    status_code: int
    body: bytes  # JSON, exactly as it was first sent
    replayed: bool = False


class KeyReused(Conflict):
    http_status = 422


class KeyInFlight(Conflict):
    http_status = 409


def _in_flight() -> KeyInFlight:
    return KeyInFlight("request_in_progress", "A request with this Idempotency-Key is still being processed; retry in a moment.")


def idempotent(
    *,
    partner: Partner,
    key: str | None,
    body_fingerprint: str,
    act: Callable[[], Outcome],
    answer_of: Callable[[Outcome], Answer],
) -> Answer:
    """Run `act` in a transaction of its own (again, when PostgreSQL breaks a deadlock), once per partner and key,
    and answer with `answer_of` its outcome.

    Without a key, `act` simply runs and its outcome is rendered after the commit, so that the rows it locked
    (a hot SKU's stock level) are not held while the answer is built. With one, the key is claimed first, and the
    answer is rendered inside the transaction to be stored with the key: a key already answered with the same
    body gives that answer again (`replayed`); with another body, 422; still being answered by another request
    after a moment, 409. The claim is an INSERT against a unique constraint, so two requests cannot both hold a
    key; a new key (the usual case) costs that INSERT and the UPDATE that stores the answer.
    """
    if key is None:
        return answer_of(atomic_retrying_deadlocks(act))

    def attempt() -> Answer:
        claimed = claim_locked(partner=partner, key=key, body_fingerprint=body_fingerprint)
        if isinstance(claimed, Answer):
            return claimed
        result = answer_of(act())
        IdempotencyKey.objects.filter(pk=claimed).update(status_code=result.status_code, response=result.body)
        return result

    return atomic_retrying_deadlocks(attempt)


def claim_locked(*, partner: Partner, key: str, body_fingerprint: str) -> int | Answer:
    """The id of the key's new row, or the answer the key already got; in the caller's transaction, before it
    has done anything else (a wait that times out aborts it)."""
    for _ in range(3):
        claimed = _insert(partner=partner, key=key, body_fingerprint=body_fingerprint)
        if claimed is not None:
            return claimed
        stored = IdempotencyKey.objects.select_for_update().filter(partner=partner, key=key).first()
        if stored is None:
            continue  # another request took over the expired key and let it go again: claim once more
        if stored.created_at < timezone.now() - IDEMPOTENCY_TTL:
            stored.delete()  # older than a day (the hourly prune usually got there first): the key is free again
            continue
        if stored.fingerprint != body_fingerprint:
            raise KeyReused(
                "idempotency_key_reused", "This Idempotency-Key was used with a different body; use a new key for a new request."
            )
        return Answer(stored.status_code, bytes(stored.response), replayed=True)
    raise _in_flight()


def _insert(*, partner: Partner, key: str, body_fingerprint: str) -> int | None:
    """INSERT the key unless it exists; its id, or None. Waits a moment for a request that holds it uncommitted."""
    table, key_column = connection.ops.quote_name(IdempotencyKey._meta.db_table), connection.ops.quote_name("key")
    postgresql = connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        try:
            if postgresql:
                cursor.execute(f"SET LOCAL lock_timeout = '{IDEMPOTENCY_WAIT}'")
            cursor.execute(
                f"INSERT INTO {table} (partner_id, {key_column}, fingerprint, created_at) VALUES (%s, %s, %s, %s) "
                f"ON CONFLICT (partner_id, {key_column}) DO NOTHING RETURNING id",
                [partner.pk, key, body_fingerprint, timezone.now()],
            )
        except OperationalError:
            raise _in_flight() from None
        row = cursor.fetchone()
        if postgresql:
            cursor.execute("SET LOCAL lock_timeout = 0")
    return row[0] if row else None


@transaction.atomic
def idempotency_prune() -> int:
    """Forget keys older than a day (Celery beat, hourly)."""
    deleted, _ = IdempotencyKey.objects.filter(created_at__lt=timezone.now() - IDEMPOTENCY_TTL).delete()
    return deleted
