"""Order pages: one order with its routing explanation, and customer service's split approvals."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import trigger_client_event

from core.auth import role_required
from core.errors import DomainError
from exceptions import actions
from exceptions import selectors as exception_selectors
from exceptions.models import FulfillmentException

from . import routing, selectors
from .models import Order, RoutingDecision

APPROVAL_ACTIONS = ("approve_split", "reject_split", "cancel_line_ship_rest")


@role_required()
@require_GET
def order_detail(request, pk: int):
    try:
        order = selectors.order_get(pk)
    except Order.DoesNotExist:
        raise Http404("No such order.") from None
    decisions = [(decision, routing.routing_explanation(decision)) for decision in order.routing_decisions.all()]
    return render(
        request,
        "orders/detail.html",
        {
            "order": order,
            "lines": order.lines.all(),
            "shipments": order.shipments.all(),
            "decisions": decisions,
            "exceptions": order.exceptions.all(),
            "timeline": exception_selectors.timeline(order=order),
        },
    )


def _approval_row(
    order: Order, user, *, message: str = "", error: str = "", failed: str = "", data=None, queue_ids=None, permissions=None
) -> dict:
    exception = order.split_exceptions[0] if order.split_exceptions else None
    allowed = (
        {a.code for a in actions.available_actions(exception, user, queue_ids=queue_ids, permissions=permissions)}
        if exception
        else set()
    )
    shipments = [(s, selectors.shipment_promise(s, order)) for s in order.planned_shipments]
    return {
        "order": order,
        "exception": exception,
        "shipments": shipments,
        "can": {code: code in allowed for code in APPROVAL_ACTIONS},
        "open_lines": [line for line in order.all_lines if not line.cancelled],
        "message": message,
        "error": error,
        "failed": failed,
        "data": data,
    }


@role_required()
@require_GET
@vary_on_headers("HX-Request")
def split_approvals(request):
    page = Paginator(selectors.splits_awaiting_approval(), 25).get_page(request.GET.get("page"))
    # Who may do what is read once for the page, not once a row.
    queue_ids, permissions = actions.workable_queue_ids(request.user), request.user.get_all_permissions()
    rows = [_approval_row(order, request.user, queue_ids=queue_ids, permissions=permissions) for order in page.object_list]
    return render(request, "orders/approvals.html", {"rows": rows, "page": page})


@role_required()
@require_POST
def split_approval_action(request, exception_id: int, code: str):
    """Approve, reject, or cancel a line and ship the rest. The row leaves the list when the
    order no longer waits for approval; otherwise it comes back with what happened."""
    if code not in APPROVAL_ACTIONS:
        raise Http404("No such approval action.")
    order_id = FulfillmentException.objects.filter(pk=exception_id).values_list("order_id", flat=True).first()
    if order_id is None:
        raise Http404("No such split.")
    decisions_before = RoutingDecision.objects.filter(order_id=order_id).count()
    try:
        result = actions.action_perform(code=code, exception_id=exception_id, user=request.user, data=request.POST)
    except DomainError as error:
        order = selectors.splits_awaiting_approval().filter(pk=order_id).first()
        if order is None:
            return render(
                request, "orders/approvals.html#notice", {"message": error.message, "error": True}, status=error.http_status
            )
        context = _approval_row(order, request.user, error=error.message, failed=code, data=request.POST)
        return render(request, "orders/approvals.html#row", context, status=error.http_status)
    order = selectors.splits_awaiting_approval().filter(pk=order_id).first()
    if order is not None:
        response = render(request, "orders/approvals.html#row", _approval_row(order, request.user, message=result.message))
    elif RoutingDecision.objects.filter(order_id=order_id).count() > decisions_before:
        # Planned again (the stock had gone): say so where the row was.
        response = render(request, "orders/approvals.html#notice", {"message": result.message, "order_id": order_id})
    else:
        response = HttpResponse("")
    return trigger_client_event(response, "splits-changed", {"order": order_id, "action": code})
