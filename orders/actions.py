"""Resolution actions that touch orders, registered into the exceptions registry at start-up.

Each runs one service of orders.services.resolutions, which owns the order of its steps.
"""

from __future__ import annotations

from django.db.models import Exists, OuterRef

from exceptions import actions, filters
from exceptions.models import FulfillmentException

from . import forms
from .addresses import Address
from .models import ADDRESS_EDITABLE, AFTER_RELEASE, CANCELLABLE, OrderLine, OrderStatus, ShipmentStatus
from .services import duplicates, mappings, resolutions


def _order_status(exception: FulfillmentException) -> str | None:
    return exception.order.status if exception.order_id else None


def _minutes(data: dict) -> int:
    return data.get("operator_minutes") or 0


def _cancellable(exception: FulfillmentException) -> bool:
    status = _order_status(exception)
    if status == OrderStatus.RELEASED:  # units off the shelf cannot be cancelled from here
        return not exception.order.shipments.filter(status__in=[ShipmentStatus.PICKED, ShipmentStatus.PACKED]).exists()
    return status in CANCELLABLE


HAS_SUBSTITUTE = "order_has_substitute"


def _lines_with_a_substitute():
    # The lines the substitution form offers a choice for.
    return OrderLine.objects.filter(cancelled=False, sku__substitutes__isnull=False)


def _has_substitute(exception: FulfillmentException) -> bool:
    known = getattr(exception, HAS_SUBSTITUTE, None)  # annotated on the queue's rows
    if known is not None:
        return known
    return _lines_with_a_substitute().filter(order_id=exception.order_id).exists()


def _short_pick_after_release(exception: FulfillmentException) -> bool:
    return exception.type.code == "short_pick" and _order_status(exception) in AFTER_RELEASE


def _unknown_sku_line_open(exception: FulfillmentException) -> bool:
    # The line is loaded with the queue's rows: no query per row.
    line = exception.line if exception.line_id else None
    return line is not None and line.sku_id is None and not line.cancelled


def _duplicate_with_twin(exception: FulfillmentException) -> bool:
    return exception.type.code == duplicates.DUPLICATE and duplicates.twin_id(exception) is not None


def register_actions() -> None:
    filters.annotate_rows(HAS_SUBSTITUTE, lambda: Exists(_lines_with_a_substitute().filter(order_id=OuterRef("order_id"))))
    actions.register(
        actions.Action(
            "release_hold",
            "Release hold",
            "orders.release_hold",
            forms.ReleaseHoldForm,
            run=lambda e, actor, d, user: resolutions.exception_release_hold(
                exception=e, note=d["note"], actor=actor, operator_minutes=_minutes(d)
            ),
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
            run=lambda e, actor, d, user: resolutions.exception_cancel_line(
                exception=e, line=d["line"], reason=d["reason"], actor=actor, operator_minutes=_minutes(d)
            ),
            applies=lambda e, user: e.is_open and (_order_status(e) in ADDRESS_EDITABLE or _short_pick_after_release(e)),
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
            run=lambda e, actor, d, user: resolutions.exception_cancel_order(
                exception=e, reason=d["reason"], actor=actor, operator_minutes=_minutes(d)
            ),
            applies=lambda e, user: e.is_open and _cancellable(e),
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
            run=lambda e, actor, d, user: resolutions.exception_correct_address(
                exception=e, address=Address.from_mapping(d), actor=actor, operator_minutes=_minutes(d)
            ),
            applies=lambda e, user: e.is_open and _order_status(e) in ADDRESS_EDITABLE,
            generic=False,
            verb="correct addresses",
        )
    )
    actions.register(
        actions.Action(
            "accept_price",
            "Accept the partner's price",
            "orders.accept_price",
            forms.AcceptPriceForm,
            run=lambda e, actor, d, user: resolutions.exception_accept_price(
                exception=e, reason=d["reason"], actor=actor, operator_minutes=_minutes(d)
            ),
            applies=lambda e, user: e.is_open and e.line_id is not None and _order_status(e) in ADDRESS_EDITABLE,
            generic=False,
            verb="accept partners' prices",
        )
    )
    actions.register(
        actions.Action(
            "approve_split",
            "Approve split",
            "orders.approve_split",
            forms.ApproveSplitForm,
            run=lambda e, actor, d, user: resolutions.exception_approve_split(
                exception=e, actor=actor, operator_minutes=_minutes(d)
            ),
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
            run=lambda e, actor, d, user: resolutions.exception_reject_split(
                exception=e, reason=d["reason"], actor=actor, operator_minutes=_minutes(d)
            ),
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
            run=lambda e, actor, d, user: resolutions.exception_cancel_line_ship_rest(
                exception=e, line=d["line"], reason=d["reason"], actor=actor, operator_minutes=_minutes(d)
            ),
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
            run=lambda e, actor, d, user: resolutions.exception_reallocate(
                exception=e, location=d["location"], actor=actor, operator_minutes=_minutes(d)
            ),
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
            run=lambda e, actor, d, user: resolutions.exception_substitute_sku(
                exception=e, line=d["substitution"][0], substitute=d["substitution"][1], actor=actor, operator_minutes=_minutes(d)
            ),
            applies=lambda e, user: (
                e.is_open
                and _order_status(e) in (OrderStatus.BACKORDERED, OrderStatus.READY, OrderStatus.ON_HOLD, OrderStatus.RECEIVED)
                and _has_substitute(e)
            ),
            generic=False,
            verb="substitute SKUs",
        )
    )
    actions.register(
        actions.Action(
            "map_sku",
            "Map to our SKU",
            "orders.substitute_sku",
            forms.MapSkuForm,
            run=lambda e, actor, d, user: mappings.exception_map_sku(
                exception=e, sku=d["sku"], remember=d["remember"], actor=actor, user=user, operator_minutes=_minutes(d)
            ),
            applies=lambda e, user: e.is_open and _order_status(e) in ADDRESS_EDITABLE and _unknown_sku_line_open(e),
            generic=False,
            verb="map partners' SKUs to ours",
            style="primary",
        )
    )
    actions.register(
        actions.Action(
            "cancel_duplicate",
            "Cancel one of the two",
            "orders.cancel_order",
            forms.CancelDuplicateForm,
            run=lambda e, actor, d, user: duplicates.exception_cancel_duplicate(
                exception=e, cancel=d["cancel"], reason=d["reason"], actor=actor, operator_minutes=_minutes(d)
            ),
            applies=lambda e, user: e.is_open and _duplicate_with_twin(e),
            generic=False,
            verb="cancel orders",
            style="danger",
        )
    )
    actions.register(
        actions.Action(
            "keep_both",
            "Keep both orders",
            "orders.release_hold",
            forms.KeepBothForm,
            run=lambda e, actor, d, user: duplicates.exception_keep_both(
                exception=e, reason=d["reason"], actor=actor, operator_minutes=_minutes(d)
            ),
            applies=lambda e, user: e.is_open and _duplicate_with_twin(e),
            generic=False,
            verb="keep suspected duplicate orders",
        )
    )
