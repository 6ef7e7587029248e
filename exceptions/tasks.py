from celery import shared_task

from .services import sla_sweep


@shared_task(acks_late=True, reject_on_worker_lost=True)
def sla_sweep_task() -> dict[str, int]:
    """Every minute (beat): SLA warnings and escalations. Idempotent, so late acks are safe."""
    return sla_sweep()
