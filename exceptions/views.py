"""The coordinator's pages: the queue and one exception. Thin: reads come from
selectors, every change goes through `actions.action_perform`."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, HttpResponseBadRequest, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import trigger_client_event

from core import listing
from core.auth import role_required
from core.errors import DomainError
from core.priority import Priority

from . import actions, selectors, services
from .models import FulfillmentException
from .timeline import timeline

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

    @cached_property
    def root_causes(self) -> list[str]:
        return selectors.root_causes()

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
        "root_causes": ctx.root_causes if "resolve" in available else [],
    }


class BoundedPaginator(Paginator):
    """Pages over the first `selectors.ROW_LIMIT` rows; the count comes from `count_of` (a tab's count when the
    list is the whole tab) or a count that stops at the limit."""

    def __init__(self, queryset, per_page: int, *, count: int | None = None):
        super().__init__(queryset[: selectors.ROW_LIMIT], per_page)
        self._known_count = count
        self._queryset = queryset

    @cached_property
    def count(self) -> int:
        if self._known_count is not None:
            return min(self._known_count, selectors.ROW_LIMIT)
        return selectors.bounded_count(self._queryset)

    def page(self, number):
        """The page's ids first, sorted on the sort's columns alone, then its rows with everything they show: a sort
        by a joined column (order value, type) then orders narrow rows in memory instead of wide ones on disk."""
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        top = min(bottom + self.per_page, self.count)
        ids = list(self._queryset.values_list("pk", flat=True)[bottom:top])
        rows = {row.pk: row for row in self._queryset.order_by().filter(pk__in=ids)}
        return self._get_page([rows[pk] for pk in ids if pk in rows], number, self)


def _queue_context(request, *, params: QueryDict, tab: str, ctx: ActionContext, report=None) -> dict:
    counts = selectors.tab_counts(user=request.user, queue_ids=ctx.queue_ids)
    filterset = selectors.exception_list(user=request.user, tab=tab, queue_ids=ctx.queue_ids, params=params)
    size = listing.page_size_of(params)
    paginator = BoundedPaginator(filterset.qs, size, count=None if filterset.narrowed else counts[tab])
    page = paginator.get_page(params.get("page"))
    query = params.copy()
    query.pop("page", None)
    refused = {outcome.exception_id: outcome.message for outcome in (report.refused if report else [])}
    rows = [_row(e, ctx, tab=tab, error=refused.get(e.pk, "")) for e in page.object_list]
    sort_key, _ = selectors.SORTS.of(params)
    return {
        "tab": tab,
        "tabs": [
            {"key": key, "label": label, "count": counts[key], "url": "?" + listing.query_with(query, tab=key, page=None)}
            for key, label in selectors.TABS.items()
        ],
        "counts": counts,
        "row_limit": selectors.ROW_LIMIT,
        "filter": filterset,
        "page": page,
        "rows": rows,
        "query": query.urlencode(),
        "sorts": selectors.SORTS.links(query),
        "sort": sort_key,
        "page_size": size,
        "page_sizes": listing.PAGE_SIZES,
        "bulk_actions": [actions.get(code) for code in actions.BULK_ACTIONS],
        "bulk_limit": actions.BULK_LIMIT,
        "priorities": Priority.choices,
        "root_causes": ctx.root_causes,
        "members": _assignable_people(page.object_list),
        "report": report,
        "saved_views": selectors.saved_views(request.user),
        "refresh_seconds": refresh_seconds(),
        "loaded_at": timezone.now(),
        "away": selectors.is_away(request.user),
    }


def _assignable_people(exceptions) -> list:
    # The members of the queues on the page, already prefetched with the rows.
    people = {member.pk: member for exception in exceptions for member in exception.queue.members.all()}
    return sorted(people.values(), key=lambda member: member.get_username())


def _tab_of(params) -> str:
    return params.get("tab") if params.get("tab") in selectors.TABS else "mine"


@role_required()
@require_GET
@vary_on_headers("HX-Request")
def queue_page(request):
    tab = _tab_of(request.GET)
    context = _queue_context(request, params=request.GET, tab=tab, ctx=ActionContext(request.user))
    template = "exceptions/queue.html#results" if request.htmx and request.htmx.target == "results" else "exceptions/queue.html"
    return render(request, template, context)


@dataclass(frozen=True)
class BulkReport:
    label: str
    done: list
    refused: list  # BulkOutcome
    names: dict  # the refused exceptions' type names, for the summary

    @property
    def total(self) -> int:
        return len(self.done) + len(self.refused)


@role_required()
@require_POST
def queue_bulk(request):
    """One action on the selected exceptions, or on all that match the list's filters; each one is done wholly or
    refused with its reason, shown in its row and in the summary."""
    params = QueryDict(request.POST.get("list_query", ""))
    tab = _tab_of(params)
    ctx = ActionContext(request.user)
    code = request.POST.get("action", "")
    if request.POST.get("all_matching") == "1":
        filterset = selectors.exception_list(user=request.user, tab=tab, queue_ids=ctx.queue_ids, params=params)
        ids = list(filterset.qs.values_list("pk", flat=True)[: actions.BULK_LIMIT + 1])
    else:
        ids = [int(value) for value in request.POST.getlist("ids") if value.isdigit()]
    try:
        outcomes = actions.action_perform_many(code=code, exception_ids=ids, user=request.user, data=request.POST)
    except DomainError as error:
        context = _queue_context(request, params=params, tab=tab, ctx=ctx)
        context["bulk_error"] = error.message
        response = render(request, "exceptions/queue.html#results", context, status=error.http_status)
        return response if request.htmx else HttpResponseBadRequest(error.message)
    refused = [outcome for outcome in outcomes if not outcome.done]
    names = dict(FulfillmentException.objects.filter(pk__in=[o.exception_id for o in refused]).values_list("pk", "type__name"))
    report = BulkReport(actions.get(code).label, [o for o in outcomes if o.done], refused, names)
    if not request.htmx:
        messages.success(request, f"{report.label}: {len(report.done)} of {len(outcomes)} done.")
        for outcome in refused:
            messages.error(request, f"#{outcome.exception_id}: {outcome.message}")
        return redirect(f"{reverse('queues')}?{params.urlencode()}")
    context = _queue_context(request, params=params, tab=tab, ctx=ctx, report=report)
    response = render(request, "exceptions/queue.html#results", context)
    # The list just rendered holds the new totals: the badges and counters read them rather than count again.
    response = _counts_changed(
        response, tabs=context["counts"], total=context["page"].paginator.count, page_size=context["page_size"]
    )
    return trigger_client_event(response, CHANGED, {"ids": [o.exception_id for o in report.done], "action": code})


@role_required()
@require_POST
def saved_view_create(request):
    query = QueryDict(request.POST.get("list_query", ""))
    try:
        view = services.saved_view_save(user=request.user, name=request.POST.get("name", ""), query=query)
    except DomainError as error:
        messages.error(request, error.message)
        return redirect(f"{reverse('queues')}?{query.urlencode()}")
    messages.success(request, f"Saved the view “{view.name}”.")
    return redirect(f"{reverse('queues')}?{view.query}")


@role_required()
@require_POST
def saved_view_remove(request, pk: int):
    try:
        services.saved_view_delete(user=request.user, view_id=pk)
    except DomainError as error:
        raise Http404(error.message) from None
    messages.success(request, "The saved view is gone.")
    return redirect("queues")


def _detail_context(request, exception, *, error: str = "", failed: str = "", data=None) -> dict:
    ctx = ActionContext(request.user)
    forms = []
    for action in ctx.actions_for(exception):
        bound = data if action.code == failed else None
        forms.append((action, actions.action_form(action.code, exception, bound)))
    return {
        "exception": exception,
        "timeline": timeline(exception=exception),
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
    params = _list_params(request)
    filterset = selectors.exception_list(user=request.user, tab=tab, queue_ids=queue_ids, params=params)
    tabs = selectors.tab_counts(user=request.user, queue_ids=queue_ids)
    total = selectors.bounded_count(filterset.qs) if filterset.narrowed else tabs[tab]
    return _counts_changed(response, tabs=tabs, total=total, page_size=listing.page_size_of(params))


def _counts_changed(response, *, tabs: dict[str, int], total: int, page_size: int):
    shown = f"{selectors.ROW_LIMIT}+" if total >= selectors.ROW_LIMIT else total
    counters = {"open": shown, "pages": max(1, -(-min(total, selectors.ROW_LIMIT) // page_size))}
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
