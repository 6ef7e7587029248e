"""The coordinator's pages: the queue and one exception. Thin: reads come from
selectors, every change goes through `actions.action_perform`."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, HttpResponseBadRequest, QueryDict
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import trigger_client_event

from core.auth import role_required
from core.errors import DomainError

from . import actions, selectors, services
from .models import FulfillmentException

PAGE_SIZE = 25
CHANGED = "exceptions-changed"
COUNTS_CHANGED = "countsChanged"


def refresh_seconds() -> int:
    # Tests shorten it; people get the half-minute the queue was designed around.
    return int(getattr(settings, "QUEUE_REFRESH_SECONDS", 30))


class ActionContext:
    """What the pages need to show who may do what, without a query per row."""

    def __init__(self, user):
        self.user = user
        self.queue_ids = actions.workable_queue_ids(user)
        self.permissions = user.get_all_permissions()

    def actions_for(self, exception):
        return actions.available_actions(exception, self.user, queue_ids=self.queue_ids, permissions=self.permissions)


def _row(exception, ctx: ActionContext, *, tab: str, error: str = "", failed: str = "", data=None) -> dict:
    available = {a.code: a for a in ctx.actions_for(exception)}
    members = list(exception.queue.members.all())
    return {
        "exception": exception,
        "tab": tab,
        "actions": available,
        "error": error,
        "failed": failed,
        "assign_form": actions.action_form("assign", exception, data if failed == "assign" else None, members=members)
        if "assign" in available
        else None,
        "resolve_form": actions.action_form("resolve", exception, data if failed == "resolve" else None)
        if "resolve" in available
        else None,
    }


@role_required()
@require_GET
@vary_on_headers("HX-Request")
def queue_page(request):
    tab = request.GET.get("tab") if request.GET.get("tab") in selectors.TABS else "mine"
    ctx = ActionContext(request.user)
    counts = selectors.tab_counts(user=request.user, queue_ids=ctx.queue_ids)
    filterset = selectors.exception_list(user=request.user, tab=tab, queue_ids=ctx.queue_ids, params=request.GET)
    page = Paginator(filterset.qs, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "tab": tab,
        "tabs": selectors.TABS,
        "counts": counts,
        "filter": filterset,
        "page": page,
        "rows": [_row(e, ctx, tab=tab) for e in page.object_list],
        "query": query.urlencode(),
        "tab_query": {k: v for k, v in request.GET.items() if k not in ("tab", "page")},
        "refresh_seconds": refresh_seconds(),
        "loaded_at": timezone.now(),
        "away": selectors.is_away(request.user),
    }
    template = "exceptions/queue.html#results" if request.htmx and request.htmx.target == "results" else "exceptions/queue.html"
    return render(request, template, context)


def _detail_context(request, exception, *, error: str = "", failed: str = "", data=None) -> dict:
    ctx = ActionContext(request.user)
    forms = []
    for action in ctx.actions_for(exception):
        bound = data if action.code == failed else None
        forms.append((action, actions.action_form(action.code, exception, bound)))
    return {
        "exception": exception,
        "timeline": selectors.timeline(exception=exception),
        "stock": selectors.stock_grid(exception),
        "lines": list(exception.order.lines.select_related("sku")) if exception.order_id else [],
        "shipments": list(exception.order.shipments.select_related("location")) if exception.order_id else [],
        "action_forms": forms,
        "may_work": actions.may_work(request.user, exception.queue_id, ctx.queue_ids),
        "error": error,
        "failed": failed,
    }


def _get_or_404(pk: int) -> FulfillmentException:
    try:
        return selectors.exception_get(pk)
    except FulfillmentException.DoesNotExist:
        raise Http404("No such exception.") from None


@role_required()
@require_GET
@vary_on_headers("HX-Request")
def exception_detail(request, pk: int):
    exception = _get_or_404(pk)
    template = "exceptions/detail.html#body" if request.htmx and request.htmx.target == "detail" else "exceptions/detail.html"
    return render(request, template, _detail_context(request, exception))


def _list_params(request) -> QueryDict:
    """The filters of the list the action came from: the address htmx reports, which the filter form and
    the pager keep up to date (both push their query into it)."""
    current = request.htmx.current_url if request.htmx else None
    return QueryDict(urlsplit(current).query if current else "")


def _with_counts(response, request, *, tab: str, queue_ids):
    """Tell the page its new totals with the answer, so the badges and the pager follow the action."""
    filterset = selectors.exception_list(user=request.user, tab=tab, queue_ids=queue_ids, params=_list_params(request))
    total = filterset.qs.count()
    counters = {"open": total, "pages": max(1, -(-total // PAGE_SIZE))}
    tabs = selectors.tab_counts(user=request.user, queue_ids=queue_ids)
    return trigger_client_event(response, COUNTS_CHANGED, {"tabs": tabs, "counters": counters})


@role_required()
@require_POST
def exception_action(request, pk: int, code: str):
    """Run one action. From the queue (`tab` posted) answer with the row, or nothing when it left
    the list; from the detail page answer with the page body; plain posts redirect."""
    tab = request.POST.get("tab", "")
    from_queue = tab in selectors.TABS
    try:
        result = actions.action_perform(code=code, exception_id=pk, user=request.user, data=request.POST)
    except DomainError as error:
        exception = _get_or_404(pk)
        if request.htmx and from_queue:
            ctx = ActionContext(request.user)
            context = _row(exception, ctx, tab=tab, error=error.message, failed=code, data=request.POST)
            response = render(request, "exceptions/queue.html#row", context, status=error.http_status)
            # Refused because someone else got there first: the totals may have moved all the same.
            return _with_counts(response, request, tab=tab, queue_ids=ctx.queue_ids)
        context = _detail_context(request, exception, error=error.message, failed=code, data=request.POST)
        template = "exceptions/detail.html#body" if request.htmx else "exceptions/detail.html"
        return render(request, template, context, status=error.http_status)

    exception = _get_or_404(pk)
    done = result.message or f"{actions.get(code).label}: done."
    if request.htmx and from_queue:
        ctx = ActionContext(request.user)
        if selectors.exception_in_tab(exception, tab=tab, user=request.user, queue_ids=ctx.queue_ids):
            response = render(request, "exceptions/queue.html#row", _row(exception, ctx, tab=tab))
        else:
            response = HttpResponse("")  # the row leaves this list
        response = _with_counts(response, request, tab=tab, queue_ids=ctx.queue_ids)
        return trigger_client_event(response, CHANGED, {"id": exception.pk, "action": code})
    if request.htmx:
        response = render(request, "exceptions/detail.html#body", {**_detail_context(request, exception), "done": done})
        return trigger_client_event(response, CHANGED, {"id": exception.pk, "action": code})
    messages.success(request, done)
    return redirect("exception-detail", pk=pk)


@role_required()
@require_POST
def presence_update(request):
    """Mark oneself away (automatic assignment passes one by) or back."""
    choice = request.POST.get("away")
    if choice not in ("0", "1"):
        return HttpResponseBadRequest("Say away=1 or away=0.")
    presence = services.presence_set(user=request.user, away=choice == "1")
    if request.htmx:
        return render(request, "exceptions/queue.html#presence", {"away": presence.away})
    messages.success(request, "You are marked away." if presence.away else "You are back.")
    return redirect("queues")
