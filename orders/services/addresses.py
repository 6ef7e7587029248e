"""Shipping-address changes: a partner's (partial, accepted with its problems, which hold the order) and a
person's correction (whole, refused unless it passes the country's rules). Both plan the order again when
it holds a plan made for a country or postal code it no longer has.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from django.db import transaction

from core.actors import Actor
from core.errors import InvalidInput
from core.fsm import IllegalTransition
from exceptions.models import OPEN_STATUSES, FulfillmentException
from exceptions.services import exception_raise, exception_resolve

from .. import events
from ..addresses import ADDRESS_FIELDS, Address
from ..errors import OrderError
from ..models import ADDRESS_EDITABLE, AFTER_RELEASE, PLANNED_FOR_ITS_ADDRESS, Order, RoutingDecision
from .allocation import order_replan_locked, order_route_locked
from .locks import order_lock


@dataclass(frozen=True)
class AddressChange:
    order: Order
    applied: bool  # False: too late to change here, a person follows it up (202)
    # Planned again because its plan was made for another country or postal code.
    decision: RoutingDecision | None = None


def raise_address_problems_locked(order: Order, *, actor: Actor, source_system: str) -> int:
    """One invalid_address exception per problem with the order's shipping address; the caller holds the order's
    lock (the first blocking exception holds the order)."""
    problems = Address.of(order).problems()
    for problem in problems:
        exception_raise(
            code="invalid_address",
            order=order,
            actor=actor,
            source_system=source_system,
            summary=problem.message,
            detail={"field": problem.field},
            dedupe_key=f"order:{order.pk}|address:{problem.field}",
        )
    return len(problems)


def close_corrected_address_exceptions_locked(order: Order, *, actor: Actor, note: str, action: str) -> None:
    """Resolve the order's open invalid_address exceptions its address no longer has; the caller holds the order's
    lock. One exception per field: a corrected field closes its own even while another is still wrong."""
    still_wrong = {problem.field for problem in Address.of(order).problems()}
    for exception in FulfillmentException.objects.filter(order=order, type__code="invalid_address", status__in=OPEN_STATUSES):
        field = exception.detail.get("field")
        if not still_wrong if field is None else field not in still_wrong:
            exception_resolve(exception=exception, note=note, action=action, actor=actor)


def _store_locked(order: Order, address: Address, *, name: str, actor: Actor) -> tuple[Address, Address]:
    before = Address.of(order)
    for field, value in address.order_fields().items():
        setattr(order, field, value)
    order.save(update_fields=[*address.order_fields(), "updated_at"])
    events.order_action(order, name=name, actor=actor, data={"before": before.as_dict(), "after": address.as_dict()})
    return before, address


def _plan_again_if_outdated_locked(
    order: Order, *, status_before: str, before: Address, after: Address, actor: Actor
) -> AddressChange:
    """An order still holding a plan made for another country or postal code is planned again: its site may not ship
    there and another rule may match. (An order the change put on hold, or whose hold it lifted, is planned again
    when it comes off hold.) The old shipments give their stock back first, so it may land on the same site."""
    order = order_lock(order)
    if order.status != status_before or status_before not in PLANNED_FOR_ITS_ADDRESS or before.destination == after.destination:
        return AddressChange(order, applied=True)
    destination = f"{after.postal_code} {after.country}".strip()
    order_replan_locked(order, actor=actor, reason=f"the shipping address moved to {destination}")
    return AddressChange(order, applied=True, decision=order_route_locked(order, actor=actor))


@transaction.atomic
def order_change_address(*, order: Order, changes: Mapping[str, str], actor: Actor, source_system: str = "api") -> AddressChange:
    """A partner changes the shipping address (only the fields that change).

    Before release the address is replaced and checked again: problems hold the order with
    invalid_address exceptions, a clean address closes the old ones. After release the warehouse
    may already be packing it, so a person must step in: an address_change_after_release exception
    carries the request. Once shipped, it is too late (409).
    """
    order = order_lock(order)
    unknown = set(changes) - set(ADDRESS_FIELDS)
    if unknown:
        raise InvalidInput(
            OrderError.INVALID_ADDRESS, "Unknown address fields.", fields={f: ["Unknown field."] for f in sorted(unknown)}
        )
    if order.status in AFTER_RELEASE:
        # Changes are partial: what the person must carry out is every field asked for so far, the latest value of each.
        asked_before = (
            FulfillmentException.objects.filter(order=order, type__code="address_change_after_release", status__in=OPEN_STATUSES)
            .values_list("detail__requested", flat=True)
            .first()
        )
        exception_raise(
            code="address_change_after_release",
            order=order,
            actor=actor,
            source_system=source_system,
            summary="The customer changed the shipping address after the order went to the warehouse",
            detail={"requested": {**(asked_before or {}), **changes}},
            dedupe_key=f"order:{order.pk}|address-change",
        )
        events.order_action(order, name="address_change_requested", actor=actor, data={"requested": dict(changes)})
        return AddressChange(order, applied=False)
    if order.status not in ADDRESS_EDITABLE:
        raise IllegalTransition(order, "change_address", "it has left the warehouse; the address can no longer change.")
    status_before = order.status
    before, after = _store_locked(order, Address.of(order).replaced(changes), name="change_address", actor=actor)
    raise_address_problems_locked(order, actor=actor, source_system=source_system)
    close_corrected_address_exceptions_locked(
        order, actor=actor, note="The partner sent a corrected address.", action="address_changed"
    )
    return _plan_again_if_outdated_locked(order, status_before=status_before, before=before, after=after, actor=actor)


@transaction.atomic
def order_correct_address(*, order: Order, address: Address, actor: Actor, action: str = "correct_address") -> AddressChange:
    """A person replaces the shipping address, provided it passes the country's rules; before release only.

    Every invalid_address exception of the order is then fixed and closed, as `action`.
    """
    order = order_lock(order)
    if order.status not in ADDRESS_EDITABLE:
        raise IllegalTransition(order, "correct_address", "the order is with the warehouse already.")
    problems = address.problems()
    if problems:
        raise InvalidInput(
            OrderError.INVALID_ADDRESS, " ".join(p.message for p in problems), fields={p.field: [p.message] for p in problems}
        )
    status_before = order.status
    before, after = _store_locked(order, address, name="correct_address", actor=actor)
    change = _plan_again_if_outdated_locked(order, status_before=status_before, before=before, after=after, actor=actor)
    close_corrected_address_exceptions_locked(
        change.order, actor=actor, note="Address corrected and re-validated.", action=action
    )
    return change
