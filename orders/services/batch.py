"""Batch intake: up to `MAX_BATCH_ORDERS` orders in one request, as EDI and marketplace partners send them.

Each order has its own outcome (created, duplicate, invalid, a replayed or refused Idempotency-Key) and its own
savepoint, so one bad order never fails the others; the batch shares one transaction and one commit. The stock
levels every order of the batch may draw on are locked once, up front and in (location, SKU) order, the order
every other path takes them in: two batches naming the same SKUs in another order wait for each other rather
than deadlock, and the orders inside a batch lock nothing new.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from django.db import transaction

from core.actors import Actor
from core.db import atomic_retrying_deadlocks
from core.errors import DomainError
from inventory.models import Location, Sku, StockLevel

from ..models import IdempotencyKey, Partner
from ..routing import active_rules
from . import idempotency, intake
from .mappings import skus_for_codes

MAX_BATCH_ORDERS = 100


@dataclass(frozen=True)
class BatchOrder:
    """One order of a batch as the API cleaned it: `data` is the intake's input; `key` its Idempotency-Key."""

    data: dict
    body_fingerprint: str
    key: str | None = None


def order_intake_batch(
    *,
    partner: Partner,
    orders: Sequence[BatchOrder],
    actor: Actor,
    answer_of: Callable[[intake.IntakeOutcome], idempotency.Answer],
) -> list[idempotency.Answer | DomainError]:
    """Take each order in its own savepoint of one transaction; per order, in the batch's order, the answer it
    got (as the single intake would have answered it, stored under its key) or the error that refused it.

    `answer_of` renders an intake's outcome as the API's answer (201 with the order, 409 for a duplicate), so an
    order's key replays byte for byte whichever endpoint it is sent to again. A deadlock PostgreSQL breaks runs
    the whole batch again; nothing of a failed attempt was committed.
    """
    if not orders:
        return []

    def attempt() -> list[idempotency.Answer | DomainError]:
        codes = {line["sku"] for order in orders for line in order.data["lines"]}
        reads = intake.IntakeReads(
            skus=skus_for_codes(partner, codes), rules=active_rules(), locations=list(Location.objects.all())
        )
        _lock_stock_of(reads.skus.values())
        return [_one(partner, order, actor=actor, answer_of=answer_of, reads=reads) for order in orders]

    return atomic_retrying_deadlocks(attempt)


def _one(
    partner: Partner, order: BatchOrder, *, actor: Actor, answer_of, reads: intake.IntakeReads
) -> idempotency.Answer | DomainError:
    try:
        with transaction.atomic():
            claimed = None
            if order.key is not None:
                claimed = idempotency.claim_locked(partner=partner, key=order.key, body_fingerprint=order.body_fingerprint)
                if isinstance(claimed, idempotency.Answer):
                    return claimed
            answer = answer_of(
                intake.order_intake(
                    partner=partner, data=order.data, body_fingerprint=order.body_fingerprint, actor=actor, reads=reads
                )
            )
            if claimed is not None:
                IdempotencyKey.objects.filter(pk=claimed).update(status_code=answer.status_code, response=answer.body)
            return answer
    except DomainError as refused:  # its savepoint is rolled back: the order left nothing behind
        return refused


def _lock_stock_of(skus: Iterable[Sku]) -> None:
    sku_ids = sorted({sku.pk for sku in skus})
    if sku_ids:
        # No ordering by the model's default, which joins location and SKU (FOR UPDATE would lock their rows too).
        levels = StockLevel.objects.filter(sku_id__in=sku_ids).order_by("location_id", "sku_id")
        list(levels.select_for_update(of=("self",)).values_list("pk", flat=True))
