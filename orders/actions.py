"""Resolution actions that touch orders, registered into the exceptions registry at start-up."""

from __future__ import annotations

from exceptions import actions
from exceptions import services as exception_services
from exceptions.models import FulfillmentException

from . import allocation, forms, services
from .models import CANCELLABLE, OrderStatus
from .services import EDITABLE_ADDRESS, Address


def _order_status(exception: FulfillmentException) -> str | None:
    return exception.order.status if exception.order_id else None


def _minutes(data: dict) -> int:
    return data.get("operator_minutes") or 0


def release_hold(exception, actor, data, user):
    # Resolving the exception lifts the hold (through the exceptions hook) once no other blocking one is left.
    exception_services.exception_resolve(
        exception=exception, note=data["note"], action="release_hold", actor=actor, operator_minutes=_minutes(data)
    )


def _short_pick_after_release(exception: FulfillmentException) -> bool:
    return exception.type.code == "short_pick" and _order_status(exception) in services.AFTER_RELEASE


def cancel_line(exception, actor, data, user) -> str:
    if _short_pick_after_release(exception):
        # The warehouse is shipping what it picked: only the units it could not find are cancelled.
        order = services.order_line_cancel_owed(order=exception.order, line=data["line"], reason=data["reason"], actor=actor)
        note = f"Line {data['line'].line_number}: the units short cancelled ({data['reason']})"
    else:
        order = services.order_line_cancel(order=exception.order, line=data["line"], reason=data["reason"], actor=actor)
        note = f"Line {data['line'].line_number} cancelled: {data['reason']}"
    if order.status == OrderStatus.CANCELLED:
        return "That was the last line: the order is cancelled."
    exception_services.exception_resolve(
        exception=exception, note=note, action="cancel_line", actor=actor, operator_minutes=_minutes(data)
    )
    if order.status == OrderStatus.BACKORDERED:
        # Nothing retries a backorder by itself: the lines left may well be in stock now.
        try:
            order = services.order_retry_allocation(order=order, actor=actor)
        except services.IllegalTransition:
            return note  # something still blocks it: that exception's owner takes it from here
        note += f". Allocation: {allocation.order_route(order=order, actor=actor).get_outcome_display().lower()}."
    return note


def cancel_order(exception, actor, data, user):
    services.order_cancel(order=exception.order, reason=data["reason"], actor=actor, operator_minutes=_minutes(data))


def correct_address(exception, actor, data, user):
    address = Address(**{k: data.get(k, "") for k in ("name", "line1", "line2", "city", "region", "postal_code", "country")})
    change = allocation.order_correct_address(order=exception.order, address=address, actor=actor)
    exception_services.exception_resolve(
        exception=exception,
        note="Address corrected and re-validated.",
        action="correct_address",
        actor=actor,
        operator_minutes=_minutes(data),
    )
    # The other fields' exceptions: the corrected address passed every check, so it fixes them too.
    services.close_corrected_address_exceptions(
        change.order,
        actor=actor,
        note=f"The address was corrected on exception {exception.pk}.",
        action="correct_address",
    )


def approve_split(exception, actor, data, user) -> str:
    result = allocation.split_approve(order=exception.order, actor=actor)
    exception.order.refresh_from_db()
    exception.refresh_from_db()
    if exception.order.status == OrderStatus.AWAITING_APPROVAL or not exception.is_open:
        # Planned again: again a split (the same exception carries the new proposal), or otherwise (the new plan closed it).
        exception_services.exception_comment(
            exception=exception, note=result.message, actor=actor, operator_minutes=_minutes(data)
        )
    else:
        exception_services.exception_resolve(
            exception=exception, note=result.message, action="approve_split", actor=actor, operator_minutes=_minutes(data)
        )
    return result.message


def reject_split(exception, actor, data, user) -> str:
    allocation.split_reject(order=exception.order, actor=actor, reason=data["reason"])
    exception_services.exception_resolve(
        exception=exception,
        note=f"Rejected: {data['reason']}",
        action="reject_split",
        actor=actor,
        operator_minutes=_minutes(data),
    )
    return "Split rejected: the reservations are released and the order waits for full stock."


def cancel_line_ship_rest(exception, actor, data, user) -> str:
    line = data["line"]
    order = services.order_line_cancel(order=exception.order, line=line, reason=data["reason"], actor=actor)
    if order.status == OrderStatus.CANCELLED:
        return "That was the last line: the order is cancelled."
    return f"Line {line.line_number} cancelled. {approve_split(exception, actor, data, user)}"


