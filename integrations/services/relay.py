"""The relay: claim a due delivery, post it signed, record the attempt, and back off or give up.

No transaction is held open across the HTTP call. The claim pushes the delivery's next attempt a lease into
the future and counts the attempt; a worker that dies mid-post leaves the row to be claimed again when the
lease runs out (by the redelivered task or the beat sweep). Receivers dedupe on the delivery's id, which is
the same on every attempt, so at-least-once delivery reaches them once.
"""

from __future__ import annotations

import json
import os
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.actors import Actor
from core.errors import Conflict
from exceptions.services import exception_raise
from orders import events

from ..errors import IntegrationError
from ..models import Delivery, DeliveryAttempt, DeliveryStatus
from ..signatures import standard_headers

RELAY = Actor.job("outbox")


def backoff(attempts: int, *, jitter: float | None = None) -> timedelta:
    """The wait after the `attempts`-th failure: doubling from OUTBOX_BACKOFF_SECONDS, ±20 % jitter so that
    deliveries that failed together do not come back together."""
    jitter = random.uniform(0.8, 1.2) if jitter is None else jitter  # spreading load, not a secret
    return timedelta(seconds=settings.OUTBOX_BACKOFF_SECONDS * (2 ** (attempts - 1)) * jitter)


def envelope(delivery: Delivery) -> bytes:
    message = delivery.message
    return json.dumps(
        {
            "id": str(message.event_id),
            "type": message.type,
            "occurred_at": message.created_at.isoformat(),
            "data": message.payload,
        },
        separators=(",", ":"),
        default=str,
    ).encode()


_client: tuple[int, httpx.Client] | None = None


def _http() -> httpx.Client:
    """One client per process: building one per post (an SSL context, the CA bundle) costs more than the post.
    Made on first use, after a prefork worker forked, and never shared across processes."""
    global _client
    if _client is None or _client[0] != os.getpid():
        _client = (os.getpid(), httpx.Client(follow_redirects=False))
    return _client[1]


@dataclass(frozen=True)
class Claim:
    delivery: Delivery
    attempt: int


