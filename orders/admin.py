from django.contrib import admin, messages
from django.db import transaction
from django.template.response import TemplateResponse

from core.admin import ReadOnlyAdmin, ReadOnlyInline
from inventory.models import Location

from . import routing
from .admin_forms import RankedLocationFormSet, RoutingRuleForm, country_choices
from .models import (
    IdempotencyKey,
    Order,
    OrderEvent,
    OrderLine,
    Partner,
    PartnerSkuMapping,
    RoutingDecision,
    RoutingRule,
    RoutingRuleLocation,
    Shipment,
    ShipmentLine,
)
from .search import search_q


@admin.register(Partner)
class PartnerAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "kind", "default_priority", "active", "api_user"]
    list_filter = ["kind", "active"]
    search_fields = ["code", "name"]
    readonly_fields = ["api_user", "created_at"]


@admin.register(PartnerSkuMapping)
class PartnerSkuMappingAdmin(admin.ModelAdmin):
    """What intake reads a partner's own SKU code as; people also add these from an unknown_sku exception."""

    list_display = ["partner", "partner_sku_code", "sku", "created_by", "created_at"]
    list_filter = ["partner"]
    search_fields = ["partner__code", "partner_sku_code", "sku__code", "sku__name"]
    list_select_related = ["partner", "sku", "created_by"]
    autocomplete_fields = ["sku"]
    readonly_fields = ["created_by", "created_at"]

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


class OrderLineInline(ReadOnlyInline):
    model = OrderLine
    fields = [
        "line_number",
        "sku_code",
        "sku",
        "quantity",
        "uom",
        "base_quantity",
        "unit_price",
        "quantity_allocated",
        "quantity_shipped",
        "quantity_cancelled",
    ]


class ShipmentInline(ReadOnlyInline):
    model = Shipment
    fields = ["location", "status", "carrier", "tracking_number", "shipped_at"]
    show_change_link = True


class OrderEventInline(ReadOnlyInline):
    model = OrderEvent
    fields = ["at", "kind", "name", "from_status", "to_status", "actor", "data"]


class ShipCountryFilter(admin.SimpleListFilter):
    """The countries the sites are in or ship to, read from the few locations rather than from every order."""

    title = "ship country"
    parameter_name = "ship_country"

    def lookups(self, request, model_admin):
        countries = set()
        for country, ships_to in Location.objects.filter(active=True).values_list("country", "ships_to"):
            countries.add(country.upper())
            countries.update(code.upper() for code in ships_to or [])
        names = dict(country_choices())
        return [(code, names.get(code, code)) for code in sorted(countries - {""})]

    def queryset(self, request, queryset):
        # Any two-letter code works in the address bar, also one no site ships to any more.
        value = (self.value() or "").strip().upper()
        return queryset.filter(ship_country=value) if value else queryset


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    """Status changes go through the order services so they are audited; here it is read-only."""

    list_display = [
        "id",
        "partner",
        "external_id",
        "status",
        "priority",
        "service_level",
        "customer_name",
        "ship_country",
        "placed_at",
    ]
    # Fixed date ranges rather than a date hierarchy, whose year and month links are a MIN/MAX and a DISTINCT over
    # every order on each request.
    list_filter = ["status", "priority", "service_level", "customer_tier", "partner", ShipCountryFilter, "placed_at"]
    # Newest first, as the (placed_at, id) index reads them, so a page of a date range is a range of the index.
    ordering = ["-placed_at", "-id"]
    # Shown for the search box; get_search_results says what a term finds.
    search_fields = ["external_id", "customer_name", "customer_email"]
    search_help_text = (
        "An order's number (alone or after its partner's code), a customer's email or name, a SKU, or a tracking number."
    )
    # The total beside a filtered count would be a second count of every order.
    show_full_result_count = False
    list_select_related = ["partner"]
    readonly_fields = ["status", "hold_reason", "cancel_reason", "created_at", "updated_at"]
    inlines = [OrderLineInline, ShipmentInline, OrderEventInline]

    def get_search_results(self, request, queryset, search_term):
        """The orders the portal's search box finds for the term, resolved to ids through indexed lookups;
        each order matches once, so no DISTINCT."""
        if not search_term.strip():
            return queryset, False
        return queryset.filter(search_q(search_term)), False

    def has_add_permission(self, request):
        # Orders arrive through intake (API, webhooks, seed); an order typed in here would skip it.
        return False


class ShipmentLineInline(ReadOnlyInline):
    model = ShipmentLine
    fields = ["order_line", "quantity"]


@admin.register(Shipment)
class ShipmentAdmin(admin.ModelAdmin):
    list_display = ["id", "order", "location", "status", "carrier", "tracking_number", "shipped_at"]
    list_filter = ["status", "location", "carrier"]
    search_fields = ["tracking_number", "order__external_id"]
    list_select_related = ["order", "location"]
    readonly_fields = ["order", "location", "status", "shipped_at", "delivered_at"]
    inlines = [ShipmentLineInline]

    def has_add_permission(self, request):
        return False


@admin.register(OrderEvent)
class OrderEventAdmin(ReadOnlyAdmin):
    list_display = ["at", "order", "kind", "name", "from_status", "to_status", "actor"]
    list_filter = ["kind", "name"]
    search_fields = ["order__external_id", "actor", "name"]
    list_select_related = ["order"]
    date_hierarchy = "at"


