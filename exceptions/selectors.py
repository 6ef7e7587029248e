"""Reads for the coordinator's pages."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Prefetch, Q

from core.listing import Sort, Sorts
from inventory.models import StockLevel

from .filters import ExceptionFilter
from .models import OPEN_STATUSES, FulfillmentException, Presence, RootCause, SavedView

TABS = {"mine": "Mine", "team": "My teams", "unassigned": "Unassigned"}


def _open_in_tab(tab: str, user, queue_ids: set[int] | None) -> Q:
    return Q(status__in=OPEN_STATUSES) & _in_tab(tab, user, queue_ids)


def _in_tab(tab: str, user, queue_ids: set[int] | None) -> Q:
    if tab == "mine":
        return Q(owner=user)
    in_my_queues = Q() if queue_ids is None else Q(queue_id__in=queue_ids)
    if tab == "unassigned":
        return in_my_queues & Q(owner__isnull=True)
    return in_my_queues


def exception_in_tab(exception: FulfillmentException, *, tab: str, user, queue_ids: set[int] | None) -> bool:
    return FulfillmentException.objects.filter(_open_in_tab(tab, user, queue_ids), pk=exception.pk).exists()


SORTS = Sorts(
    {
        "due": Sort("SLA due", (("due_at", True), ("id", True))),
        "priority": Sort("Priority", (("priority", True), ("due_at", True), ("id", True))),
        "age": Sort("Age", (("created_at", True), ("id", True))),  # oldest first
        "type": Sort("Type", (("type__name", True), ("due_at", True), ("id", True))),
        "value": Sort("Order value", (("order__total_amount", False), ("due_at", True), ("id", True))),
    },
    default="due",
)
# Pages go this far into a list and counts stop here: past it, a filter finds work faster than paging does, and
# no count or OFFSET has to walk the whole history.
ROW_LIMIT = 1000


def exception_list(*, user, tab: str, queue_ids: set[int] | None, params) -> ExceptionFilter:
    """The exceptions of a tab (open ones unless `params` ask for closed ones too), filtered and searched by `params`
    and sorted by its `sort`; `.qs` holds the rows."""
    members = get_user_model().objects.filter(is_active=True).order_by("username")
    queryset = (
        FulfillmentException.objects.filter(_in_tab(tab, user, queue_ids))
        .select_related("type", "queue", "owner", "order", "order__partner", "location", "sla_policy", "line")
        .prefetch_related(Prefetch("queue__members", queryset=members))
        .order_by(*SORTS.order_by(params))
    )
    return ExceptionFilter(params, queryset=queryset)


def bounded_count(queryset) -> int:
    """The number of rows, counted no further than `ROW_LIMIT`."""
    return queryset.order_by().values("pk")[:ROW_LIMIT].count()


def tab_counts(*, user, queue_ids: set[int] | None) -> dict[str, int]:
    """Every tab's count, each no further than `ROW_LIMIT`, in one query."""
    limit = ROW_LIMIT
    parts, params = [], []
    for index, tab in enumerate(TABS):
        rows = FulfillmentException.objects.filter(_open_in_tab(tab, user, queue_ids)).order_by().values("pk")[:limit]
        sql, tab_params = rows.query.sql_with_params()
        parts.append(f"(SELECT COUNT(*) FROM ({sql}) AS tab_{index})")
        params.extend(tab_params)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(parts)}", params)
        return dict(zip(TABS, cursor.fetchone(), strict=True))


def root_causes() -> list[str]:
    return list(RootCause.objects.filter(active=True).values_list("name", flat=True))


def saved_views(user) -> list[SavedView]:
    return list(SavedView.objects.filter(user=user).order_by("name"))


def is_away(user) -> bool:
    return Presence.objects.filter(user=user, away=True).exists()


def exception_get(pk: int) -> FulfillmentException:
    return (
        FulfillmentException.objects.select_related(
            "type",
            "queue",
            "owner",
            "order",
            "order__partner",
            "line",
            "shipment",
            "shipment__location",
            "location",
            "sku",
            "sla_policy",
            "sla_policy__escalation_queue",
        )
        .prefetch_related("queue__members")
        .get(pk=pk)
    )


@dataclass(frozen=True)
class StockGrid:
    locations: list
    rows: list  # (sku, [StockLevel or None per location])


def stock_grid(exception: FulfillmentException) -> StockGrid:
    """Stock of the SKUs in question at every active location, one row per SKU: where else could it come from?"""
    if exception.sku_id:
        sku_ids = [exception.sku_id]
    elif exception.line_id and exception.line.sku_id:
        sku_ids = [exception.line.sku_id]
    elif exception.order_id:
        sku_ids = list(exception.order.lines.filter(sku__isnull=False).values_list("sku_id", flat=True))
    else:
        sku_ids = []
    levels = list(
        StockLevel.objects.filter(sku_id__in=sku_ids, location__active=True)
        .select_related("location", "sku")
        .order_by("sku__code", "location__code")
    )
    locations = sorted({level.location for level in levels}, key=lambda location: location.code)
    by_sku: dict = {}
    for level in levels:
        by_sku.setdefault(level.sku, {})[level.location_id] = level
    rows = [(sku, [cells.get(location.pk) for location in locations]) for sku, cells in by_sku.items()]
    return StockGrid(locations, rows)
