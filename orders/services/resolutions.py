"""Exceptions on orders: what closing one means for its order, whether its problem is still there, and the
one service behind each governed action a person takes on it.

Every action runs in the same order: make the change; close the exception the person worked on if the
change fixed it (otherwise record what they did, and say what is still wrong); and closing it does what
closing always does (`exception_closed_locked`). The exceptions app calls the first three functions here
through its hooks (connected in OrdersConfig.ready), inside its own transaction.
"""

from __future__ import annotations

from django.db import transaction
from django_fsm import can_proceed

from core.actors import Actor
from core.errors import Conflict
from exceptions import actions as exception_actions
from exceptions.hooks import ProblemLeft
from exceptions.models import FulfillmentException
from exceptions.services import exception_comment, exception_lock, exception_resolve
from inventory.models import Location, Sku

from .. import events
from ..addresses import Address
from ..checks import line_problem, price_gap_percent
from ..errors import OrderError
from ..models import AFTER_RELEASE, HOLDABLE, OrderLine, OrderStatus, no_blocking_exception_open
from .addresses import order_correct_address
from .allocation import order_approve_split, order_reallocate_owed_to, order_reallocate_to, order_reject_split, order_route_locked
from .lifecycle import (
    HOLD_FOR_EXCEPTIONS,
    order_cancel,
    order_hold_locked,
    order_line_cancel,
    order_line_cancel_owed,
    order_line_substitute,
    order_release_hold_locked,
    order_transition_locked,
)
from .locks import order_lock

# --- the exceptions app's hooks ------------------------------------------------------------------


def exception_blocking_raised_locked(exception: FulfillmentException, actor: Actor) -> None:
    """A blocking exception opened (or reopened) on an order: hold the order if it can still be held.
    The caller holds the order's lock."""
    order = order_lock(exception.order_id)
    if order.status in HOLDABLE:
        order_hold_locked(
            order, reason=HOLD_FOR_EXCEPTIONS, actor=actor, data={"exception": exception.pk, "type": exception.type.code}
        )


def exception_closed_locked(exception: FulfillmentException, actor: Actor) -> None:
    """What closing an exception means for its order, all of it. The caller holds the order's lock and the
    exception's.

    The last blocking exception to close lifts the hold the exceptions put on the order, and the
    order, ready again, is routed at once (it may still hold the plan it had before the hold: that
    is given back first). Nothing else happens when an exception closes.
    """
    order = order_lock(exception.order_id)
    if order.status != OrderStatus.ON_HOLD or order.hold_reason != HOLD_FOR_EXCEPTIONS:
        return
    if not no_blocking_exception_open(order) or not can_proceed(order.release_hold):
        return
    order_release_hold_locked(order, actor=actor, data={"exception": exception.pk})
    order_route_locked(order, actor=actor)


def _fixes(exception: FulfillmentException) -> tuple[str, ...]:
    """The type's own actions that change the order (releasing a hold fixes nothing)."""
    return tuple(code for code in exception.type.allowed_actions or () if code != "release_hold")


def problem_left(exception: FulfillmentException) -> ProblemLeft | None:
    """What is still wrong with the order that this exception is about, with the actions that would fix it;
    None when nothing is (or nothing can be told: a person's judgement closes those)."""
    if exception.order_id is None:
        return None
    order = exception.order
    if order.status == OrderStatus.CANCELLED:
        return None  # nothing of it is left to fix
    code, problem = exception.type.code, ""
    if code in ("unknown_sku", "uom_mismatch", "pricing_mismatch") and exception.line_id:
        line = OrderLine.objects.select_related("sku").get(pk=exception.line_id)
        found = line_problem(line, order.partner)
        problem = found.summary if found is not None and found.code == code else ""
    elif code == "invalid_address":
        field = exception.detail.get("field")
        problem = next((p.message for p in Address.of(order).problems() if field in (None, p.field)), "")
    elif code == "out_of_stock" and order.status == OrderStatus.BACKORDERED:
        problem = "The order is still backordered: no location that ships there has all of it."
    elif code == "split_approval_required" and order.status == OrderStatus.AWAITING_APPROVAL:
        problem = "The split still waits for a decision."
    elif code == "short_pick" and order.status in AFTER_RELEASE:
        owed = [line.line_number for line in order.lines.all() if not line.cancelled and line.quantity_open > 0]
        problem = f"Line {owed[0]} still owes units no shipment carries." if owed else ""
    if not problem:
        return None
    labels = [exception_actions.get(fix).label for fix in _fixes(exception) if exception_actions.registered(fix)]
    return ProblemLeft(f"{problem} Fix it first: {', '.join(labels)}." if labels else problem, _fixes(exception))


