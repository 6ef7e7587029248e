"""The shipped-but-not-invoiced watch: a shipment that left INVOICE_GRACE_HOURS ago and that no ERP invoiced
opens shipment_not_invoiced for the finance queue; the invoice arriving later closes it, with the ERP as actor.

The ERP owns invoices. Only shipments of real orders are watched (not the storefront's test orders), only
while an ERP is connected, and only over a window of INVOICE_WATCH_DAYS before the grace period ends, so the
query looks at one window of shipments whatever the history. A shipment is flagged once: an exception a
person dismissed ("samples are not invoiced") does not come back.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from core.actors import Actor
from exceptions.models import OPEN_STATUSES, FulfillmentException
from exceptions.services import exception_raise, exception_resolve
from orders.models import Shipment, ShipmentStatus

from ..models import ExternalSystem, Invoice, SystemKind

NOT_INVOICED = "shipment_not_invoiced"
WATCH = Actor.job("invoice_watch")


def uninvoiced_shipments(*, now: datetime | None = None, limit: int = 500):
    """Shipments past the grace period with no invoice for them (nor one for their whole order), not yet flagged."""
    now = now or timezone.now()
    until = now - timedelta(hours=settings.INVOICE_GRACE_HOURS)
    since = until - timedelta(days=settings.INVOICE_WATCH_DAYS)
    invoiced = Invoice.objects.filter(Q(shipment=OuterRef("pk")) | Q(order=OuterRef("order_id"), shipment__isnull=True))
    flagged = FulfillmentException.objects.filter(type__code=NOT_INVOICED, shipment=OuterRef("pk"))
    return (
        Shipment.objects.filter(
            status__in=[ShipmentStatus.SHIPPED, ShipmentStatus.DELIVERED],
            shipped_at__gte=since,
            shipped_at__lt=until,
            order__is_test=False,
        )
        .exclude(Exists(invoiced))
        .exclude(Exists(flagged))
        .select_related("order", "location")
        .order_by("shipped_at", "pk")[:limit]
    )


def invoice_watch(*, now: datetime | None = None) -> int:
    """Open shipment_not_invoiced for each shipment the ERP has not invoiced in time; returns how many."""
    if not ExternalSystem.objects.filter(kind=SystemKind.ERP, active=True).exists():
        return 0  # no ERP to invoice anything: nothing is late
    opened = 0
    hours = settings.INVOICE_GRACE_HOURS
    for shipment in uninvoiced_shipments(now=now):
        exception_raise(  # one transaction each: a shipment that fails to raise does not hold up the others
            code=NOT_INVOICED,
            order=shipment.order,
            shipment=shipment,
            actor=WATCH,
            source_system=SystemKind.ERP,
            summary=f"Shipment {shipment.pk} from {shipment.location.code} shipped {shipment.shipped_at:%Y-%m-%d %H:%M} "
            f"and has no invoice after {hours:g} hours",
            detail={"shipment": shipment.pk, "shipped_at": shipment.shipped_at.isoformat(), "grace_hours": hours},
        )
        opened += 1
    return opened


def invoice_settles_locked(invoice: Invoice, *, actor: Actor) -> int:
    """An invoice arrived: close the shipment_not_invoiced it answers (its shipment's, or every one of its order's
    when it names no shipment). Runs in the caller's transaction; returns how many closed."""
    waiting = FulfillmentException.objects.filter(type__code=NOT_INVOICED, order_id=invoice.order_id, status__in=OPEN_STATUSES)
    if invoice.shipment_id:
        waiting = waiting.filter(shipment_id=invoice.shipment_id)
    closed = 0
    for exception in waiting.order_by("pk"):
        exception_resolve(
            exception=exception,
            note=f"{invoice.system.slug} posted invoice {invoice.number}.",
            action="invoice_posted",
            actor=actor,
        )
        closed += 1
    return closed
