"""Resolution actions that touch orders, registered into the exceptions registry at start-up."""

from __future__ import annotations

from exceptions import actions, services as exception_services
from exceptions.models import FulfillmentException

from . import forms, services
from .models import CANCELLABLE, OrderStatus
from .services import EDITABLE_ADDRESS, Address


def _order_status(exception: FulfillmentException) -> str | None:
    return exception.order.status if exception.order_id else None


def _minutes(data: dict) -> int:
    return data.get("operator_minutes") or 0


def release_hold(exception, actor, data, user):
    # Resolving the exception lifts the hold (through the exceptions hook) once no other blocking one is left.
    exception_services.exception_resolve(exception=exception, note=data["note"], action="release_hold", actor=actor, operator_minutes=_minutes(data))


def cancel_line(exception, actor, data, user):
    order = services.order_line_cancel(order=exception.order, line=data["line"], reason=data["reason"], actor=actor)
    if order.status != OrderStatus.CANCELLED:
        exception_services.exception_resolve(
            exception=exception, note=f"Line {data['line'].line_number} cancelled: {data['reason']}", action="cancel_line",
            actor=actor, operator_minutes=_minutes(data),
        )


def cancel_order(exception, actor, data, user):
    services.order_cancel(order=exception.order, reason=data["reason"], actor=actor, operator_minutes=_minutes(data))


def correct_address(exception, actor, data, user):
    address = Address(**{k: data.get(k, "") for k in ("name", "line1", "line2", "city", "region", "postal_code", "country")})
    services.order_correct_address(order=exception.order, address=address, actor=actor)
    exception_services.exception_resolve(
        exception=exception, note="Address corrected and re-validated.", action="correct_address", actor=actor, operator_minutes=_minutes(data),
    )


def register_actions() -> None:
    actions.register(actions.Action(
        "release_hold", "Release hold", "orders.release_hold", forms.ReleaseHoldForm, run=release_hold,
        applies=lambda e, user: e.is_open and _order_status(e) == OrderStatus.ON_HOLD, generic=False, verb="release orders from hold",
    ))
    actions.register(actions.Action(
        "cancel_line", "Cancel line", "orders.cancel_line", forms.CancelLineForm, run=cancel_line,
        applies=lambda e, user: e.is_open and _order_status(e) in EDITABLE_ADDRESS, generic=False, verb="cancel order lines", style="danger",
    ))
    actions.register(actions.Action(
        "cancel_order", "Cancel order", "orders.cancel_order", forms.CancelOrderForm, run=cancel_order,
        applies=lambda e, user: e.is_open and _order_status(e) in CANCELLABLE, generic=False, verb="cancel orders", style="danger",
    ))
    actions.register(actions.Action(
        "correct_address", "Correct address", "orders.correct_address", forms.CorrectAddressForm, run=correct_address,
        applies=lambda e, user: e.is_open and _order_status(e) in EDITABLE_ADDRESS, generic=False, verb="correct addresses",
    ))