def reallocate(exception, actor, data, user) -> str:
    location = data["location"]
    # Resolved first, in the same transaction: if the location cannot take the order, both roll back.
    exception_services.exception_resolve(
        exception=exception,
        note=f"Reallocated to {location.code}.",
        action="reallocate",
        actor=actor,
        operator_minutes=_minutes(data),
    )
    if _short_pick_after_release(exception):
        allocation.order_reallocate_owed_to(order=exception.order, location=location, actor=actor)
        return f"The units short now ship from {location.code}; they went to the warehouse at once."
    decision = allocation.order_reallocate_to(order=exception.order, location=location, actor=actor)
    return f"Reallocated to {location.code}: {decision.get_outcome_display().lower()}."


def substitute_sku(exception, actor, data, user) -> str:
    line, substitute = data["substitution"]
    note = f"Line {line.line_number} now ships {substitute.code}."
    exception_services.exception_resolve(
        exception=exception, note=note, action="substitute_sku", actor=actor, operator_minutes=_minutes(data)
    )
    order = services.order_line_substitute(order=exception.order, line=line, substitute=substitute, actor=actor)
    if order.status == OrderStatus.BACKORDERED:
        order = services.order_retry_allocation(order=order, actor=actor)
        decision = allocation.order_route(order=order, actor=actor)
        note += f" Allocation: {decision.get_outcome_display().lower()}."
    return note


def register_actions() -> None:
    actions.register(
        actions.Action(
            "release_hold",
            "Release hold",
            "orders.release_hold",
            forms.ReleaseHoldForm,
            run=release_hold,
            applies=lambda e, user: e.is_open and _order_status(e) == OrderStatus.ON_HOLD,
            generic=False,
            verb="release orders from hold",
        )
    )
    actions.register(
        actions.Action(
            "cancel_line",
            "Cancel line",
            "orders.cancel_line",
            forms.CancelLineForm,
            run=cancel_line,
            applies=lambda e, user: e.is_open and (_order_status(e) in EDITABLE_ADDRESS or _short_pick_after_release(e)),
            generic=False,
            verb="cancel order lines",
            style="danger",
        )
    )
    actions.register(
        actions.Action(
            "cancel_order",
            "Cancel order",
            "orders.cancel_order",
            forms.CancelOrderForm,
            run=cancel_order,
            applies=lambda e, user: e.is_open and _order_status(e) in CANCELLABLE,
            generic=False,
            verb="cancel orders",
            style="danger",
        )
    )
    actions.register(
        actions.Action(
            "correct_address",
            "Correct address",
            "orders.correct_address",
            forms.CorrectAddressForm,
            run=correct_address,
            applies=lambda e, user: e.is_open and _order_status(e) in EDITABLE_ADDRESS,
            generic=False,
            verb="correct addresses",
        )
    )
    actions.register(
        actions.Action(
            "approve_split",
            "Approve split",
            "orders.approve_split",
            forms.ApproveSplitForm,
            run=approve_split,
            applies=lambda e, user: e.is_open and _order_status(e) == OrderStatus.AWAITING_APPROVAL,
            generic=False,
            verb="approve split shipments",
            style="primary",
        )
    )
    actions.register(
        actions.Action(
            "reject_split",
            "Reject split",
            "orders.approve_split",
            forms.RejectSplitForm,
            run=reject_split,
            applies=lambda e, user: e.is_open and _order_status(e) == OrderStatus.AWAITING_APPROVAL,
            generic=False,
            verb="reject split shipments",
            style="danger",
        )
    )
    actions.register(
        actions.Action(
            "cancel_line_ship_rest",
            "Cancel a line, ship the rest",
            "orders.cancel_line",
            forms.CancelLineShipRestForm,
            run=cancel_line_ship_rest,
            applies=lambda e, user: e.is_open and _order_status(e) == OrderStatus.AWAITING_APPROVAL,
            generic=False,
            verb="cancel order lines",
        )
    )
    actions.register(
        actions.Action(
            "reallocate",
            "Reallocate to a location",
            "orders.reallocate_order",
            forms.ReallocateForm,
            run=reallocate,
            applies=lambda e, user: (
                e.is_open
                and (
                    _order_status(e) in (OrderStatus.ALLOCATED, OrderStatus.BACKORDERED, OrderStatus.AWAITING_APPROVAL)
                    or _short_pick_after_release(e)
                )
            ),
            generic=False,
            verb="reallocate orders",
        )
    )
    actions.register(
        actions.Action(
            "substitute_sku",
            "Substitute SKU",
            "orders.substitute_sku",
            forms.SubstituteSkuForm,
            run=substitute_sku,
            applies=lambda e, user: (
                e.is_open
                and _order_status(e) in (OrderStatus.BACKORDERED, OrderStatus.READY, OrderStatus.ON_HOLD, OrderStatus.RECEIVED)
            ),
            generic=False,
            verb="substitute SKUs",
        )
    )
