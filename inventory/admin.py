from django.contrib import admin, messages

from core.actors import Actor
from core.admin import ReadOnlyAdmin, ReadOnlyInline
from core.errors import DomainError

from . import replenishment
from .models import Location, ReplenishmentSuggestion, Sku, StockLevel, StockMovement, SuggestionEvent


@admin.register(Location)
class LocationAdmin(admin.ModelAdmin):
    list_display = [
        "code",
        "name",
        "kind",
        "country",
        "region",
        "active",
        "daily_capacity",
        "handling_days",
        "calendar",
        "drift_tolerance_units",
        "drift_tolerance_percent",
    ]
    list_filter = ["kind", "country", "active"]
    search_fields = ["code", "name", "region"]
    list_select_related = ["calendar"]


@admin.register(Sku)
class SkuAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "base_uom", "case_pack", "unit_price", "service_level_percent", "active"]
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
    fields = [
        "location",
        "sku",
        "on_hand",
        "reserved",
        "picked",
        "safety_stock",
        "reorder_point",
        "lead_time_days",
        "review_period_days",
        "updated_at",
    ]

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


class SuggestionEventInline(ReadOnlyInline):
    model = SuggestionEvent
    fields = ["at", "name", "from_status", "to_status", "actor", "data"]


@admin.register(ReplenishmentSuggestion)
class ReplenishmentSuggestionAdmin(admin.ModelAdmin):
    """Suggestions come from the replenishment run and move only through its services: the admin reads them,
    and its actions approve or dismiss many at once through the same services."""

    list_display = ["sku", "location", "status", "quantity", "quantity_ordered", "reason", "created_at"]
    list_filter = ["status", "location"]
    search_fields = ["sku__code"]
    list_select_related = ["sku", "location"]
    date_hierarchy = "created_at"
    actions = ["approve_selected", "dismiss_selected"]
    inlines = [SuggestionEventInline]
    fields = readonly_fields = [
        "location",
        "sku",
        "status",
        "quantity",
        "quantity_ordered",
        "quantity_received",
        "reason",
        "demand_per_day",
        "demand_sigma",
        "demand_days",
        "lead_time_days",
        "review_period_days",
        "service_level_percent",
        "safety_stock",
        "reorder_point",
        "order_up_to",
        "position",
        "note",
        "created_at",
        "updated_at",
    ]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        # The changelist's actions need it; one suggestion's page has nothing to save.
        return obj is None and super().has_change_permission(request)

    def _each(self, request, queryset, verb: str, run) -> None:
        actor = Actor.for_user(request.user)
        done, failed = 0, []
        for suggestion in queryset.select_related("sku", "location").order_by("pk"):
            try:
                run(suggestion, actor)
            except DomainError as error:
                failed.append(f"{suggestion.sku.code} at {suggestion.location.code}: {error.message}")
            else:
                done += 1
        if done:
            self.message_user(request, f"{verb} {done} suggestion{'s' if done != 1 else ''}.", messages.SUCCESS)
        if failed:
            self.message_user(
                request, f"{len(failed)} not {verb.lower()}: " + "; ".join(failed), messages.WARNING if done else messages.ERROR
            )

    @admin.action(description="Approve selected", permissions=["change"])
    def approve_selected(self, request, queryset):
        self._each(request, queryset, "Approved", lambda s, actor: replenishment.suggestion_approve(suggestion=s.pk, actor=actor))

    @admin.action(description="Dismiss selected", permissions=["change"])
    def dismiss_selected(self, request, queryset):
        reason = f"Dismissed in the admin by {request.user.get_username()}"
        self._each(
            request,
            queryset,
            "Dismissed",
            lambda s, actor: replenishment.suggestion_dismiss(suggestion=s.pk, reason=reason, actor=actor),
        )