# --- one service per governed action ---------------------------------------------------------------


def _finish_locked(exception: FulfillmentException, *, action: str, note: str, actor: Actor, operator_minutes: int) -> str:
    """Close the exception a person worked on if the change fixed it, as `action`; otherwise record what they
    did on it. Returns what is still wrong ("" when nothing is). The caller holds the order's and the
    exception's locks."""
    exception = exception_lock(exception)
    if not exception.is_open:  # the change closed it (a new plan makes a backorder or a split proposal moot)
        if operator_minutes:
            exception_comment(exception=exception, note=note, actor=actor, operator_minutes=operator_minutes)
        return ""
    left = problem_left(exception)
    if left is None:
        exception_resolve(exception=exception, note=note, action=action, actor=actor, operator_minutes=operator_minutes)
        return ""
    exception_comment(exception=exception, note=note, actor=actor, operator_minutes=operator_minutes)
    return left.message


def _with(note: str, left: str) -> str:
    return f"{note} {left}" if left else note


def _allocate_if_backordered_locked(exception: FulfillmentException, *, actor: Actor, action: str) -> str:
    """A backorder is retried at once after a change that may let it fill; what that gave, or ""."""
    order = order_lock(exception.order_id)
    if order.status != OrderStatus.BACKORDERED or not can_proceed(order.retry_allocation):
        return ""  # not waiting, or something still blocks it: that exception's owner takes it from here
    order_transition_locked(order, "retry_allocation", actor=actor)
    return f"Allocation: {order_route_locked(order, actor=actor, action=action).get_outcome_display().lower()}."


@transaction.atomic
def exception_release_hold(*, exception: FulfillmentException, note: str, actor: Actor, operator_minutes: int = 0) -> str:
    """The exception needs no change to the order (a person checked): resolve it, which lifts the hold once no
    other blocking exception is left. Refused while its problem is still there."""
    exception_resolve(exception=exception, note=note, action="release_hold", actor=actor, operator_minutes=operator_minutes)
    return ""


@transaction.atomic
def exception_cancel_order(*, exception: FulfillmentException, reason: str, actor: Actor, operator_minutes: int = 0) -> str:
    order_cancel(order=exception.order, reason=reason, actor=actor, operator_minutes=operator_minutes)
    return ""


@transaction.atomic
def exception_cancel_line(
    *, exception: FulfillmentException, line: OrderLine, reason: str, actor: Actor, operator_minutes: int = 0
) -> str:
    """Cancel a line; after release, of a line a short pick left owing, only the units owed (the picked ones
    still ship). A backordered order is then allocated again."""
    order = order_lock(exception.order_id)
    if exception.type.code == "short_pick" and order.status in AFTER_RELEASE:
        order = order_line_cancel_owed(order=order, line=line, reason=reason, actor=actor)
        note = f"Line {line.line_number}: the units short cancelled ({reason})"
    else:
        order = order_line_cancel(order=order, line=line, reason=reason, actor=actor)
        note = f"Line {line.line_number} cancelled: {reason}"
    if order.status == OrderStatus.CANCELLED:
        return "That was the last line: the order is cancelled."
    allocation = _allocate_if_backordered_locked(exception, actor=actor, action="cancel_line")
    left = _finish_locked(exception, action="cancel_line", note=note, actor=actor, operator_minutes=operator_minutes)
    return _with(f"{note}. {allocation}" if allocation else note, left)


@transaction.atomic
def exception_correct_address(
    *, exception: FulfillmentException, address: Address, actor: Actor, operator_minutes: int = 0
) -> str:
    """Replace the address with one that passes the country's rules: every invalid_address exception it fixes closes."""
    order_correct_address(order=exception.order, address=address, actor=actor, action="correct_address")
    left = _finish_locked(
        exception,
        action="correct_address",
        note="Address corrected and re-validated.",
        actor=actor,
        operator_minutes=operator_minutes,
    )
    return left


