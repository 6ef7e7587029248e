"""retry_sync: the governed action on a sync_failure, for a dead delivery or an inbound event that failed."""

from __future__ import annotations

from django.db import transaction

from core.actors import Actor
from core.errors import Conflict
from exceptions.models import FulfillmentException
from exceptions.services import exception_lock, exception_resolve

from ..errors import IntegrationError
from ..models import Delivery, DeliveryStatus, InboundEvent, InboundStatus
from .inbound import inbound_retry
from .relay import delivery_requeue


def retryable(exception: FulfillmentException) -> bool:
    detail = exception.detail or {}
    if "delivery" in detail:
        return Delivery.objects.filter(pk=detail["delivery"], status=DeliveryStatus.DEAD).exists()
    if "inbound_event" in detail and exception.type.code == "sync_failure":
        return InboundEvent.objects.filter(pk=detail["inbound_event"], status=InboundStatus.FAILED).exists()
    return False


@transaction.atomic
def exception_retry_sync(
    *, exception: FulfillmentException, actor: Actor, note: str = "", operator_minutes: int = 0
) -> FulfillmentException:
    """Send the dead delivery again, or apply the failed event again, and close the exception: if it fails
    again, a new sync_failure says so."""
    exception = exception_lock(exception)
    detail = exception.detail or {}
    if "delivery" in detail:
        delivery = delivery_requeue(Delivery(pk=detail["delivery"]), actor=actor)
        done = f"Sent {delivery.message.type} to {delivery.system.slug} again."
    elif "inbound_event" in detail:
        event = inbound_retry(InboundEvent(pk=detail["inbound_event"]))
        done = f"Applying {event.topic or 'the message'} from {event.system.slug} again."
    else:
        raise Conflict(IntegrationError.NOTHING_TO_RETRY, "This exception names no delivery or event to retry.")
    return exception_resolve(
        exception=exception,
        note=f"{done} {note}".strip(),
        action="retry_sync",
        actor=actor,
        operator_minutes=operator_minutes,
    )
