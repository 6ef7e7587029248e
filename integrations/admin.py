from django.contrib import admin, messages
from django.db import models
from django.utils.html import format_html

from core.actors import Actor
from core.admin import ReadOnlyAdmin, ReadOnlyInline
from core.errors import DomainError
from inventory.models import Location
from orders.models import Shipment

from .models import (
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    ExternalSystem,
    InboundEvent,
    OutboxMessage,
    PublishedAvailability,
    ShippingMapping,
    SyncCursor,
)
from .services.relay import delivery_requeue


class ShipsFromFilter(admin.SimpleListFilter):
    """Rows about orders with a shipment from a site: the dashboard's site, as its integration figures count."""

    title = "order ships from"
    parameter_name = "ships_from"
    order_field = "order_id"

    def lookups(self, request, model_admin):
        return [(str(pk), code) for pk, code in Location.objects.filter(active=True).order_by("code").values_list("pk", "code")]

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        if not self.value().isdigit():
            return queryset.none()
        orders = Shipment.objects.filter(location_id=int(self.value())).values("order_id")
        return queryset.filter(**{f"{self.order_field}__in": orders})


class MessageShipsFromFilter(ShipsFromFilter):
    order_field = "message__order_id"


class ShippingMappingInline(admin.TabularInline):
    model = ShippingMapping
    extra = 1
    verbose_name = "shipping line mapping"
    verbose_name_plural = "shipping lines → service levels (Shopify's shipping line code or title; others: standard)"


@admin.register(ExternalSystem)
class ExternalSystemAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "kind", "adapter", "base_url", "partner", "active"]
    list_filter = ["kind", "adapter", "active"]
    search_fields = ["slug", "name"]
    filter_horizontal = ["locations"]
    fields = ["slug", "name", "kind", "adapter", "base_url", "active", "partner", "locations", "owned_states", "secrets"]
    readonly_fields = ["owned_states", "secrets"]
    inlines = [ShippingMappingInline]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    @admin.display(description="Owns")
    def owned_states(self, system: ExternalSystem) -> str:
        return ", ".join(system.owns) or "—"

    @admin.display(description="Webhook secrets")
    def secrets(self, system: ExternalSystem) -> str:
        # Shown by their ends only; `manage.py create_external_system SLUG` prints the current one.
        shown = [f"…{secret[-4:]}" for secret in system.accepted_secrets]
        return (", ".join(shown) + (" (rotating)" if system.previous_secret else "")) if shown else "none"


@admin.register(InboundEvent)
class InboundEventAdmin(ReadOnlyAdmin):
    list_display = ["received_at", "system", "topic", "sender_id", "status", "order", "short_error"]
    list_filter = ["status", "system", "topic", ShipsFromFilter]
    search_fields = ["sender_id", "order__external_id", "=order__id", "subject", "error"]
    list_select_related = ["system", "order"]
    date_hierarchy = "received_at"
    fields = [
        "system",
        "sender_id",
        "topic",
        "occurred_at",
        "received_at",
        "processed_at",
        "status",
        "error",
        "subject",
        "order",
        "headers",
        "raw_body",
    ]
    readonly_fields = fields

    @admin.display(description="Error")
    def short_error(self, event: InboundEvent) -> str:
        return event.error[:80]

    @admin.display(description="Body as received")
    def raw_body(self, event: InboundEvent) -> str:
        return format_html("<pre style='white-space:pre-wrap;max-width:80em'>{}</pre>", event.body_text[:20000])


class DeliveryAttemptInline(ReadOnlyInline):
    model = DeliveryAttempt
    fields = ["number", "started_at", "status_code", "duration_ms", "error", "response_excerpt"]


@admin.action(description="Re-queue the selected dead deliveries")
def requeue(modeladmin, request, queryset):
    actor, sent, refused = Actor.for_user(request.user), 0, []
    for delivery in queryset.filter(status=DeliveryStatus.DEAD).order_by("pk"):
        try:
            delivery_requeue(delivery, actor=actor)
            sent += 1
        except DomainError as error:
            refused.append(error.message)
    skipped = queryset.exclude(status=DeliveryStatus.DEAD).count()
    if sent:
        modeladmin.message_user(request, f"Re-queued {sent} deliveries.", messages.SUCCESS)
    if skipped or refused:
        modeladmin.message_user(
            request, f"Left {skipped + len(refused)} that were not dead. {' '.join(refused)}".strip(), messages.WARNING
        )


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "message_type", "system", "status", "attempts", "next_attempt_at", "last_error", "order"]
    list_filter = ["status", "system", "message__type", MessageShipsFromFilter]
    search_fields = ["=delivery_id", "=message__event_id", "message__order__external_id", "=message__order__id"]
    list_select_related = ["message__order", "system"]
    date_hierarchy = "created_at"
    actions = [requeue]
    fields = [
        "delivery_id",
        "message",
        "system",
        "status",
        "attempts",
        "next_attempt_at",
        "delivered_at",
        "last_error",
        "created_at",
    ]
    readonly_fields = fields
    inlines = [DeliveryAttemptInline]

    @admin.display(description="Type", ordering="message__type")
    def message_type(self, delivery: Delivery) -> str:
        return delivery.message.type

    @admin.display(description="Order")
    def order(self, delivery: Delivery):
        return delivery.message.order

    def has_change_permission(self, request, obj=None):
        # The list's re-queue action needs a changelist that may act; fields stay read-only.
        return request.user.has_perm("integrations.retry_sync")


class DeliveryInline(ReadOnlyInline):
    model = Delivery
    fields = ["system", "status", "attempts", "next_attempt_at", "delivered_at", "last_error"]


@admin.register(OutboxMessage)
class OutboxMessageAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "type", "event_id", "order"]
    list_filter = ["type"]
    search_fields = ["=event_id", "order__external_id", "=order__id"]
    list_select_related = ["order"]
    date_hierarchy = "created_at"
    fields = ["event_id", "type", "order", "created_at", "payload"]
    readonly_fields = fields
    inlines = [DeliveryInline]


@admin.register(PublishedAvailability)
class PublishedAvailabilityAdmin(ReadOnlyAdmin):
    """What the storefronts were last told is available, per SKU and location."""

    list_display = ["sku", "location", "available", "published_at", "message"]
    list_filter = ["location"]
    search_fields = ["sku__code"]
    list_select_related = ["sku", "location", "message"]


@admin.register(SyncCursor)
class SyncCursorAdmin(ReadOnlyAdmin):
    list_display = ["name", "at"]
