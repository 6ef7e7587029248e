"""The cross-system and messages panels on the order and exception pages, which may not import this app."""

from __future__ import annotations

from django.template.loader import render_to_string

from core import panels
from orders.models import Order

from . import crosscheck, selectors

TEMPLATE = "integrations/_messages.html"


def _pk(value) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    return int(value) if isinstance(value, str) and value.isdigit() else None


def _render(request, order, messages, *, highlight_event=None, highlight_delivery=None) -> str:
    return render_to_string(
        TEMPLATE,
        {
            "order": order,
            "messages": messages,
            "limit": selectors.MESSAGES_LIMIT,
            "highlight_event": highlight_event,
            "highlight_delivery": highlight_delivery,
        },
        request=request,
    )


def order_panel(request, order) -> str:
    return _render(request, order, selectors.messages_for_order(order.pk))


def exception_panel(request, exception) -> str | None:
    """The order's messages, with the one the exception is about (its detail names it) marked."""
    detail = exception.detail if isinstance(exception.detail, dict) else {}
    event_id, delivery_id = _pk(detail.get("inbound_event")), _pk(detail.get("delivery"))
    if not exception.order_id and event_id is None and delivery_id is None:
        return None
    messages = selectors.messages_for_order(exception.order_id, inbound_event_id=event_id, delivery_id=delivery_id)
    return _render(request, exception.order, messages, highlight_event=event_id, highlight_delivery=delivery_id)


def drift_panel(request, exception) -> str | None:
    """An inventory_drift's three figures side by side: ours now, the WMS's count, the storefront's last."""
    if exception.type.code != "inventory_drift" or not (exception.location_id and exception.sku_id):
        return None
    return render_to_string("integrations/_drift.html", {"views": selectors.stock_views(exception)}, request=request)


def cross_system_panel(request, obj) -> str | None:
    """What the storefront, ERP and WMS last said about the order next to what we say; for an exception, its order's."""
    order = obj if isinstance(obj, Order) else getattr(obj, "order", None)
    if not isinstance(order, Order):
        return None
    return render_to_string("integrations/_cross_system.html", {"check": crosscheck.cross_check(order)}, request=request)


def register_panels() -> None:
    # Above the messages list: the disagreements first, the rows they come from below.
    panels.register("order", cross_system_panel)
    panels.register("order", order_panel)
    panels.register("exception", drift_panel)
    panels.register("exception", cross_system_panel)
    panels.register("exception", exception_panel)