@admin.register(OrderLine)
class OrderLineAdmin(ReadOnlyAdmin):
    """Find every order that asks for a SKU; quantities change only through the order services."""

    list_display = [
        "order",
        "line_number",
        "sku_code",
        "quantity",
        "uom",
        "base_quantity",
        "quantity_allocated",
        "quantity_shipped",
        "quantity_cancelled",
    ]
    list_filter = ["uom", "order__status"]
    search_fields = ["sku_code", "order__external_id"]
    list_select_related = ["order"]


@admin.register(ShipmentLine)
class ShipmentLineAdmin(ReadOnlyAdmin):
    list_display = ["shipment", "order_line", "quantity"]
    list_filter = ["shipment__status", "shipment__location"]
    search_fields = ["order_line__sku_code", "shipment__tracking_number", "shipment__order__external_id"]
    list_select_related = ["shipment", "order_line"]


class RankedLocationInline(admin.TabularInline):
    model = RoutingRuleLocation
    formset = RankedLocationFormSet
    extra = 1
    fields = ["rank", "location"]
    ordering = ["rank"]
    verbose_name = "preferred location"
    verbose_name_plural = "Preferred locations, tried in rank order (1 first) before any other location"


@admin.register(RoutingRule)
class RoutingRuleAdmin(admin.ModelAdmin):
    """Rules are tried by priority; "Dry run" shows what the edited rule set would do before it is saved."""

    form = RoutingRuleForm
    change_form_template = "admin/orders/routingrule/change_form.html"
    list_display = ["priority", "name", "active", "allow_split", "max_shipments", "split_requires_approval", "updated_at"]
    list_display_links = ["name"]
    list_editable = ["priority", "active"]
    list_filter = ["active", "allow_split", "split_requires_approval"]
    search_fields = ["name"]
    filter_horizontal = ["partners", "excluded_locations"]
    inlines = [RankedLocationInline]
    actions = ["dry_run_rule_set"]
    fieldsets = [
        (None, {"fields": ["name", "priority", "active"]}),
        (
            "Which orders (empty matches any)",
            {
                "fields": [
                    "partners",
                    "destination_countries",
                    "postal_prefixes",
                    "service_levels",
                    "customer_tiers",
                    ("min_order_value", "max_order_value"),
                ]
            },
        ),
        (
            "Where they go",
            {
                "fields": [
                    "excluded_locations",
                    "allow_split",
                    "max_shipments",
                    "split_requires_approval",
                    ("preferred_carrier", "fallback_carrier"),
                ]
            },
        ),
    ]

    @admin.action(description="Dry run the whole rule set as saved")
    def dry_run_rule_set(self, request, queryset):
        rows = routing.dry_run(routing.active_rules(), routing.dry_run_orders())
        return TemplateResponse(
            request,
            "admin/orders/routingrule/dry_run.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "title": "Dry run of the saved rule set",
                "rows": rows,
                "changed": sum(r.changed for r in rows),
            },
        )

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        if request.method == "POST" and "_dryrun" in request.POST:
            if object_id is None:
                messages.warning(
                    request, "Save the new rule first (leave it inactive if it should not route yet), then dry-run your edits."
                )
                request.POST = request.POST.copy()
                request.POST.pop("_dryrun")
                return super().changeform_view(request, object_id, form_url, extra_context)
            request.routing_dry_run = True
        return super().changeform_view(request, object_id, form_url, extra_context)

    def response_change(self, request, obj):
        if not getattr(request, "routing_dry_run", False):
            return super().response_change(request, obj)
        # The edit is saved only inside this transaction: evaluate it, show it, then roll it back.
        rules = [rule for rule in routing.active_rules() if rule.rule_id != obj.pk]
        rules.append(
            routing.RuleSpec.from_rule(
                RoutingRule.objects.prefetch_related("partners", "excluded_locations", "ranked_locations").get(pk=obj.pk)
            )
        )
        rules.sort(key=lambda rule: (rule.priority, rule.rule_id or 0))
        rows = routing.dry_run(rules, routing.dry_run_orders())
        request.method, request.POST = "GET", request.POST.__class__()
        request.routing_dry_run = False
        response = super().changeform_view(
            request,
            str(obj.pk),
            extra_context={
                "dry_run_rows": rows,
                "dry_run_changed": sum(r.changed for r in rows),
            },
        )
        response.render()  # render now, while the edit is still visible inside the transaction
        transaction.set_rollback(True)
        return response

    def log_change(self, request, obj, message):
        if not getattr(request, "routing_dry_run", False):
            super().log_change(request, obj, message)


@admin.register(RoutingDecision)
class RoutingDecisionAdmin(ReadOnlyAdmin):
    list_display = ["at", "order", "rule_name", "outcome", "actor"]
    list_filter = ["outcome", "rule"]
    search_fields = ["order__external_id", "rule_name"]
    list_select_related = ["order"]
    date_hierarchy = "at"


@admin.register(IdempotencyKey)
class IdempotencyKeyAdmin(ReadOnlyAdmin):
    """Which keys a partner used and what they were answered; kept a day, then pruned."""

    list_display = ["created_at", "partner", "key", "status_code"]
    list_filter = ["partner", "status_code"]
    search_fields = ["key"]
    list_select_related = ["partner"]
