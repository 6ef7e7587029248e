from django.contrib import admin

from core.admin import ReadOnlyAdmin

from .models import Location, Sku, StockLevel, StockMovement


@admin.register(Location)
class LocationAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "kind", "country", "region", "active", "daily_capacity", "handling_days", "calendar"]
    list_filter = ["kind", "country", "active"]
    search_fields = ["code", "name", "region"]
    list_select_related = ["calendar"]


@admin.register(Sku)
class SkuAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "base_uom", "case_pack", "unit_price", "active"]
    list_filter = ["active", "base_uom"]
    search_fields = ["code", "name"]
    filter_horizontal = ["substitutes"]


@admin.register(StockLevel)
class StockLevelAdmin(admin.ModelAdmin):
    """Counters change only through the stock services (and their ledger), never by hand here."""

    list_display = [
        "sku",
        "location",
        "on_hand",
        "reserved",
        "picked",
        "available",
        "safety_stock",
        "reorder_point",
        "lead_time_days",
    ]
    list_filter = ["location"]
    search_fields = ["sku__code", "sku__name", "location__code"]
    list_select_related = ["sku", "location"]
    readonly_fields = ["location", "sku", "on_hand", "reserved", "picked", "updated_at"]
    fields = ["location", "sku", "on_hand", "reserved", "picked", "safety_stock", "reorder_point", "lead_time_days", "updated_at"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(StockMovement)
class StockMovementAdmin(ReadOnlyAdmin):
    """The ledger is append-only: it can be read and searched, not edited."""

    list_display = [
        "at",
        "kind",
        "sku",
        "location",
        "quantity",
        "on_hand_delta",
        "reserved_delta",
        "picked_delta",
        "reference",
        "actor",
        "source_system",
    ]
    list_filter = ["kind", "source_system", "location"]
    search_fields = ["sku__code", "reference", "actor", "reason"]
    list_select_related = ["sku", "location"]
    date_hierarchy = "at"
