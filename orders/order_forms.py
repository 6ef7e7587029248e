"""The order page's actions: for each, its form, the permission it needs, when the page offers it, and the
order service it calls.

These are not governed exception actions: they act on the order itself, from its page. The services
decide what the order's state allows and say why not; the page only leaves out what cannot apply now.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django import forms
from django.db import transaction

from core.actors import Actor
from core.errors import Forbidden, InvalidInput
from exceptions.errors import NOTE_REQUIRED, PERMISSION_DENIED, REASON_REQUIRED, ExceptionError

from .addresses import ADDRESS_FIELDS, Address
from .errors import OrderError
from .models import ADDRESS_EDITABLE, CANCELLABLE, HOLDABLE, Order, OrderLine, OrderStatus, ShipmentStatus
from .services.addresses import order_correct_address
from .services.allocation import order_route
from .services.comments import order_comment
from .services.lifecycle import FINISHED, order_cancel, order_hold, order_line_cancel, order_release_hold

CANCEL_LINE = "cancel_line"


class OrderActionForm(forms.Form):
    def __init__(self, *args, order: Order, **kwargs):
        self.order = order
        super().__init__(*args, **kwargs)


class HoldForm(OrderActionForm):
    reason = forms.CharField(
        label="Why hold it",
        max_length=200,
        widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={"required": REASON_REQUIRED},
    )


class ReleaseHoldForm(OrderActionForm):
    note = forms.CharField(
        label="Why the order may go on", widget=forms.Textarea(attrs={"rows": 2}), error_messages={"required": NOTE_REQUIRED}
    )


class CancelOrderForm(OrderActionForm):
    reason = forms.CharField(
        label="Why cancel it",
        max_length=200,
        widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={"required": REASON_REQUIRED},
    )


class CancelLineForm(OrderActionForm):
    # Every line of the order, cancelled ones too: cancelling one again is the service's to refuse, in its words.
    line = forms.ModelChoiceField(
        queryset=OrderLine.objects.none(),
        error_messages={"required": "Choose a line.", "invalid_choice": "Not a line of this order."},
    )
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 1}), error_messages={"required": REASON_REQUIRED})

    def __init__(self, *args, order: Order, **kwargs):
        super().__init__(*args, order=order, **kwargs)
        self.fields["line"].queryset = OrderLine.objects.filter(order=order)


class AddressForm(OrderActionForm):
    name = forms.CharField(max_length=200, required=False)
    line1 = forms.CharField(label="Street address", max_length=200, required=False)
    line2 = forms.CharField(label="Address line 2", max_length=200, required=False)
    city = forms.CharField(max_length=100, required=False)
    region = forms.CharField(label="State or region", max_length=100, required=False)
    postal_code = forms.CharField(max_length=20, required=False)
    country = forms.CharField(max_length=2, min_length=2, help_text="Two-letter ISO code.")

    field_order = list(ADDRESS_FIELDS)

    def __init__(self, *args, order: Order, **kwargs):
        super().__init__(*args, order=order, **kwargs)
        if not self.is_bound:
            for name in ADDRESS_FIELDS:
                self.fields[name].initial = getattr(order, f"ship_{name}")


class CommentForm(OrderActionForm):
    note = forms.CharField(label="Comment", widget=forms.Textarea(attrs={"rows": 2}), error_messages={"required": NOTE_REQUIRED})


# --- when the page offers each (from what the order page has loaded: no query) -------------------------


def _nothing_picked(order: Order) -> bool:
    return not any(shipment.status in (ShipmentStatus.PICKED, ShipmentStatus.PACKED) for shipment in order.shipments.all())


def _cancellable(order: Order) -> bool:
    return order.status in CANCELLABLE and _nothing_picked(order)


def lines_cancellable(order: Order) -> bool:
    """Whether a line of the order may still be cancelled (each line that is not already)."""
    return order.status not in FINISHED


# --- what each runs: the order services, each in its own transaction ---------------------------------


def _hold(order: Order, actor: Actor, data: dict) -> str:
    order_hold(order=order, reason=data["reason"], actor=actor)
    return "The order is on hold."


@transaction.atomic
def _release_hold(order: Order, actor: Actor, data: dict) -> str:
    # Released, the order is ready and is planned at once, as when its last blocking exception closes; the
    # person's note stays beside the release. One transaction: all of it, or nothing.
    order_release_hold(order=order, actor=actor)
    order_comment(order=order, note=data["note"], actor=actor)
    decision = order_route(order=order, actor=actor)
    return f"Hold released. Allocation: {decision.get_outcome_display().lower()}."


def _cancel_order(order: Order, actor: Actor, data: dict) -> str:
    order_cancel(order=order, reason=data["reason"], actor=actor)
    return "The order is cancelled."


def _cancel_line(order: Order, actor: Actor, data: dict) -> str:
    line = data["line"]
    order = order_line_cancel(order=order, line=line, reason=data["reason"], actor=actor)
    if order.status == OrderStatus.CANCELLED:
        return f"Line {line.line_number} cancelled. That was the last line: the order is cancelled."
    return f"Line {line.line_number} cancelled."


def _change_address(order: Order, actor: Actor, data: dict) -> str:
    change = order_correct_address(order=order, address=Address.from_mapping(data), actor=actor)
    if change.decision is not None:
        return f"Address changed. Planned again: {change.decision.get_outcome_display().lower()}."
    return "Address changed."


def _comment(order: Order, actor: Actor, data: dict) -> str:
    order_comment(order=order, note=data["note"], actor=actor)
    return "Comment added."


@dataclass(frozen=True)
class OrderAction:
    code: str
    label: str
    permission: str  # "app_label.codename"
    verb: str  # "Your role may not <verb>."
    form_class: type[OrderActionForm]
    applies: Callable[[Order], bool]  # whether the page offers it now
    run: Callable[[Order, Actor, dict], str]  # one use case; returns what the person reads
    style: str = ""


ORDER_ACTIONS: dict[str, OrderAction] = {
    action.code: action
    for action in (
        OrderAction(
            "hold",
            "Put on hold",
            "orders.release_hold",  # whoever may release a hold may put one on
            "put orders on hold",
            HoldForm,
            lambda order: order.status in HOLDABLE,
            _hold,
        ),
        OrderAction(
            "release_hold",
            "Release hold",
            "orders.release_hold",
            "release orders from hold",
            ReleaseHoldForm,
            lambda order: order.status == OrderStatus.ON_HOLD,
            _release_hold,
            style="primary",
        ),
        OrderAction(
            "change_address",
            "Change address",
            "orders.correct_address",
            "change shipping addresses",
            AddressForm,
            lambda order: order.status in ADDRESS_EDITABLE,
            _change_address,
        ),
        OrderAction(
            "comment",
            "Comment",
            "orders.view_order",  # a note changes nothing: whoever may read the order may add one
            "comment on orders",
            CommentForm,
            lambda order: True,
            _comment,
        ),
        OrderAction(
            "cancel_order",
            "Cancel order",
            "orders.cancel_order",
            "cancel orders",
            CancelOrderForm,
            _cancellable,
            _cancel_order,
            style="danger",
        ),
        OrderAction(
            CANCEL_LINE,
            "Cancel line",
            "orders.cancel_line",
            "cancel order lines",
            CancelLineForm,
            lines_cancellable,
            _cancel_line,
            style="danger",
        ),
    )
}


def may_take(user, action: OrderAction, permissions: set[str]) -> bool:
    return user.is_superuser or action.permission in permissions


def order_action_perform(*, action: OrderAction, order: Order, user, data) -> str:
    """Check the role, validate the input and run the action's service; raise a DomainError (and change
    nothing) when it may not run. What the order's state allows is the service's to say."""
    if not (user.is_superuser or user.has_perm(action.permission)):
        raise Forbidden(ExceptionError.PERMISSION_DENIED, PERMISSION_DENIED.format(action=action.verb))
    form = action.form_class(data, order=order)
    if not form.is_valid():
        first = next(iter(form.errors.values()))[0]
        raise InvalidInput(OrderError.INVALID_ORDER, first, fields={k: list(v) for k, v in form.errors.items()})
    return action.run(order, Actor.for_user(user), form.cleaned_data)
