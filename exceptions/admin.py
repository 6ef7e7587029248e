from django.contrib import admin
from django.db.models import Q

from core.admin import ReadOnlyAdmin, ReadOnlyInline

from .filters import search_condition
from .models import ExceptionEvent, ExceptionType, FulfillmentException, Presence, Queue, RootCause, SavedView, SlaPolicy


@admin.register(Queue)
class QueueAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "team", "assignment"]
    list_filter = ["team", "assignment"]
    search_fields = ["name", "slug"]
    filter_horizontal = ["members"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["last_assigned"]


@admin.register(Presence)
class PresenceAdmin(admin.ModelAdmin):
    list_display = ["user", "away", "updated_at"]
    list_filter = ["away"]
    search_fields = ["user__username"]


@admin.register(RootCause)
class RootCauseAdmin(admin.ModelAdmin):
    list_display = ["name", "description", "position", "active"]
    list_editable = ["position", "active"]
    list_filter = ["active"]
    search_fields = ["name"]


@admin.register(SavedView)
class SavedViewAdmin(admin.ModelAdmin):
    list_display = ["name", "user", "query", "created_at"]
    list_select_related = ["user"]
    search_fields = ["name", "user__username"]
    raw_id_fields = ["user"]


class SlaPolicyInline(admin.TabularInline):
    model = SlaPolicy
    extra = 0


@admin.register(ExceptionType)
class ExceptionTypeAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "stage", "category", "severity", "blocking", "default_queue"]
    list_filter = ["stage", "category", "severity", "blocking", "default_queue"]
    search_fields = ["code", "name"]
    inlines = [SlaPolicyInline]


@admin.register(SlaPolicy)
class SlaPolicyAdmin(admin.ModelAdmin):
    list_display = [
        "exception_type",
        "priority",
        "first_response_minutes",
        "resolve_minutes",
        "warning_percent",
        "pause_while_waiting",
        "escalation_queue",
        "calendar",
    ]
    list_filter = ["priority", "pause_while_waiting", "escalation_queue", "calendar", "exception_type__stage"]
    search_fields = ["exception_type__code", "exception_type__name"]
    list_editable = ["first_response_minutes", "resolve_minutes", "warning_percent"]
    list_select_related = ["exception_type", "escalation_queue", "calendar"]


class ExceptionEventInline(ReadOnlyInline):
    model = ExceptionEvent
    fields = ["at", "kind", "action", "from_status", "to_status", "actor", "note", "operator_minutes"]


@admin.register(FulfillmentException)
class FulfillmentExceptionAdmin(ReadOnlyAdmin):
    """Read-only: exceptions change through the governed actions of the pages, which audit them."""

    list_display = ["id", "type", "status", "priority", "queue", "owner", "order_shown", "due_at", "escalated", "occurrences"]
    # Fixed date ranges rather than a date hierarchy, whose year and month links are a MIN/MAX and a DISTINCT over
    # the whole history on every request.
    list_filter = ["status", "priority", "escalated", "type__stage", "type", "queue", "created_at"]
    # Newest first, as the (created_at, id) index reads them, so a page of a date range is a range of the index.
    ordering = ["-created_at", "-id"]
    # Shown for the search box; get_search_results says what a term finds.
    search_fields = ["summary", "order__external_id"]
    search_help_text = (
        "An exception's number, an order's number, a customer's email or name, a SKU, a tracking number, or words of the summary."
    )
    # The total beside a filtered count would be a second count of the whole history.
    show_full_result_count = False
    list_select_related = ["type", "queue", "owner", "order__partner"]
    inlines = [ExceptionEventInline]

    def get_search_results(self, request, queryset, search_term):
        """What the coordinator's queue finds for the term (each part resolved to ids through an index), or words
        of the summary through its trigram index; each row matches once, so no DISTINCT."""
        term = search_term.strip()
        if not term:
            return queryset, False
        condition = search_condition(term)
        if len(term) >= 3:  # a trigram index answers nothing shorter
            condition |= Q(summary__icontains=term)
        return queryset.filter(condition), False

    @admin.display(description="Order", ordering="order__external_id")
    def order_shown(self, exception: FulfillmentException) -> str | None:
        # The partner's code and its own id, as people quote it, rather than our row ids.
        return f"{exception.order.partner.code} {exception.order.external_id}" if exception.order_id else None


@admin.register(ExceptionEvent)
class ExceptionEventAdmin(ReadOnlyAdmin):
    list_display = ["at", "exception", "kind", "action", "actor", "operator_minutes"]
    list_filter = ["kind", "action"]
    search_fields = ["actor", "note", "exception__summary"]
    list_select_related = ["exception"]
    date_hierarchy = "at"
