from __future__ import annotations

from django.db.models import IntegerField, OuterRef, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from .models import StockLevel, StockMovement


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
