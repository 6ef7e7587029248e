from celery import shared_task

from .services.backorders import backorders_refill
from .services.idempotency import idempotency_prune
from .services.lifecycle import release_wave
from .services.replenishment import replenish


@shared_task(acks_late=True, reject_on_worker_lost=True)
def release_wave_task() -> int:
    """Every minute (beat): hand allocated orders to the warehouse. Idempotent: released orders are skipped."""
    return release_wave()


@shared_task
def idempotency_prune_task() -> int:
    """Hourly (beat): forget Idempotency-Keys older than 24 hours."""
    return idempotency_prune()


@shared_task(acks_late=True, reject_on_worker_lost=True)
def backorders_refill_task(sku_id: int) -> int:
    """After stock of a SKU rose: route its backorders again. Idempotent: orders no longer backordered are skipped."""
    return len(backorders_refill(sku_id=sku_id))


@shared_task(acks_late=True, reject_on_worker_lost=True)
def replenish_task() -> dict[str, int]:
    """Nightly (beat): demand, safety stock and reorder points for every stock level, and suggestions."""
    result = replenish()
    return {
        "levels": result.levels_updated,
        "suggestions": result.suggestions_written,
        "withdrawn": result.suggestions_withdrawn,
    }
