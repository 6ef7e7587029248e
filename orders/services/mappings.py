"""Partners' own SKU codes for ours: intake reads a code the catalogue does not know through the partner's
mappings, and `map_sku` fixes an unknown_sku by naming our SKU for the line (and remembering it for that partner).
"""

from __future__ import annotations

from django.db import transaction
from django.db.models.functions import Upper

from core.actors import Actor
from core.errors import Conflict, InvalidInput
from exceptions.models import FulfillmentException
from exceptions.services import exception_raise, exception_resolve
from inventory.models import Sku

from .. import events
from ..checks import line_problem, too_many_base_units
from ..errors import OrderError
from ..models import ADDRESS_EDITABLE, OrderLine, Partner, PartnerSkuMapping
from .locks import order_lock

UNKNOWN_SKU = "unknown_sku"


def skus_for_codes(partner: Partner, codes: set[str]) -> dict[str, Sku]:
    """Our active SKU for each code a partner sent: the catalogue's own code first, then the partner's mapping
    (ignoring case). One query when the catalogue knows every code, two otherwise."""
    skus = {sku.code: sku for sku in Sku.objects.filter(code__in=codes, active=True).order_by()}
    unknown: dict[str, list[str]] = {}
    for code in codes - set(skus):
        unknown.setdefault(code.upper(), []).append(code)
    if unknown:
        mapped = (
            PartnerSkuMapping.objects.annotate(code_upper=Upper("partner_sku_code"))
            .filter(partner=partner, code_upper__in=list(unknown), sku__active=True)
            .select_related("sku")
            .order_by()
        )
        for mapping in mapped:
            for code in unknown[mapping.code_upper]:
                skus[code] = mapping.sku
    return skus


def mapping_remember_locked(*, partner: Partner, partner_sku_code: str, sku: Sku, user=None) -> PartnerSkuMapping:
    """Map the partner's code to our SKU from now on (replacing what it mapped to before); the caller's transaction."""
    code = partner_sku_code.strip()
    existing = (
        PartnerSkuMapping.objects.select_for_update()
        .annotate(code_upper=Upper("partner_sku_code"))
        .filter(partner=partner, code_upper=code.upper())
        .first()
    )
    if existing is None:
        return PartnerSkuMapping.objects.create(partner=partner, partner_sku_code=code, sku=sku, created_by=user)
    if existing.sku_id != sku.pk:
        existing.sku = sku
        existing.save(update_fields=["sku"])
    return existing


@transaction.atomic
def exception_map_sku(
    *, exception: FulfillmentException, sku: Sku, remember: bool, actor: Actor, user=None, operator_minutes: int = 0
) -> str:
    """Ship our `sku` on the line whose code the catalogue did not know, remember it for the partner if asked, and
    close the unknown_sku: the order goes on (its hold lifts and it is routed) unless something else holds it. A
    price the line then turns out to be off by opens its own pricing_mismatch first, so it cannot slip through."""
    order = order_lock(exception.order_id)
    line = OrderLine.objects.select_for_update(of=("self",)).filter(pk=exception.line_id, order=order).first()
    if line is None:
        raise Conflict(OrderError.ILLEGAL_TRANSITION, "This exception names no line of its order to map.")
    if line.cancelled or line.sku_id is not None or order.status not in ADDRESS_EDITABLE:
        raise Conflict(
            OrderError.ILLEGAL_TRANSITION,
            f"Line {line.line_number} is cancelled, already has a SKU, or its order is {order.get_status_display().lower()}.",
        )
    if not sku.active:
        raise InvalidInput(OrderError.INVALID_ORDER, f"{sku.code} is not an active SKU.", fields={"sku": ["Not active."]})
    per_unit = sku.base_units_per(line.uom)
    if per_unit is None:
        message = f"{sku.code} has no '{line.uom}' unit to convert {line.quantity} {line.uom} into."
        raise InvalidInput(OrderError.INVALID_ORDER, message, fields={"sku": [message]})
    too_many = too_many_base_units(line.quantity, line.uom, sku, per_unit)
    if too_many:
        raise InvalidInput(OrderError.INVALID_ORDER, too_many, fields={"sku": [too_many]})
    # sku_code keeps the partner's code: what they sent, and what they read back about the line.
    line.sku, line.base_quantity = sku, line.quantity * per_unit
    line.save(update_fields=["sku", "base_quantity"])
    mapping = (
        mapping_remember_locked(partner=order.partner, partner_sku_code=line.sku_code, sku=sku, user=user) if remember else None
    )
    events.order_action(
        order,
        name="map_sku",
        actor=actor,
        data={
            "line": line.line_number,
            "partner_sku": line.sku_code,
            "sku": sku.code,
            "remembered": mapping is not None,
        },
    )
    next_problem = line_problem(line, order.partner)
    if next_problem is not None:
        exception_raise(
            code=next_problem.code,
            order=order,
            line=line,
            actor=actor,
            summary=next_problem.summary,
            detail=next_problem.detail,
        )
    remembered = f"; {order.partner.code}'s {line.sku_code} is {sku.code} from now on" if mapping else ""
    note = f"Line {line.line_number} ({line.sku_code}) now ships {sku.code}{remembered}."
    exception_resolve(exception=exception, note=note, action="map_sku", actor=actor, operator_minutes=operator_minutes)
    return f"{note} {next_problem.summary}" if next_problem else note
