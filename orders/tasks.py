from celery import shared_task

from .services.idempotency import idempotency_prune
from .services.lifecycle import release_wave


@shared_task(acks_late=True, reject_on_worker_lost=True)
def release_wave_task() -> int:
    """Every minute (beat): hand allocated orders to the warehouse. Idempotent: released orders are skipped."""
    return release_wave()


@shared_task
def idempotency_prune_task() -> int:
    """Hourly (beat): forget Idempotency-Keys older than 24 hours."""
    return idempotency_prune()