@transaction.atomic
def exception_approve_split(*, exception: FulfillmentException, actor: Actor, operator_minutes: int = 0) -> str:
    """Approve the split; if its stock went meanwhile the order is planned again, and the message says how."""
    result = order_approve_split(order=exception.order, actor=actor)
    _finish_locked(exception, action="approve_split", note=result.message, actor=actor, operator_minutes=operator_minutes)
    return result.message


@transaction.atomic
def exception_reject_split(*, exception: FulfillmentException, reason: str, actor: Actor, operator_minutes: int = 0) -> str:
    order_reject_split(order=exception.order, actor=actor, reason=reason)
    _finish_locked(exception, action="reject_split", note=f"Rejected: {reason}", actor=actor, operator_minutes=operator_minutes)
    return "Split rejected: the reservations are released and the order waits for full stock."


@transaction.atomic
def exception_cancel_line_ship_rest(
    *, exception: FulfillmentException, line: OrderLine, reason: str, actor: Actor, operator_minutes: int = 0
) -> str:
    """Cancel one line of a proposed split and approve the rest."""
    order = order_line_cancel(order=exception.order, line=line, reason=reason, actor=actor)
    if order.status == OrderStatus.CANCELLED:
        return "That was the last line: the order is cancelled."
    result = order_approve_split(order=order, actor=actor)
    _finish_locked(exception, action="approve_split", note=result.message, actor=actor, operator_minutes=operator_minutes)
    return f"Line {line.line_number} cancelled. {result.message}"


@transaction.atomic
def exception_reallocate(*, exception: FulfillmentException, location: Location, actor: Actor, operator_minutes: int = 0) -> str:
    """Ship the order (or, after a short pick, the units it still owes) from a location the person chose; refused,
    with nothing changed, when that location cannot."""
    order = order_lock(exception.order_id)
    note = f"Reallocated to {location.code}."
    if exception.type.code == "short_pick" and order.status in AFTER_RELEASE:
        order_reallocate_owed_to(order=order, location=location, actor=actor)
        message = f"The units short now ship from {location.code}; they went to the warehouse at once."
    else:
        decision = order_reallocate_to(order=order, location=location, actor=actor, action="reallocate")
        message = f"Reallocated to {location.code}: {decision.get_outcome_display().lower()}."
    left = _finish_locked(exception, action="reallocate", note=note, actor=actor, operator_minutes=operator_minutes)
    return _with(message, left)


@transaction.atomic
def exception_substitute_sku(
    *, exception: FulfillmentException, line: OrderLine, substitute: Sku, actor: Actor, operator_minutes: int = 0
) -> str:
    """Ship a configured substitute on the line; a backordered order is then allocated again."""
    order_line_substitute(order=exception.order, line=line, substitute=substitute, actor=actor)
    note = f"Line {line.line_number} now ships {substitute.code}."
    allocation = _allocate_if_backordered_locked(exception, actor=actor, action="substitute_sku")
    left = _finish_locked(exception, action="substitute_sku", note=note, actor=actor, operator_minutes=operator_minutes)
    return _with(f"{note} {allocation}" if allocation else note, left)


@transaction.atomic
def exception_accept_price(*, exception: FulfillmentException, reason: str, actor: Actor, operator_minutes: int = 0) -> str:
    """Accept the partner's unit price on the line, within the partner's limit for it (an override, with a reason)."""
    order = order_lock(exception.order_id)
    line = OrderLine.objects.select_for_update(of=("self",)).select_related("sku").get(pk=exception.line_id, order=order)
    gap = price_gap_percent(line)
    if gap is not None and gap > order.partner.price_override_percent:
        raise Conflict(
            OrderError.PRICE_BEYOND_LIMIT,
            f"Line {line.line_number}'s price is {gap:.0f}% off the catalogue; {order.partner.code} allows accepting up to "
            f"{order.partner.price_override_percent:.0f}%. Cancel the line or the order instead.",
        )
    line.price_accepted = True
    line.save(update_fields=["price_accepted"])
    events.order_action(
        order,
        name="accept_price",
        actor=actor,
        data={"line": line.line_number, "unit_price": str(line.unit_price), "gap_percent": f"{gap or 0:.1f}", "reason": reason},
    )
    note = f"Unit price {line.unit_price} accepted: {reason}"
    return _finish_locked(exception, action="accept_price", note=note, actor=actor, operator_minutes=operator_minutes)
