from django.contrib import admin

from .models import Order, OrderEvent, OrderLine, Partner, Shipment, ShipmentLine


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Partner)
class PartnerAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "kind", "default_priority", "active", "api_user"]
    list_filter = ["kind", "active"]
    search_fields = ["code", "name"]
    readonly_fields = ["api_user", "created_at"]


class OrderLineInline(ReadOnlyInline):
    model = OrderLine
    fields = ["line_number", "sku_code", "sku", "quantity", "uom", "base_quantity", "unit_price", "quantity_allocated", "quantity_shipped", "quantity_cancelled"]


class ShipmentInline(ReadOnlyInline):
    model = Shipment
    fields = ["location", "status", "carrier", "tracking_number", "shipped_at"]
    show_change_link = True


class OrderEventInline(ReadOnlyInline):
    model = OrderEvent
    fields = ["at", "kind", "name", "from_status", "to_status", "actor", "data"]


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    """Status changes go through the order services so they are audited; here it is read-only."""

    list_display = ["id", "partner", "external_id", "status", "priority", "service_level", "customer_name", "ship_country", "placed_at"]
    list_filter = ["status", "priority", "service_level", "customer_tier", "partner", "ship_country"]
    search_fields = ["external_id", "customer_name", "customer_email", "ship_postal_code"]
    list_select_related = ["partner"]
    date_hierarchy = "placed_at"
    readonly_fields = ["status", "hold_reason", "cancel_reason", "created_at", "updated_at"]
    inlines = [OrderLineInline, ShipmentInline, OrderEventInline]

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

    list_display = ["order", "line_number", "sku_code", "quantity", "uom", "base_quantity", "quantity_allocated", "quantity_shipped", "quantity_cancelled"]
    list_filter = ["uom", "order__status"]
    search_fields = ["sku_code", "order__external_id"]
    list_select_related = ["order"]


@admin.register(ShipmentLine)
class ShipmentLineAdmin(ReadOnlyAdmin):
    list_display = ["shipment", "order_line", "quantity"]
    list_filter = ["shipment__status", "shipment__location"]
    search_fields = ["order_line__sku_code", "shipment__tracking_number", "shipment__order__external_id"]
    list_select_related = ["shipment", "order_line"]
