"""Stock pages: every level with its open suggestion, one level with its on-hand chart, and the replenishment
suggestions with what a buyer does with them. Thin: reads come from selectors, changes go through the
replenishment services."""

from __future__ import annotations

import math
from datetime import date
from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import trigger_client_event

from core.actors import Actor
from core.errors import DomainError, Forbidden, InvalidInput

from . import replenishment, selectors
from .errors import InventoryError
from .forms import DismissForm, QuantityForm, StockFilterForm, SuggestionFilterForm
from .models import ReplenishmentSuggestion, StockLevel

PAGE_SIZE = 50
HISTORY_DAYS = 60
VIEW_STOCK = "inventory.view_stocklevel"
CHANGE_SUGGESTION = "inventory.change_replenishmentsuggestion"
CHANGED = "replenishment-changed"
NOT_ALLOWED = "Your role may not act on replenishment suggestions."


def permission_required(permission: str):
    """Signed in (else redirect to sign-in) and holding `permission` (else 403)."""

    def decorator(view):
        @login_required
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if not request.user.has_perm(permission):
                raise PermissionDenied("Your role does not open this page.")
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def _page(request, queryset):
    page = Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return page, query.urlencode()


def _results_only(request) -> bool:
    return bool(request.htmx) and request.htmx.target == "results"


@permission_required(VIEW_STOCK)
@require_GET
@vary_on_headers("HX-Request")
def stock_list(request):
    form = StockFilterForm(request.GET)
    form.is_valid()  # a filter that does not parse is left out and shows its error
    wanted = form.cleaned_data
    levels = selectors.stock_level_list(
        location=wanted.get("location"),
        at_or_below_reorder=bool(wanted.get("low")),
        with_open_suggestion=bool(wanted.get("open")),
        search=wanted.get("q") or "",
    )
    page, query = _page(request, levels)
    context = {"form": form, "page": page, "query": query}
    template = "inventory/stock.html#results" if _results_only(request) else "inventory/stock.html"
    return render(request, template, context)


@permission_required(VIEW_STOCK)
@require_GET
def level_detail(request, location_code: str, sku_code: str):
    try:
        level = selectors.stock_level_get(location_code=location_code, sku_code=sku_code)
    except StockLevel.DoesNotExist:
        raise Http404("No stock of this SKU is kept at this location.") from None
    history = selectors.on_hand_history(level, days=HISTORY_DAYS)
    return render(
        request,
        "inventory/level.html",
        {
            "level": level,
            "chart": on_hand_chart(history, reorder_point=level.reorder_point, safety_stock=level.safety_stock),
            "suggestions": selectors.level_suggestions(level),
            "movements": selectors.level_movements(level),
        },
    )


# --- the chart -----------------------------------------------------------------------------------------

WIDTH, HEIGHT = 760, 250
LEFT, RIGHT, TOP, BOTTOM = 46, 44, 30, 26


def _nice_step(rough: float) -> int:
    """1, 2 or 5 times a power of ten, at least `rough`: ticks people read without arithmetic."""
    if rough <= 1:
        return 1
    power = 10 ** math.floor(math.log10(rough))
    return next(step * power for step in (1, 2, 5, 10) if step * power >= rough)


def on_hand_chart(history: list[tuple[date, int]], *, reorder_point: int, safety_stock: int) -> dict:
    """The geometry of the on-hand chart: a polyline of the daily closings and horizontal lines at the
    reorder point and the safety stock, on a scale starting at zero."""
    values = [value for _, value in history]
    # Zero at the bottom, unless a ledger that disagrees with the counters took the line below it.
    low, high = min(0, *values), max(1, *values, reorder_point, safety_stock)
    step = _nice_step((high - low) / 4)
    floor = math.floor(low / step) * step
    ceiling = floor + step * math.ceil((high - floor) / step)
    plot_width, plot_height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    last = max(1, len(history) - 1)

    def x(index: int) -> float:
        return round(LEFT + plot_width * index / last, 1)

    def y(value: float) -> float:
        return round(TOP + plot_height * (ceiling - value) / (ceiling - floor), 1)

    points = [(x(index), y(value)) for index, value in enumerate(values)]
    # Dates every ten days counted back from today, so today is always labelled.
    x_ticks = [{"x": x(index), "label": history[index][0].strftime("%d %b")} for index in range(last, -1, -10)][::-1]
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "left": LEFT,
        "right": WIDTH - RIGHT,
        "top": TOP,
        "bottom": HEIGHT - BOTTOM,
        "points": " ".join(f"{px},{py}" for px, py in points),
        "today": {"x": points[-1][0], "y": points[-1][1], "value": values[-1]},
        "days": history,
        "floor": floor,
        "ceiling": ceiling,
        "y_ticks": [{"y": y(value), "label": value} for value in range(floor, ceiling + 1, step)],
        "x_ticks": x_ticks,
        "reorder": {"y": y(reorder_point), "value": reorder_point},
        "safety": {"y": y(safety_stock), "value": safety_stock},
        "first": {"day": history[0][0], "value": values[0]},
        "lowest": min(values),
        "highest": max(values),
    }


