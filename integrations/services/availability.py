"""Available to sell, pushed to the storefronts: one message per SKU and location per window, with the latest figure.

Every stock change stamps its level's updated_at. Each run (every AVAILABILITY_WINDOW_SECONDS, by beat)
looks at the levels changed since the last run began, compares available (on hand - reserved) with the
figure last published, and writes one outbox message for each that differs. A burst of a hundred
reservations between two runs is one message carrying where the burst ended; nothing is sent for a level
whose figure came back to what the storefront already has.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, IntegerField, OuterRef, Q, Subquery
from django.utils import timezone

from inventory.models import StockLevel

from ..models import PublishedAvailability, SyncCursor
from .outbox import MessageType, availability_payload, outbox_write_many, storefronts

CURSOR = "availability"


def changed_since(since: datetime):
    """Stock levels changed since `since` whose available differs from what was last published (or never was)."""
    published = PublishedAvailability.objects.filter(location_id=OuterRef("location_id"), sku_id=OuterRef("sku_id"))
    return (
        StockLevel.objects.filter(updated_at__gte=since)
        .annotate(
            now_available=F("on_hand") - F("reserved"),
            published=Subquery(published.values("available")[:1], output_field=IntegerField()),
        )
        .filter(Q(published__isnull=True) | ~Q(published=F("now_available")))
        .order_by("location_id", "sku_id")
        .values("location_id", "sku_id", "location__code", "sku__code", "now_available")
    )


@transaction.atomic
def availability_publish(*, now: datetime | None = None) -> int:
    """Write one availability message per changed SKU and location; returns how many. Safe to run in parallel:
    the cursor row is the lock, so a second run waits and then finds nothing left to send."""
    now = now or timezone.now()
    cursor, _ = SyncCursor.objects.get_or_create(name=CURSOR, defaults={"at": now - timedelta(days=3650)})
    cursor = SyncCursor.objects.select_for_update().get(pk=cursor.pk)
    receivers = storefronts()
    since = cursor.at - timedelta(seconds=settings.AVAILABILITY_LOOKBACK_SECONDS)
    SyncCursor.objects.filter(pk=cursor.pk).update(at=now)
    if not receivers:
        return 0  # nobody to tell; each level is published once a storefront is there and it changes
    rows = list(changed_since(since))
    if not rows:
        return 0
    messages = outbox_write_many(
        type=MessageType.AVAILABILITY,
        payloads=[
            availability_payload(sku_code=row["sku__code"], location_code=row["location__code"], available=row["now_available"])
            for row in rows
        ],
        receivers=receivers,
    )
    PublishedAvailability.objects.bulk_create(
        [
            PublishedAvailability(
                location_id=row["location_id"],
                sku_id=row["sku_id"],
                available=row["now_available"],
                published_at=now,
                message=message,
            )
            for row, message in zip(rows, messages, strict=True)
        ],
        update_conflicts=True,
        unique_fields=["location", "sku"],
        update_fields=["available", "published_at", "message"],
    )
    return len(rows)
