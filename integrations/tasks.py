from celery import shared_task

from .services import availability, drift, inbound, invoices, relay


@shared_task(acks_late=True, reject_on_worker_lost=True)
def inbound_apply_task(event_id: int) -> str | None:
    """Apply one received webhook; a second run finds it applied and does nothing."""
    event = inbound.inbound_apply(event_id)
    return event.status if event else None


@shared_task(acks_late=True, reject_on_worker_lost=True)
def delivery_send_task(delivery_id: int) -> str | None:
    """Try one outbox delivery if it is due; a run for a delivery that is not due does nothing."""
    return relay.delivery_send(delivery_id)


@shared_task
def outbox_sweep_task() -> dict[str, int]:
    """Every minute (beat): wake the deliveries and inbound events whose wake-up was lost or whose wait is over."""
    due = relay.deliveries_due()
    waiting = inbound.inbound_waiting()
    for pk in due:
        delivery_send_task.delay(pk)
    for pk in waiting:
        inbound_apply_task.delay(pk)
    return {"deliveries": len(due), "inbound": len(waiting)}


@shared_task(acks_late=True, reject_on_worker_lost=True)
def availability_publish_task() -> int:
    """Every AVAILABILITY_WINDOW_SECONDS (beat): one availability message per SKU and location that changed."""
    return availability.availability_publish()


@shared_task
def wms_counts_pull_task() -> dict[str, int]:
    """Every 15 minutes (beat): pull each generic WMS's counts and compare them with ours."""
    pulled = drift.wms_counts_pull_all()
    return {
        "systems": len(pulled),
        "drifted": sum(len(p.result.drifted) for p in pulled),
        "errors": sum(len(p.errors) for p in pulled),
    }


@shared_task
def invoice_watch_task() -> int:
    """Every 15 minutes (beat): shipments the ERP has not invoiced in time. Idempotent: each is flagged once."""
    return invoices.invoice_watch()