@transaction.atomic
def _claim(delivery_id: int, now: datetime) -> Claim | None:
    delivery = (
        Delivery.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("message", "system")
        .filter(pk=delivery_id, status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
        .first()
    )
    if delivery is None:
        return None
    delivery.attempts += 1
    delivery.next_attempt_at = now + timedelta(seconds=settings.OUTBOX_LEASE_SECONDS)
    delivery.save(update_fields=["attempts", "next_attempt_at", "updated_at"])
    return Claim(delivery, delivery.attempts)


def _post(delivery: Delivery) -> tuple[int | None, str, str, int]:
    body = envelope(delivery)
    headers = {
        "content-type": "application/json",
        "user-agent": "fulfillment-portal-outbox",
        "x-event-id": str(delivery.message.event_id),
        **standard_headers(delivery.system.secret, message_id=str(delivery.delivery_id), body=body),
    }
    started = time.monotonic()
    try:
        response = _http().post(
            delivery.system.base_url,
            content=body,
            headers=headers,
            timeout=httpx.Timeout(settings.OUTBOX_TIMEOUT_SECONDS, connect=settings.OUTBOX_CONNECT_TIMEOUT_SECONDS),
        )
    except httpx.HTTPError as error:
        return None, "", f"{type(error).__name__}: {error}"[:500], int((time.monotonic() - started) * 1000)
    excerpt = response.text[:500]
    error = "" if response.is_success else f"HTTP {response.status_code}"
    return response.status_code, excerpt, error, int((time.monotonic() - started) * 1000)


def delivery_send(delivery_id: int) -> str | None:
    """Try one due delivery once; the outcome ("delivered", "retry", "dead"), or None if it was not due."""
    now = timezone.now()
    claim = _claim(delivery_id, now)
    if claim is None:
        return None
    status_code, excerpt, error, duration_ms = _post(claim.delivery)
    return _record(claim, started_at=now, status_code=status_code, excerpt=excerpt, error=error, duration_ms=duration_ms)


@transaction.atomic
def _record(claim: Claim, *, started_at, status_code, excerpt: str, error: str, duration_ms: int) -> str | None:
    delivery = Delivery.objects.select_for_update().select_related("message", "system").get(pk=claim.delivery.pk)
    DeliveryAttempt.objects.create(
        delivery=delivery,
        number=delivery.attempt_log.count() + 1,
        started_at=started_at,
        status_code=status_code,
        response_excerpt=excerpt,
        duration_ms=duration_ms,
        error=error,
    )
    if delivery.status != DeliveryStatus.PENDING or delivery.attempts != claim.attempt:
        return None  # the lease ran out and another attempt took over; this one is only logged
    now = timezone.now()
    if not error:
        delivery.status, delivery.delivered_at, delivery.last_error = DeliveryStatus.DELIVERED, now, ""
        delivery.save(update_fields=["status", "delivered_at", "last_error", "updated_at"])
        return "delivered"
    delivery.last_error = error
    if delivery.attempts >= settings.OUTBOX_MAX_ATTEMPTS:
        delivery.status = DeliveryStatus.DEAD
        delivery.save(update_fields=["status", "last_error", "updated_at"])
        _open_sync_failure(delivery)
        return "dead"
    delivery.next_attempt_at = now + backoff(delivery.attempts)
    delivery.save(update_fields=["next_attempt_at", "last_error", "updated_at"])
    wait = (delivery.next_attempt_at - now).total_seconds()
    if wait <= settings.OUTBOX_SHORT_WAIT_SECONDS:
        # A short wait is a countdown; a long one is left to the beat sweep, so no task sits in the broker for hours.
        transaction.on_commit(lambda: _send_later(delivery.pk, wait))
    return "retry"


def _send_later(delivery_id: int, wait: float) -> None:
    from ..tasks import delivery_send_task  # tasks call services; this is the one way back

    delivery_send_task.apply_async((delivery_id,), countdown=wait)


def _open_sync_failure(delivery: Delivery) -> None:
    message, system = delivery.message, delivery.system
    exception_raise(
        code="sync_failure",
        order=message.order,
        actor=RELAY,
        source_system=system.kind,
        summary=f"{message.type} to {system.slug} failed {delivery.attempts} times: {delivery.last_error}"[:300],
        detail={
            "delivery": delivery.pk,
            "delivery_id": str(delivery.delivery_id),
            "event_id": str(message.event_id),
            "system": system.slug,
            "type": message.type,
            "error": delivery.last_error,
        },
        dedupe_key=f"delivery:{delivery.pk}",
    )


@transaction.atomic
def delivery_requeue(delivery: Delivery, *, actor: Actor) -> Delivery:
    """Give a dead delivery its attempts again, from now; its ids stay, so a receiver that got it dedupes."""
    delivery = Delivery.objects.select_for_update().select_related("message", "system").get(pk=delivery.pk)
    if delivery.status != DeliveryStatus.DEAD:
        raise Conflict(
            IntegrationError.NOTHING_TO_RETRY,
            f"The delivery of {delivery.message.type} to {delivery.system.slug} is "
            f"{delivery.get_status_display().lower()}, not dead.",
        )
    delivery.status, delivery.attempts, delivery.next_attempt_at = DeliveryStatus.PENDING, 0, timezone.now()
    delivery.save(update_fields=["status", "attempts", "next_attempt_at", "updated_at"])
    if delivery.message.order_id:
        events.order_sent(
            delivery.message.order,
            name="delivery_requeued",
            actor=actor,
            data={"delivery": delivery.pk, "system": delivery.system.slug, "type": delivery.message.type},
        )
    transaction.on_commit(lambda: _send_later(delivery.pk, 0))
    return delivery


def deliveries_due(*, limit: int = 500) -> list[int]:
    """Pending deliveries whose time has come: the beat sweep's catch for wake-ups that were lost."""
    return list(
        Delivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=timezone.now())
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
