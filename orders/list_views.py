"""The orders list and the header's search box. Reads only; every view is a GET whose URL can be shared."""

from __future__ import annotations

from urllib.parse import urlencode

from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from core import listing
from core.auth import role_required
from exceptions.models import FulfillmentException

from . import search as order_search


@role_required()
@require_GET
@vary_on_headers("HX-Request")
def order_list(request):
    filterset = order_search.order_list(request.GET)
    size = listing.page_size_of(request.GET, default=order_search.DEFAULT_PAGE_SIZE)
    page = Paginator(filterset.qs, size).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    sort_key, flipped = order_search.SORTS.of(request.GET)
    asked_sort = (request.GET.get("sort") or "").strip()
    context = {
        "filter": filterset,
        "page": page,
        "query": query.urlencode(),
        "sorts": order_search.SORTS.links(query),
        "sort_param": "" if (sort_key, flipped) == (order_search.SORTS.default, False) else f"{'-' if flipped else ''}{sort_key}",
        "unknown_sort": asked_sort if asked_sort and asked_sort.removeprefix("-") not in order_search.SORTS.columns else "",
        "page_size": size,
        "page_sizes": listing.PAGE_SIZES,
        "searched": filterset.searched,
        "narrowed": any(request.GET.get(name) for name in filterset.filters),
    }
    template = "orders/list.html#results" if request.htmx and request.htmx.target == "results" else "orders/list.html"
    return render(request, template, context)


@role_required()
@require_GET
def search(request):
    """Straight to the exception or the order the term names; otherwise to the orders it matches."""
    term = (request.GET.get("q") or "").strip()
    if not term:
        return redirect("orders")
    found = order_search.search_resolve(term)
    if isinstance(found, FulfillmentException):
        return redirect("exception-detail", pk=found.pk)
    if found is not None:
        return redirect("order-detail", pk=found.pk)
    return redirect(f"{reverse('orders')}?{urlencode({'q': term})}")
