"""A suspected duplicate order: the two orders side by side, and the two ways a person settles it — cancel one of
them, or keep both with a reason."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.db.models import Prefetch
from django.utils import timezone

from core.actors import Actor
from core.errors import Conflict, InvalidInput
from exceptions.errors import REASON_REQUIRED
from exceptions.models import FulfillmentException
from exceptions.services import exception_lock, exception_resolve

from ..errors import OrderError
from ..models import Order, OrderLine, OrderStatus
from .lifecycle import order_cancel

DUPLICATE = "duplicate_order"


def twin_id(exception: FulfillmentException) -> int | None:
    """The other order a duplicate_order names (none when the same order was sent again with another body)."""
    detail = exception.detail if isinstance(exception.detail, dict) else {}
    value = detail.get("duplicate_of")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


# --- side by side ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    label: str
    values: tuple[str, str]

    @property
    def differs(self) -> bool:
        return self.values[0] != self.values[1]


@dataclass(frozen=True)
class SideBySide:
    orders: tuple[Order, Order]  # this exception's order, then the one it seems to repeat
    rows: list[Row]
    lines: tuple[list[OrderLine], list[OrderLine]]
    lines_differ: bool


def _address(order: Order) -> str:
    parts = (order.ship_name, order.ship_line1, order.ship_line2, order.ship_city, order.ship_region, order.ship_postal_code)
    return ", ".join(part for part in (*parts, order.ship_country) if part)


def _lines_signature(lines: list[OrderLine]) -> list[tuple]:
    return sorted((line.sku_code.upper(), line.quantity, line.uom, line.unit_price) for line in lines)


def side_by_side(exception: FulfillmentException) -> SideBySide | None:
    """The exception's order and its twin, with what differs between them; None when there is no twin to show.
    Two queries whatever the number of lines."""
    other = twin_id(exception)
    if exception.type.code != DUPLICATE or exception.order_id is None or other is None:
        return None
    found = {
        order.pk: order
        for order in Order.objects.filter(pk__in=[exception.order_id, other])
        .select_related("partner")
        .prefetch_related(Prefetch("lines", queryset=OrderLine.objects.order_by("line_number"), to_attr="shown_lines"))
    }
    if len(found) < 2:
        return None
    pair = (found[exception.order_id], found[other])

    def both(read) -> tuple[str, str]:
        return tuple(str(read(order)) for order in pair)

    rows = [
        Row("Channel and number", both(lambda o: f"{o.partner.code} {o.external_id}")),
        Row("Status", both(lambda o: o.get_status_display())),
        Row("Customer", both(lambda o: o.customer_name)),
        Row("Email", both(lambda o: o.customer_email or "—")),
        Row("Ship to", both(_address)),
        Row("Service level", both(lambda o: o.get_service_level_display())),
        Row("Total", both(lambda o: f"{o.total_amount:.2f} {o.currency}")),
        Row("Placed", both(lambda o: f"{timezone.localtime(o.placed_at):%Y-%m-%d %H:%M %Z}")),
    ]
    lines = (pair[0].shown_lines, pair[1].shown_lines)
    return SideBySide(pair, rows, lines, _lines_signature(lines[0]) != _lines_signature(lines[1]))


# --- the two ways to settle it ---------------------------------------------------------------------


def _reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput(OrderError.INVALID_ORDER, REASON_REQUIRED, fields={"reason": [REASON_REQUIRED]})
    return reason


@transaction.atomic
def exception_cancel_duplicate(
    *, exception: FulfillmentException, cancel: Order, reason: str, actor: Actor, operator_minutes: int = 0
) -> str:
    """Cancel one of the two orders. Cancelling this exception's order closes it with the order's other exceptions;
    cancelling the twin closes it here, which lifts this order's hold and routes it unless something else holds it."""
    reason = _reason(reason)
    exception = exception_lock(exception)
    if cancel.pk not in (exception.order_id, twin_id(exception)):
        raise InvalidInput(
            OrderError.INVALID_ORDER, "Choose one of the two orders.", fields={"cancel": ["Not one of the two orders."]}
        )
    if cancel.status == OrderStatus.CANCELLED:
        raise Conflict(OrderError.ILLEGAL_TRANSITION, f"Order {cancel.external_id} is already cancelled.")
    this_one = cancel.pk == exception.order_id
    # Cancelling this order closes this exception with it (and takes the minutes); the twin's may have none.
    cancelled = order_cancel(
        order=cancel, reason=f"Duplicate order: {reason}", actor=actor, operator_minutes=operator_minutes if this_one else 0
    )
    exception = exception_lock(exception)
    if exception.is_open:  # the twin went: this order stands
        note = f"Cancelled {cancelled.partner.code} {cancelled.external_id} as the duplicate: {reason}"
        exception_resolve(
            exception=exception, note=note, action="cancel_duplicate", actor=actor, operator_minutes=operator_minutes
        )
    return f"Order {cancelled.external_id} cancelled as the duplicate."


@transaction.atomic
def exception_keep_both(*, exception: FulfillmentException, reason: str, actor: Actor, operator_minutes: int = 0) -> str:
    """Both orders stand (the customer wants two): close the exception with the reason, and the order goes on."""
    reason = _reason(reason)
    exception_resolve(
        exception=exception,
        note=f"Both orders kept: {reason}",
        action="keep_both",
        actor=actor,
        operator_minutes=operator_minutes,
    )
    return "Both orders kept."
