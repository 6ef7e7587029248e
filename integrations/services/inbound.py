"""Webhooks in: receive (check, store, answer at once), then apply (map onto the order services) in a task."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.actors import Actor
from core.errors import Conflict, DomainError, NotFound
from exceptions.services import exception_raise
from orders import events
from orders.models import Order

from .. import adapters, mapping
from ..errors import IntegrationError, Unauthenticated
from ..models import ExternalSystem, InboundEvent, InboundStatus
from ..signatures import SignatureRejected

# What is worth keeping of a request's headers: the sender's, not our proxy's or a browser's.
KEPT_HEADERS = ("content-type", "user-agent", "webhook-id", "webhook-timestamp", "webhook-signature")


@dataclass(frozen=True)
class Received:
    status_code: int  # 202: stored, to be applied; 200: this id was received before
    event: InboundEvent | None


def _kept(headers) -> dict[str, str]:
    return {
        name: value for name, value in headers.items() if name.lower() in KEPT_HEADERS or name.lower().startswith("x-shopify-")
    }


def inbound_receive(*, slug: str, body: bytes, headers) -> Received:
    """Store a signed webhook as it came and have it applied after commit; a replayed id stores nothing."""
    system = ExternalSystem.objects.filter(slug=slug).first()
    if system is None:
        raise NotFound(IntegrationError.UNKNOWN_SYSTEM, f"There is no system {slug!r}.")
    if not system.active:
        raise Unauthenticated(IntegrationError.INACTIVE_SYSTEM, f"{slug} is not active.")
    try:
        receipt = adapters.verify(system, body, headers)
    except SignatureRejected as rejected:
        raise Unauthenticated(IntegrationError.NOT_SIGNED, str(rejected)) from None
    try:
        with transaction.atomic():
            event = InboundEvent.objects.create(
                system=system,
                sender_id=receipt.sender_id[:200],
                topic=receipt.topic[:100],
                body=body,
                headers=_kept(headers),
                occurred_at=receipt.occurred_at,
            )
            transaction.on_commit(lambda: _apply_later(event.pk))
    except IntegrityError:
        if not InboundEvent.objects.filter(system=system, sender_id=receipt.sender_id[:200]).exists():
            raise  # not a replay: a fault of ours, and the sender should try again
        return Received(200, None)
    return Received(202, event)


def _apply_later(event_id: int) -> None:
    from ..tasks import inbound_apply_task  # tasks call services; this is the one way back

    inbound_apply_task.delay(event_id)


def _existing(order: Order | None) -> Order | None:
    # An order made inside the rolled-back savepoint (intake that failed half-way) does not exist.
    return order if order is not None and Order.objects.filter(pk=order.pk).exists() else None


@transaction.atomic
def inbound_apply(event_id: int) -> InboundEvent | None:
    """Apply one received event; None if it is not waiting (applied already, or another worker has it)."""
    event = (
        InboundEvent.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("system__partner")
        .filter(pk=event_id, status=InboundStatus.RECEIVED)
        .first()
    )
    if event is None:
        return None
    system = event.system
    actor = Actor.external(system.slug)
    ctx = None
    try:
        with transaction.atomic():
            try:
                payload = json.loads(bytes(event.body))
            except (ValueError, UnicodeDecodeError) as error:
                raise mapping.Unmappable(f"The body is not JSON: {error}.") from None
            if not isinstance(payload, dict):
                raise mapping.Unmappable("The body is not a JSON object.")
            handler = mapping.handler_for(system, event.topic)
            ctx = mapping.Applying(event=event, system=system, payload=payload, actor=actor)
            handler(ctx)
            if ctx.order is not None:
                events.order_received(
                    ctx.order,
                    name=event.topic,
                    actor=actor,
                    data={"inbound_event": event.pk, "system": system.slug, "sender_id": event.sender_id},
                )
    except mapping.Stale as stale:
        event.status, event.error = InboundStatus.STALE, str(stale)
    except (mapping.Unmappable, DomainError) as problem:
        event.status, event.error = InboundStatus.FAILED, str(problem)
        event.order = _existing(ctx.order if ctx else None)
        _open_sync_failure(event, actor)
    else:
        event.status = InboundStatus.APPLIED
        event.error = "; ".join(ctx.notes)
    event.processed_at = timezone.now()
    event.save(update_fields=["status", "error", "subject", "order", "processed_at"])
    return event


def _open_sync_failure(event: InboundEvent, actor: Actor) -> None:
    system = event.system
    exception_raise(
        code="sync_failure",
        order=event.order,
        actor=actor,
        source_system=system.kind,
        summary=f"{system.slug} sent {event.topic or 'a message'} we could not apply: {event.error}"[:300],
        detail={"inbound_event": event.pk, "system": system.slug, "topic": event.topic, "error": event.error[:500]},
        # One open exception per order (or per topic, where no order is known) and system; repeats count.
        dedupe_key=f"inbound:{system.slug}|" + (f"order:{event.order.pk}" if event.order else f"topic:{event.topic}"),
    )


@transaction.atomic
def inbound_retry(event: InboundEvent) -> InboundEvent:
    """Apply a failed event again (after its cause was fixed: a SKU added, a shipment found)."""
    event = InboundEvent.objects.select_for_update().get(pk=event.pk)
    if event.status != InboundStatus.FAILED:
        raise Conflict(IntegrationError.NOTHING_TO_RETRY, f"Event {event.sender_id} is {event.get_status_display().lower()}.")
    event.status, event.error, event.processed_at = InboundStatus.RECEIVED, "", None
    event.save(update_fields=["status", "error", "processed_at"])
    transaction.on_commit(lambda: _apply_later(event.pk))
    return event


def inbound_waiting(*, older_than: timedelta | None = None, limit: int = 500) -> list[int]:
    """Received events whose wake-up was lost (a broker restart): the sweep applies them again."""
    cutoff = timezone.now() - (older_than or timedelta(seconds=settings.INBOUND_SWEEP_AFTER_SECONDS))
    return list(
        InboundEvent.objects.filter(status=InboundStatus.RECEIVED, received_at__lt=cutoff)
        .order_by("received_at")
        .values_list("pk", flat=True)[:limit]
    )
