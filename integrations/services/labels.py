"""change_carrier: the fix of a label that failed and of a carrier service the carrier refused. The shipment gets
another carrier or service, and the WMS that runs its location is asked to print the label again (`label.retry`).

The carriers to choose from are those of the routing rule that routed the order, else the shipment's own.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import Exists, OuterRef, Q

from core.actors import Actor
from core.errors import Conflict, InvalidInput
from exceptions.models import FulfillmentException
from exceptions.services import exception_lock, exception_resolve
from orders import events
from orders.addresses import Address
from orders.models import RoutingDecision, Shipment, ShipmentStatus
from orders.services.locks import shipment_lock

from ..errors import IntegrationError
from .outbox import outbox_write, wms_for

LABEL_RETRY = "label.retry"  # to the WMS: print this shipment's label again, with this carrier and service
LABEL_TYPES = ("label_failure", "carrier_service_invalid")
# Only the warehouse prints labels, between release and the parcel leaving.
LABELLABLE = (ShipmentStatus.RELEASED, ShipmentStatus.PICKED, ShipmentStatus.PACKED)


def _decisions_naming_carriers():
    return RoutingDecision.objects.filter(rule__isnull=False).filter(
        Q(rule__preferred_carrier__gt="") | Q(rule__fallback_carrier__gt="")
    )


def carrier_choices(shipment: Shipment) -> list[str]:
    """The preferred and fallback carriers of the rule that last routed the order (naming any), then the shipment's
    own carrier."""
    decision = (
        _decisions_naming_carriers().filter(order_id=shipment.order_id).select_related("rule").order_by("-at", "-id").first()
    )
    named = [decision.rule.preferred_carrier, decision.rule.fallback_carrier] if decision else []
    return list(dict.fromkeys(carrier for carrier in (*named, shipment.carrier) if carrier))


def relabellable() -> Exists:
    """For an exception row: its shipment still waits for a label and there is a carrier to choose for it (as
    `carrier_choices` finds them). Where there is none the action is not offered: it could not run."""
    return Exists(
        Shipment.objects.filter(pk=OuterRef("shipment_id"), status__in=LABELLABLE).filter(
            Q(carrier__gt="") | Exists(_decisions_naming_carriers().filter(order_id=OuterRef("order_id")))
        )
    )


def label_retry_payload(shipment: Shipment, *, exception: FulfillmentException, previous: dict, note: str) -> dict:
    order = shipment.order
    return {
        "order_id": order.pk,
        "external_id": order.external_id,
        "partner": order.partner.code,
        "shipment_id": shipment.pk,
        "location": shipment.location.code,
        "carrier": shipment.carrier,
        "service": shipment.service,
        "previous": previous,
        "ship_to": Address.of(order).as_dict(),
        "exception_id": exception.pk,
        "note": note,
    }


@transaction.atomic
def exception_change_carrier(
    *, exception: FulfillmentException, carrier: str, service: str, actor: Actor, note: str = "", operator_minutes: int = 0
) -> str:
    """Put the shipment on another carrier or service and ask its location's WMS to print the label again.

    The exception is resolved with what was asked: a label that fails again reaches the portal as a new failure
    and opens a new exception, so nothing stays parked on an answer that may never come. Refused, with nothing
    changed, when no WMS with an address runs the location or nothing would change.
    """
    if exception.shipment_id is None:
        raise Conflict(IntegrationError.NOTHING_TO_RETRY, "This exception names no shipment to relabel.")
    order, shipment = shipment_lock(exception.shipment_id)
    exception = exception_lock(exception)
    if shipment.status not in LABELLABLE:
        raise Conflict(
            IntegrationError.NOTHING_TO_RETRY,
            f"Shipment {shipment.pk} is {shipment.get_status_display().lower()}: labels are printed only between "
            "release and shipping.",
        )
    carrier, service = carrier.strip(), service.strip()
    if carrier not in carrier_choices(shipment):
        raise InvalidInput(
            IntegrationError.NOTHING_TO_RETRY,
            f"{carrier or 'No carrier'} is not a carrier of this order's routing rule.",
            fields={"carrier": ["Choose one of the rule's carriers."]},
        )
    if (carrier, service) == (shipment.carrier, shipment.service):
        raise InvalidInput(
            IntegrationError.NOTHING_TO_RETRY,
            f"The shipment already goes by {carrier} {service}: choose another carrier or service.",
            fields={"carrier": ["Nothing would change."]},
        )
    receivers = wms_for(shipment.location_id)
    if not receivers:
        raise Conflict(
            IntegrationError.NOTHING_TO_RETRY,
            f"No active WMS with an address runs {shipment.location.code}: have the label printed there another way.",
        )
    previous = {"carrier": shipment.carrier, "service": shipment.service}
    shipment.carrier, shipment.service = carrier, service
    shipment.save(update_fields=["carrier", "service", "updated_at"])
    events.order_action(
        order,
        name="change_carrier",
        actor=actor,
        data={"shipment": shipment.pk, "before": previous, "after": {"carrier": carrier, "service": service}},
    )
    shipment.order = order
    outbox_write(
        type=LABEL_RETRY,
        payload=label_retry_payload(shipment, exception=exception, previous=previous, note=note),
        receivers=receivers,
        order=order,
    )
    asked = ", ".join(system.slug for system in receivers)
    message = f"Shipment {shipment.pk} now goes by {carrier} {service}; asked {asked} to print the label again."
    exception_resolve(
        exception=exception,
        note=f"{message} {note}".strip(),
        action="change_carrier",
        actor=actor,
        operator_minutes=operator_minutes,
    )
    return message
