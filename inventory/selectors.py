from __future__ import annotations

from datetime import date, datetime, time, timedelta

from django.db.models import Exists, F, IntegerField, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from .models import OPEN_SUGGESTION_STATUSES, Location, ReplenishmentSuggestion, StockLevel, StockMovement


def _ledger_sum(column: str) -> Coalesce:
    per_level = (
        StockMovement.objects.filter(location_id=OuterRef("location_id"), sku_id=OuterRef("sku_id"))
        .order_by()
        .values("location_id", "sku_id")
        .annotate(total=Sum(column))
        .values("total")
    )
    return Coalesce(Subquery(per_level, output_field=IntegerField()), Value(0))


def stock_levels_with_ledger_sums() -> QuerySet[StockLevel]:
    return StockLevel.objects.annotate(
        ledger_on_hand=_ledger_sum("on_hand_delta"),
        ledger_reserved=_ledger_sum("reserved_delta"),
        ledger_picked=_ledger_sum("picked_delta"),
    )


def stock_ledger_mismatches() -> list[StockLevel]:
    """Stock levels whose counters differ from the sum of their ledger (should be none)."""
    return [
        level
        for level in stock_levels_with_ledger_sums().select_related("location", "sku")
        if (level.on_hand, level.reserved, level.picked) != (level.ledger_on_hand, level.ledger_reserved, level.ledger_picked)
    ]


def availability(sku_codes: list[str]) -> list[dict]:
    """Available to promise per location and in total, for each SKU code asked for.

    Unknown and inactive SKUs show as unknown with nothing available: an order for one is held
    (unknown_sku), so nothing of it is promised.
    """
    from .models import Sku

    skus = {sku.code: sku for sku in Sku.objects.filter(code__in=sku_codes, active=True)}
    levels = (
        StockLevel.objects.filter(sku__code__in=sku_codes, sku__active=True, location__active=True)
        .select_related("location", "sku")
        .order_by("location__code")
    )
    by_sku: dict[str, list] = {code: [] for code in sku_codes}
    for level in levels:
        by_sku[level.sku.code].append(
            {"location": level.location.code, "on_hand": level.on_hand, "reserved": level.reserved, "available": level.available}
        )
    return [
        {"sku": code, "known": code in skus, "available": sum(max(0, row["available"]) for row in rows), "locations": rows}
        for code, rows in by_sku.items()
    ]


# --- the stock and replenishment pages --------------------------------------------------------------------


def _open_suggestion_of_level() -> QuerySet[ReplenishmentSuggestion]:
    # At most one is open per level (a partial unique index), so [:1] picks it rather than one of several.
    return ReplenishmentSuggestion.objects.filter(
        location_id=OuterRef("location_id"), sku_id=OuterRef("sku_id"), status__in=OPEN_SUGGESTION_STATUSES
    ).order_by()


def stock_level_list(
    *, location: Location | None = None, at_or_below_reorder: bool = False, with_open_suggestion: bool = False, search: str = ""
) -> QuerySet[StockLevel]:
    """Stock levels with their location, SKU and open suggestion (`open_suggestion_id`, `_status`, `_quantity`,
    `_ordered`) in one query, whatever the number of rows."""
    open_suggestion = _open_suggestion_of_level()
    levels = StockLevel.objects.select_related("location", "sku").annotate(
        open_suggestion_id=Subquery(open_suggestion.values("pk")[:1]),
        open_suggestion_status=Subquery(open_suggestion.values("status")[:1]),
        open_suggestion_quantity=Subquery(open_suggestion.values("quantity")[:1]),
        open_suggestion_ordered=Subquery(open_suggestion.values("quantity_ordered")[:1]),
    )
    if location is not None:
        levels = levels.filter(location=location)
    if at_or_below_reorder:
        # Available, not on hand: reserved units are promised already and will not cover new demand.
        levels = levels.filter(on_hand__lte=F("reserved") + F("reorder_point"))
    if with_open_suggestion:
        levels = levels.filter(Exists(open_suggestion))
    if search := search.strip():
        levels = levels.filter(Q(sku__code__icontains=search) | Q(sku__name__icontains=search))
    return levels.order_by("location__code", "sku__code")


def stock_level_get(*, location_code: str, sku_code: str) -> StockLevel:
    return StockLevel.objects.select_related("location", "sku").get(location__code=location_code, sku__code=sku_code)


def on_hand_history(level: StockLevel, *, days: int = 60, today: date | None = None) -> list[tuple[date, int]]:
    """On hand at the close of each of the last `days` days (oldest first; today's is the figure now), from the
    ledger in one query: today's on hand minus what every later day added."""
    today = today or timezone.localdate()
    first = today - timedelta(days=days - 1)
    since = datetime.combine(first, time.min, tzinfo=timezone.get_current_timezone())
    added = dict(
        StockMovement.objects.filter(location_id=level.location_id, sku_id=level.sku_id, at__gte=since)
        .annotate(day=TruncDate("at"))
        .order_by()
        .values("day")
        .annotate(delta=Sum("on_hand_delta"))
        .values_list("day", "delta")
    )
    closing, history = level.on_hand, []
    for back in range(days):
        day = today - timedelta(days=back)
        history.append((day, closing))
        closing -= added.get(day, 0)
    history.reverse()
    return history


def level_suggestions(level: StockLevel) -> QuerySet[ReplenishmentSuggestion]:
    """The suggestions of one stock level, newest first, with their events."""
    return (
        ReplenishmentSuggestion.objects.filter(location_id=level.location_id, sku_id=level.sku_id)
        .prefetch_related("events")
        .order_by("-created_at", "-id")
    )


def level_movements(level: StockLevel, *, limit: int = 20) -> list[StockMovement]:
    return list(StockMovement.objects.filter(location_id=level.location_id, sku_id=level.sku_id).order_by("-at", "-id")[:limit])


OPEN = "open"
ALL = "all"


def suggestion_list(
    *, status: str = OPEN, location: Location | None = None, search: str = ""
) -> QuerySet[ReplenishmentSuggestion]:
    """Suggestions newest first: the open ones, those of one status, or all (`ALL`)."""
    suggestions = ReplenishmentSuggestion.objects.select_related("location", "sku")
    if status == OPEN:
        suggestions = suggestions.filter(status__in=OPEN_SUGGESTION_STATUSES)
    elif status != ALL:
        suggestions = suggestions.filter(status=status)
    if location is not None:
        suggestions = suggestions.filter(location=location)
    if search := search.strip():
        suggestions = suggestions.filter(Q(sku__code__icontains=search) | Q(sku__name__icontains=search))
    return suggestions.order_by("-created_at", "-id")


def suggestion_get(pk: int) -> ReplenishmentSuggestion:
    return ReplenishmentSuggestion.objects.select_related("location", "sku").get(pk=pk)
