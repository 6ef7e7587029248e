"""Order pages: one order with its routing explanation, timeline and actions, and customer service's split approvals."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import trigger_client_event

from core.auth import role_required
from core.errors import DomainError
from core.roles import Role
from exceptions import actions
from exceptions.models import FulfillmentException, Queue
from exceptions.timeline import timeline

from . import order_forms, routing, selectors
from .models import Order, RoutingDecision

APPROVAL_ACTIONS = ("approve_split", "reject_split", "cancel_line_ship_rest")
DECIDERS = {Role.CUSTOMER_SERVICE: "customer service", Role.OPS_ADMIN: "an ops admin", Role.COORDINATOR: "a coordinator"}


def _order_or_404(pk: int) -> Order:
    try:
        return selectors.order_get(pk)
    except Order.DoesNotExist:
        raise Http404("No such order.") from None


def _order_context(request, order: Order, *, error: str = "", failed: str = "", data=None) -> dict:
    """The order page: its lines with their prices, its exceptions, its timeline in words, and the actions the
    person may take on it now, as forms (the one that failed bound to what was sent, to show why)."""
    permissions = request.user.get_all_permissions()
    offered = [
        action
        for action in order_forms.ORDER_ACTIONS.values()
        if order_forms.may_take(request.user, action, permissions) and action.applies(order)
    ]
    action_forms = [
        (action, action.form_class(data if action.code == failed else None, order=order))
        for action in offered
        if action.code != order_forms.CANCEL_LINE
    ]
    lines_cancellable = any(action.code == order_forms.CANCEL_LINE for action in offered)
    failed_line = str(data.get("line", "")) if data is not None and failed == order_forms.CANCEL_LINE else ""
    lines = [
        {
            "line": line,
            "total": line.unit_price * line.quantity,
            "cancellable": lines_cancellable and not line.cancelled,
            "failed": failed_line == str(line.pk),
        }
        for line in order.lines.all()
    ]
    decisions = [(decision, routing.routing_explanation(decision)) for decision in order.routing_decisions.all()]
    return {
        "order": order,
        "lines": lines,
        "shipments": order.shipments.all(),
        "decisions": decisions,
        "exceptions": order.exceptions.all(),
        "timeline": timeline(order=order),
        "action_forms": action_forms,
        "error": error,
        "failed": failed,
        "data": data,
    }


@role_required()
@require_GET
@vary_on_headers("HX-Request")
def order_detail(request, pk: int):
    order = _order_or_404(pk)
    template = "orders/detail.html#body" if request.htmx and request.htmx.target == "order" else "orders/detail.html"
    return render(request, template, _order_context(request, order))


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
    queue_ids=actions.NOT_COMPUTED,
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
        context = _approval_row(
            order,
            request.user,
            error=error.message,
            failed=code,
            data=request.POST,
            queue_ids=actions.workable_queue_ids(request.user),
            permissions=request.user.get_all_permissions(),
        )
        response = render(request, "orders/approvals.html#row", context, status=error.http_status)
        return _with_waiting(response)
    order = selectors.splits_awaiting_approval().filter(pk=order_id).first()
    if order is not None:
        context = _approval_row(
            order,
            request.user,
            message=result.message,
            queue_ids=actions.workable_queue_ids(request.user),
            permissions=request.user.get_all_permissions(),
        )
        response = render(request, "orders/approvals.html#row", context)
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


@role_required()
@require_POST
def order_action(request, pk: int, code: str):
    """Run one action of the order page. htmx posts get the page body back; plain posts are redirected to the
    order with a message. A refused action answers with the page and the reason, and changes nothing."""
    action = order_forms.ORDER_ACTIONS.get(code)
    if action is None:
        raise Http404("No such order action.")
    order = _order_or_404(pk)
    try:
        done = order_forms.order_action_perform(action=action, order=order, user=request.user, data=request.POST)
    except DomainError as error:
        context = _order_context(request, _order_or_404(pk), error=error.message, failed=code, data=request.POST)
        template = "orders/detail.html#body" if request.htmx else "orders/detail.html"
        return render(request, template, context, status=error.http_status)
    if request.htmx:
        response = render(request, "orders/detail.html#body", {**_order_context(request, _order_or_404(pk)), "done": done})
        return trigger_client_event(response, "order-changed", {"order": pk, "action": code})
    messages.success(request, done)
    return redirect("order-detail", pk=pk)
