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
from core.roles import Role
from exceptions import actions
from exceptions import selectors as exception_selectors
from exceptions.models import FulfillmentException, Queue

from . import routing, selectors
from .models import Order, RoutingDecision

APPROVAL_ACTIONS = ("approve_split", "reject_split", "cancel_line_ship_rest")
DECIDERS = {Role.CUSTOMER_SERVICE: "customer service", Role.OPS_ADMIN: "an ops admin", Role.COORDINATOR: "a coordinator"}


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


def _who_decides(exception: FulfillmentException | None, queues: dict[int, Queue]) -> str:
    """For someone who cannot act: who can, named by the queue the split sits in now and the team owning it."""
    if exception is None:
        return ""
    queue = queues.get(exception.queue_id)
    if queue is None:
        return "Customer service decides."
    team = queue.team.name
    who = DECIDERS.get(team, f"the {team.replace('_', ' ')} team")
    if exception.escalated:
        return f"Escalated to {queue.name}: {who} decides."
    return f"{who[0].upper()}{who[1:]} decides."


def _queues_of(orders) -> dict[int, Queue]:
    # One read for the page, not one a row.
    ids = {order.split_exceptions[0].queue_id for order in orders if order.split_exceptions}
    return Queue.objects.select_related("team").in_bulk(ids)


def _approval_row(
    order: Order,
    user,
    *,
    message: str = "",
    error: str = "",
    failed: str = "",
    data=None,
    queue_ids=None,
    permissions=None,
    queues: dict[int, Queue] | None = None,
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
        "who_decides": _who_decides(exception, _queues_of([order]) if queues is None else queues),
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
    orders = list(page.object_list)
    queues = _queues_of(orders)
    rows = [_approval_row(order, request.user, queue_ids=queue_ids, permissions=permissions, queues=queues) for order in orders]
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
            response = render(
                request, "orders/approvals.html#notice", {"message": error.message, "error": True}, status=error.http_status
            )
            return _with_waiting(response)
        context = _approval_row(order, request.user, error=error.message, failed=code, data=request.POST)
        response = render(request, "orders/approvals.html#row", context, status=error.http_status)
        return _with_waiting(response)
    order = selectors.splits_awaiting_approval().filter(pk=order_id).first()
    if order is not None:
        response = render(request, "orders/approvals.html#row", _approval_row(order, request.user, message=result.message))
    elif RoutingDecision.objects.filter(order_id=order_id).count() > decisions_before:
        # Planned again (the stock had gone): say so where the row was.
        response = render(request, "orders/approvals.html#notice", {"message": result.message, "order_id": order_id})
    else:
        response = HttpResponse("")
    response = _with_waiting(response)
    return trigger_client_event(response, "splits-changed", {"order": order_id, "action": code})


def _with_waiting(response):
    """The page's "N waiting" follows each decision (app.js reads countsChanged)."""
    waiting = selectors.splits_awaiting_approval().count()
    return trigger_client_event(response, "countsChanged", {"counters": {"waiting": waiting, "pages": max(1, -(-waiting // 25))}})