# --- replenishment -------------------------------------------------------------------------------------


@permission_required(VIEW_STOCK)
@require_GET
@vary_on_headers("HX-Request")
def suggestion_list(request):
    form = SuggestionFilterForm(request.GET)
    form.is_valid()
    wanted = form.cleaned_data
    suggestions = selectors.suggestion_list(
        status=wanted.get("status") or selectors.OPEN, location=wanted.get("location"), search=wanted.get("q") or ""
    )
    page, query = _page(request, suggestions)
    context = {"form": form, "page": page, "query": query, "may_act": request.user.has_perm(CHANGE_SUGGESTION)}
    template = "inventory/replenishment.html#results" if _results_only(request) else "inventory/replenishment.html"
    return render(request, template, context)


def _units(suggestion: ReplenishmentSuggestion, quantity: int) -> str:
    return f"{quantity} × {suggestion.sku.code} at {suggestion.location.code}"


def _quantity(data) -> tuple[int, str]:
    form = QuantityForm(data)
    if not form.is_valid():
        field, errors = next(iter(form.errors.items()))
        raise InvalidInput(InventoryError.INVALID_QUANTITY, errors[0], fields={field: errors})
    return form.cleaned_data["quantity"], form.cleaned_data["reference"]


def _perform(action: str, suggestion: ReplenishmentSuggestion, data, actor: Actor) -> str:
    """Run one action through its service and say what it did; a refusal raises DomainError."""
    if action == "approve":
        replenishment.suggestion_approve(suggestion=suggestion.pk, actor=actor)
        return f"Approved: {_units(suggestion, suggestion.quantity)}."
    if action == "order":
        quantity, reference = _quantity(data)
        replenishment.suggestion_mark_ordered(suggestion=suggestion.pk, quantity=quantity, reference=reference, actor=actor)
        return f"On order: {_units(suggestion, quantity)}{f' ({reference})' if reference else ''}."
    if action == "receive":
        quantity, reference = _quantity(data)
        replenishment.suggestion_receive(suggestion=suggestion.pk, quantity=quantity, reference=reference, actor=actor)
        return f"Received into stock: {_units(suggestion, quantity)}."
    form = DismissForm(data)
    if not form.is_valid():
        raise InvalidInput(InventoryError.INVALID_QUANTITY, form.errors["reason"][0], fields=form.errors)
    replenishment.suggestion_dismiss(suggestion=suggestion.pk, reason=form.cleaned_data["reason"], actor=actor)
    return f"Dismissed: {_units(suggestion, suggestion.quantity)}."


ACTIONS = ("approve", "order", "receive", "dismiss")


@login_required
@require_POST
def suggestion_action(request, pk: int, action: str):
    """Approve, mark ordered, receive or dismiss one suggestion. htmx gets the row back with what happened
    (or why not); a plain post is redirected to the list it came from with a message."""
    if action not in ACTIONS:
        raise Http404("No such action.")
    try:
        suggestion = selectors.suggestion_get(pk)
    except ReplenishmentSuggestion.DoesNotExist:
        raise Http404("No such suggestion.") from None
    query = QueryDict(request.POST.get("query", "")).urlencode()
    back = f"{reverse('replenishment')}?{query}" if query else reverse("replenishment")
    try:
        if not request.user.has_perm(CHANGE_SUGGESTION):
            if not (request.htmx and request.user.has_perm(VIEW_STOCK)):
                raise PermissionDenied(NOT_ALLOWED)
            raise Forbidden("forbidden", NOT_ALLOWED)
        done = _perform(action, suggestion, request.POST, Actor.for_user(request.user))
    except DomainError as error:
        if not request.htmx:
            messages.error(request, error.message)
            return redirect(back)
        context = {"suggestion": suggestion, "error": error.message, "failed": action, "data": request.POST}
        return render(request, "inventory/replenishment.html#row", _row_context(request, context), status=error.http_status)
    if not request.htmx:
        messages.success(request, done)
        return redirect(back)
    suggestion = selectors.suggestion_get(pk)
    response = render(
        request, "inventory/replenishment.html#row", _row_context(request, {"suggestion": suggestion, "done": done})
    )
    return trigger_client_event(response, CHANGED, {"id": suggestion.pk, "action": action})


def _row_context(request, context: dict) -> dict:
    return {"may_act": request.user.has_perm(CHANGE_SUGGESTION), "query": request.POST.get("query", ""), **context}
